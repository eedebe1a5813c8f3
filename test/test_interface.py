"""siamattn_ros.interface: torch-free and rclpy-free, the one definition of states, names, conversions, the preset
rule and the evaluation metrics."""
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from siamattn_ros.interface import (TrackState, center_size_to_xywh, format_ns, ns_to_sec_nanosec, resolve,
                                    resolve_preset, set_stamp, stamp_to_ns, xywh_to_center_size)
from siamattn_ros.interface import metrics
from siamattn_ros.interface.presets import checkpoint_backbone

REPO = Path(__file__).resolve().parents[1]


def _loaded_after(statement: str) -> set:
    code = f"import sys; {statement}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'rclpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return set(eval(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("statement", [
    "import siamattn_ros.interface",
    "import siamattn_ros.interface.metrics",
    "import siamattn_ros.tracker",
    "from siamattn_ros.tracker import TrackState, TrackResult, TrackerConfig",
    "import siamattn_ros.tracker.overlay",
])
def test_light_modules_load_neither_torch_nor_rclpy(statement):
    assert _loaded_after(statement) == set()


def test_tracker_package_still_exports_the_engine_on_demand():
    assert "torch" in _loaded_after("from siamattn_ros.tracker import Tracker")


def test_track_state_values_equal_the_message_constants():
    text = (REPO / "msg" / "TrackResult.msg").read_text()
    constants = {m.group(1): int(m.group(2)) for m in re.finditer(r"^uint8 ([A-Z_]+)=(\d+)", text, re.M)}
    assert constants == {s.name: int(s) for s in TrackState}
    from siamattn_ros.tracker.result import TrackState as EngineState

    assert EngineState is TrackState


def test_stamp_and_box_conversions_round_trip():
    stamp = SimpleNamespace(sec=0, nanosec=0)
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_700_000_123_456_789_012):
        set_stamp(stamp, ns)
        assert 0 <= stamp.nanosec < 1_000_000_000 and stamp_to_ns(stamp) == ns
    assert ns_to_sec_nanosec(-1) == (-1, 999_999_999)  # a negative duration keeps nanosec in [0, 1e9)
    assert format_ns(12_000_000_345) == "12.000000345"
    assert xywh_to_center_size((10, 20, 4, 6)) == (12.0, 23.0, 4.0, 6.0)
    assert center_size_to_xywh(12, 23, 4, 6) == (10.0, 20.0, 4.0, 6.0)


def test_relative_names_resolve_like_rclpy():
    assert resolve("track/result") == "/track/result"
    assert resolve("track/result", "robot1") == "/robot1/track/result"
    assert resolve("~/reset", "/robot1/", "tn") == "/robot1/tn/reset"
    assert resolve("/diagnostics", "robot1") == "/diagnostics"


def test_iou_nan_semantics_are_explicit():
    truth = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4, [0, 0, 10, 10]])
    pred = np.array([[0, 0, 10, 10], [np.nan] * 4, [0, 0, 10, 10], [0, 0, 0, 0]])
    np.testing.assert_array_equal(metrics.box_iou(pred, truth), [1.0, 0.0, np.nan, 0.0])
    np.testing.assert_array_equal(metrics.box_iou(pred, truth, missing_pred=np.nan), [1.0, np.nan, np.nan, 0.0])
    assert metrics.box_iou([0, 0, 10, 10], [5, 0, 10, 10])[0] == pytest.approx(50 / 150)  # one (4,) box = one row


def test_curves_over_no_scored_frame_are_nan_not_zero():
    for empty in (np.array([]), np.array([np.nan, np.nan])):
        assert np.isnan(metrics.success_curve(empty)).all() and np.isnan(metrics.auc(empty))
        assert np.isnan(metrics.precision_curve(empty)).all()


MISLEADING = [("mobilenet_v2", "tracker_v2_r50.pth", "embedded"),
              ("resnet50_atrous", "siamattn_mnv2_embedded_copy.pth", "vot2018")]


@pytest.fixture(scope="module")
def misleading_checkpoints(tmp_path_factory):
    """A random-weight checkpoint of each backbone under a file name that suggests the other one."""
    import torch

    from siamattn_ros.testing.checkpoints import random_checkpoint, tiny_model

    torch.set_num_threads(1)
    return {backbone: random_checkpoint(tmp_path_factory.mktemp(backbone) / name, model=tiny_model(backbone))
            for backbone, name, _ in MISLEADING}


@pytest.mark.parametrize("backbone, misleading_name, expected", MISLEADING)
def test_preset_follows_the_saved_backbone_not_the_file_name(misleading_checkpoints, backbone, misleading_name,
                                                             expected):
    from siamattn_ros.tracker import build_tracker, load_preset

    path = misleading_checkpoints[backbone]
    assert checkpoint_backbone(path) == backbone
    assert resolve_preset(str(path)) == expected
    assert resolve_preset("embedded", checkpoint=str(path)) == expected  # "embedded" loads the given file
    assert resolve_preset(str(path), tracker_config="otb100") == "otb100"
    assert build_tracker(str(path), device="cpu").config == load_preset(expected)


@pytest.mark.parametrize("backbone, misleading_name, expected", MISLEADING)
def test_node_and_build_tracker_pick_the_same_preset(misleading_checkpoints, backbone, misleading_name, expected):
    pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from siamattn_ros.ros.tracker_node import TrackerNode
    from siamattn_ros.tracker import build_tracker

    path = str(misleading_checkpoints[backbone])
    library = build_tracker(path, device="cpu").config
    ctx = Context()
    rclpy.init(context=ctx)
    node = None
    try:
        node = TrackerNode(context=ctx, parameter_overrides=[
            Parameter("model", value=path), Parameter("device", value="cpu"), Parameter("warmup", value=False)])
        in_node = node._tracker.config
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    fields = ("confidence_threshold", "hysteresis", "lost_threshold", "lost_frames")
    assert {k: getattr(in_node, k) for k in fields} == {k: getattr(library, k) for k in fields}


def test_preset_of_builtin_names_and_unreadable_files(tmp_path):
    assert resolve_preset("embedded") == "embedded"
    assert resolve_preset("siamattn_mnv2") == "embedded"
    assert resolve_preset("siamattn_r50", checkpoint="anything.pth") == "vot2018"
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert checkpoint_backbone(tmp_path / "junk.pth") is None
    assert checkpoint_backbone(tmp_path / "missing.pth") is None
    assert resolve_preset(str(tmp_path / "missing.pth")) == "embedded"  # the loader names the missing file


def test_package_files_are_found_from_any_working_directory(tmp_path, monkeypatch):
    from siamattn_ros.interface.paths import SOURCE_ROOT, package_dirs, package_file

    monkeypatch.chdir(tmp_path)                       # as under `colcon test`, which runs in the build folder
    assert package_dirs("models")[0] == SOURCE_ROOT / "models"
    found = package_file("config/train/embedded.yaml")
    assert found.is_absolute() and found.is_file()
    assert package_file("config/no_such.yaml") == SOURCE_ROOT / "config" / "no_such.yaml"
