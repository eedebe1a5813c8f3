"""Semi-synthetic sequence generator and GOT-10k folder I/O on real opencv-doc / ViSP imagery."""
import numpy as np
import pytest

from siamattn_ros.data import SequenceSpec, make_sequence, read_sequence, write_sequence, list_sequences
from siamattn_ros.data import sources
from siamattn_ros.data.shapes import mask_box_xywh

pytestmark = pytest.mark.skipif(not sources.available(),
                                reason=f"opencv-doc data not installed at {sources.OPENCV_DATA} (apt-get install opencv-doc)")

SMALL = dict(num_frames=24, width=240, height=180, object_size=(30.0, 50.0))


def test_same_seed_same_sequence_different_seed_differs():
    a = make_sequence(SequenceSpec(**SMALL), 11)
    b = make_sequence(SequenceSpec(**SMALL), 11)
    c = make_sequence(SequenceSpec(**SMALL), 12)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    np.testing.assert_array_equal(a.boxes_xywh, b.boxes_xywh)
    assert not all(np.array_equal(x, y) for x, y in zip(a.frames, c.frames))


@pytest.mark.parametrize("background", ["video", "still"])
def test_truth_is_exact_and_consistent(background):
    seq = make_sequence(SequenceSpec(background=background, **SMALL), 5)
    assert len(seq.frames) == len(seq.masks) == len(seq.boxes_xywh) == len(seq.visible) == 24
    for f, m, b, v in zip(seq.frames, seq.masks, seq.boxes_xywh, seq.visible):
        assert f.shape == (180, 240, 3) and f.dtype == np.uint8
        assert m.shape == (180, 240) and set(np.unique(m)) <= {0, 255}
        if v:
            np.testing.assert_array_equal(b, mask_box_xywh(m))
            assert (m > 0).sum() >= 20
        else:
            assert np.isnan(b).all() and not m.any()
    # The target moves: the box centre changes over the sequence.
    c = seq.boxes_xywh[seq.visible][:, :2] + seq.boxes_xywh[seq.visible][:, 2:] / 2
    assert np.ptp(c, axis=0).max() > 5


def test_leave_and_reenter_event():
    seq = make_sequence(SequenceSpec(num_frames=90, width=200, height=150, object_size=(25.0, 40.0),
                                     leave_reenter=True, occlusion=False), 3)
    vis = seq.visible
    assert vis[0] and not vis.all(), vis
    first_out = int(np.argmin(vis))
    assert vis[first_out:].any(), "target never re-enters"


def test_folder_roundtrip(tmp_path):
    seq = make_sequence(SequenceSpec(**SMALL, leave_reenter=True), 7)
    folder = write_sequence(seq, tmp_path / "seq_a")
    assert (folder / "00000001.jpg").is_file() and (folder / "groundtruth.txt").is_file()
    back = read_sequence(folder)
    np.testing.assert_allclose(back.boxes_xywh, seq.boxes_xywh, atol=0.01)
    np.testing.assert_array_equal(back.visible, seq.visible)
    assert all(np.array_equal(x, y) for x, y in zip(back.masks, seq.masks))
    assert np.abs(back.frames[0].astype(int) - seq.frames[0].astype(int)).mean() < 4  # JPEG
    assert list_sequences(tmp_path) == [folder]


def test_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="backdrop"):
        SequenceSpec(background="backdrop")
    with pytest.raises(ValueError, match="num_frames"):
        SequenceSpec(num_frames=1)
