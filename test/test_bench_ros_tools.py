"""The node benchmarks run end to end on a short stream and print figures that add up (not timing bars: figures are
measured by the commands, see docs/ROS_NODE.md)."""
from __future__ import annotations

import math
import re

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
pytest.importorskip("torch", reason="torch is not installed")

from siamattn_ros.testing.checkpoints import random_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "mnv2_random.pth", seed=5)


def test_bench_node_prints_both_comparisons(checkpoint, capsys):
    from siamattn_ros.tools import bench_node

    assert bench_node.main(["--size", "320x240", "--frames", "4", "--model", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    number = r"([-+]?[0-9.]+|nan)"
    alone = float(re.search(rf"tracker alone .* median ms:\s+{number}", out).group(1))
    node = float(re.search(rf"processing_time .* median ms:\s+{number}", out).group(1))
    diff = float(re.search(rf"node overhead per frame, ms:\s+{number}", out).group(1))
    call = float(re.search(rf"tracker call, ms:\s+{number}", out).group(1))
    overhead = float(re.search(rf"node overhead \(conversion, messages\), ms:\s+{number}", out).group(1))
    assert alone > 0 and node > 0 and diff == pytest.approx(node - alone, abs=0.11)
    assert call > 0 and math.isfinite(overhead) and overhead >= 0        # the node's own split of the same frames


def test_bench_delivery_counts_published_received_and_processed(checkpoint, capsys):
    from siamattn_ros.tools import bench_delivery

    assert bench_delivery.main(["--sizes", "160x120", "--seconds", "1", "--rate", "20", "--profiles", "shipped",
                                "--model", str(checkpoint)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("shipped ")]
    assert len(rows) == 1
    _, size, published, received, processed, share = rows[0]
    assert size == "160x120" and int(published) == 20
    assert 0 < int(received) <= int(published) and 0 < int(processed) <= int(received)
    assert float(share.rstrip("%")) == pytest.approx(100.0 * int(received) / int(published), abs=0.05)
