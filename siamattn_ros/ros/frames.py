"""Frame hand-over between the ROS callbacks and the tracking worker.

- `LatestSlot`: the image callback puts every frame here; it keeps only the newest, so the worker never sees a
  backlog (a frame replaced before the worker took it counts as dropped).
- `FrameRing`: a bounded, stamp-keyed history of recently received frames, so that an init box drawn on an older
  frame can be applied to exactly that frame and then fast-forwarded.

Frames are kept as the received messages (decoding happens in the worker), so the callbacks stay cheap.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Frame:
    """One received image message. seq counts frames in arrival order (1, 2, ...)."""

    msg: Any
    stamp_ns: int
    seq: int

    @property
    def header(self) -> Any:
        return self.msg.header


class LatestSlot:
    """Single-item mailbox: put() replaces the held frame, take() waits for one and empties the slot."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Optional[Frame] = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.received += 1
            self._cond.notify_all()

    def take(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The newest frame (removing it), or None after timeout / close."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def discard_older_than(self, seq: int) -> None:
        """Drop the held frame if it arrived at or before `seq` (it was already handled another way)."""
        with self._cond:
            if self._frame is not None and self._frame.seq <= seq:
                self._frame = None

    def wake(self) -> None:
        """Wake a waiting take() without a frame (e.g. a command arrived)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class FrameRing:
    """The last `length` received frames, oldest first, looked up by exact stamp."""

    def __init__(self, length: int) -> None:
        if length < 1:
            raise ValueError(f"frame buffer length must be >= 1, got {length}")
        self._lock = threading.Lock()
        self._frames: deque[Frame] = deque(maxlen=length)

    @property
    def length(self) -> int:
        return self._frames.maxlen or 0

    def resize(self, length: int) -> None:
        if length < 1:
            raise ValueError(f"frame buffer length must be >= 1, got {length}")
        with self._lock:
            self._frames = deque(self._frames, maxlen=length)

    def push(self, frame: Frame) -> None:
        with self._lock:
            self._frames.append(frame)

    def latest(self) -> Optional[Frame]:
        with self._lock:
            return self._frames[-1] if self._frames else None

    def find(self, stamp_ns: int) -> Optional[Frame]:
        """The most recent frame with exactly this stamp, or None."""
        with self._lock:
            for frame in reversed(self._frames):
                if frame.stamp_ns == stamp_ns:
                    return frame
        return None

    def newer_than(self, frame: Frame) -> list[Frame]:
        """Frames received after `frame`, oldest first."""
        with self._lock:
            return [f for f in self._frames if f.seq > frame.seq]

    def stamp_range(self) -> Optional[tuple[int, int]]:
        """(oldest, newest) stamp in ns of the buffered frames, for error messages."""
        with self._lock:
            if not self._frames:
                return None
            return self._frames[0].stamp_ns, self._frames[-1].stamp_ns

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)


def pick_fast_forward(frames: list[Frame], max_frames: int) -> list[Frame]:
    """At most `max_frames` of `frames`, evenly spaced, always ending with the newest (0 = all of them).

    Tracking skips frames anyway whenever the tracker is slower than the camera; this bounds the catch-up time of an
    init on an old frame on a slow device.
    """
    if max_frames <= 0 or len(frames) <= max_frames:
        return list(frames)
    n = len(frames)
    # Indices spaced by n / max_frames, counted back from the newest so that it is always included.
    idx = sorted({n - 1 - round(i * n / max_frames) for i in range(max_frames)})
    return [frames[i] for i in idx if 0 <= i < n]
