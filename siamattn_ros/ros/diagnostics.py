"""Running statistics of the tracker node and their diagnostic_msgs/DiagnosticArray form."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from siamattn_ros.tracker.result import TrackState


class NodeStats:
    """Thread-safe counters; rate and timings over a sliding window of the last `window_s` seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self._lock = threading.Lock()
        self._window_s = window_s
        # (wall time, processing s, latency s, tracker s: the tracker call's part of the processing time)
        self._events: deque[tuple[float, float, float, float]] = deque()
        self.processed = 0
        self.input_errors = 0
        self.tracker_errors = 0
        self.last_error = ""
        self.state = TrackState.STOPPED
        self.init_id = 0

    def record_frame(self, processing_s: float, latency_s: float, state: int, init_id: int,
                     tracker_s: float = 0.0) -> None:
        now = time.monotonic()
        with self._lock:
            self.processed += 1
            self.last_error = ""
            self.state = TrackState(int(state))
            self.init_id = int(init_id)
            self._events.append((now, processing_s, latency_s, tracker_s))
            self._trim(now)

    def record_state(self, state: int, init_id: int) -> None:
        with self._lock:
            self.state = TrackState(int(state))
            self.init_id = int(init_id)

    def record_input_error(self) -> None:
        with self._lock:
            self.input_errors += 1

    def record_tracker_error(self, reason: str) -> None:
        """The tracker itself failed on a frame or request (not the input): reported as ERROR in diagnostics."""
        with self._lock:
            self.tracker_errors += 1
            self.last_error = reason

    def _trim(self, now: float) -> None:
        while self._events and now - self._events[0][0] > self._window_s:
            self._events.popleft()

    def snapshot(self) -> dict[str, float]:
        """rate_hz, mean processing, tracker and latency (s) over the window, plus the counters."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            n = len(self._events)
            span = (now - self._events[0][0]) if n else 0.0
            return {
                "rate_hz": (n - 1) / span if n > 1 and span > 0 else 0.0,
                "processing_s": sum(e[1] for e in self._events) / n if n else 0.0,
                "latency_s": sum(e[2] for e in self._events) / n if n else 0.0,
                "tracker_s": sum(e[3] for e in self._events) / n if n else 0.0,
                "processed": float(self.processed),
                "input_errors": float(self.input_errors),
                "tracker_errors": float(self.tracker_errors),
            }


def build_diagnostics(stamp: Any, name: str, stats: NodeStats, received: int, dropped: int, device: str,
                      model: str) -> DiagnosticArray:
    """One DiagnosticStatus: OK while running normally, WARN when the target is LOST or inputs failed recently."""
    snap = stats.snapshot()
    state = stats.state
    status = DiagnosticStatus(name=name, hardware_id=device)
    if state == TrackState.LOST:
        status.level, status.message = DiagnosticStatus.WARN, "target lost"
    elif state == TrackState.ERROR and stats.last_error:
        status.level, status.message = DiagnosticStatus.ERROR, stats.last_error
    elif state == TrackState.ERROR:
        status.level, status.message = DiagnosticStatus.WARN, "last request failed"
    else:
        status.level, status.message = DiagnosticStatus.OK, state.name.lower()
    values = {
        "state": state.name,
        "init_id": str(stats.init_id),
        "processing_rate_hz": f"{snap['rate_hz']:.2f}",
        "processing_time_ms": f"{snap['processing_s'] * 1e3:.1f}",
        # processing_time = the tracker's own time + the node's overhead (image conversion, messages, depth)
        "tracker_time_ms": f"{snap['tracker_s'] * 1e3:.1f}",
        "node_overhead_ms": f"{(snap['processing_s'] - snap['tracker_s']) * 1e3:.2f}",
        "latency_ms": f"{snap['latency_s'] * 1e3:.1f}",
        "frames_received": str(received),
        "frames_processed": str(int(snap["processed"])),
        "frames_dropped": str(dropped),
        "input_errors": str(int(snap["input_errors"])),
        "tracker_errors": str(int(snap["tracker_errors"])),
        "device": device,
        "model": model,
    }
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status]
    return msg
