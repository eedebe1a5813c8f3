"""Shared test set-up.

Every pytest process gets its own ROS domain (derived from its pid) so that concurrent test runs on one machine, and
any other ROS graph, never see each other; node subprocesses started by the tests inherit it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


@pytest.fixture(scope="module")
def single_thread():
    """One torch intra-op thread while a module runs (restored afterwards): on a shared 2-core machine two OpenMP
    threads spin-wait for each other and run small tensors several times slower than one.
    Use with `pytestmark = pytest.mark.usefixtures("single_thread")`."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def shipped():
    """The shipped embedded model in a Tracker (no warm-up), one per test module; tests set its config before init."""
    from siamattn_ros.tracker import TrackerConfig, build_tracker

    return build_tracker("embedded", config=TrackerConfig(warmup=False))
