"""Confidence state machine with hysteresis: TRACKING / LOW_CONFIDENCE / LOST (a robot addition to the paper).

    TRACKING        --score < confidence_threshold-->                      LOW_CONFIDENCE
    LOW_CONFIDENCE  --score >= confidence_threshold + hysteresis-->        TRACKING
    any             --lost_frames consecutive scores < lost_threshold-->   LOST
    LOW_CONFIDENCE  --for low_confidence_frames consecutive frames-->     LOST   (0 = never)
    LOST            --score >= confidence_threshold + hysteresis-->        TRACKING

The hysteresis band stops the state from flickering when the score hovers around the threshold. Thresholds are
read from the config on every update, so changing them at run time takes effect on the next frame.
"""
from __future__ import annotations

from dataclasses import dataclass

from siamattn_ros.tracker.config import TrackerConfig
from siamattn_ros.tracker.result import TrackState


@dataclass
class ConfidenceStateMachine:
    state: TrackState = TrackState.TRACKING
    # Consecutive frames with score < lost_threshold; LOST when it reaches TrackerConfig.lost_frames.
    frames_below_lost: int = 0
    # Consecutive frames spent in LOW_CONFIDENCE; LOST when it reaches TrackerConfig.low_confidence_frames.
    frames_low: int = 0

    def reset(self) -> None:
        self.state = TrackState.TRACKING
        self.frames_below_lost = 0
        self.frames_low = 0

    def update(self, score: float, cfg: TrackerConfig) -> TrackState:
        """Feed one frame's confidence; returns the new state."""
        self.frames_below_lost = self.frames_below_lost + 1 if score < cfg.lost_threshold else 0
        recovered = score >= cfg.recover_threshold
        if self.state == TrackState.LOST:
            if recovered:
                self.state = TrackState.TRACKING
        elif self.frames_below_lost >= cfg.lost_frames:
            self.state = TrackState.LOST
        elif self.state == TrackState.TRACKING:
            if score < cfg.confidence_threshold:
                self.state = TrackState.LOW_CONFIDENCE
        elif recovered:  # LOW_CONFIDENCE
            self.state = TrackState.TRACKING
        self.frames_low = self.frames_low + 1 if self.state == TrackState.LOW_CONFIDENCE else 0
        if cfg.low_confidence_frames and self.frames_low >= cfg.low_confidence_frames:
            self.state, self.frames_low = TrackState.LOST, 0
        return self.state


def scan_offsets(rings: int) -> list:
    """Grid offsets (i, j) of rings 1..rings around the centre, inner rings first (ring r has 8·r positions)."""
    out = []
    for r in range(1, rings + 1):
        for j in range(-r, r + 1):
            for i in range(-r, r + 1):
                if max(abs(i), abs(j)) == r:
                    out.append((i, j))
    return out


def lost_scan_offset(lost_scan_step: int, rings: int) -> tuple:
    """Search-window offset (in window steps) for the n-th frame spent LOST (n = 0, 1, ...): the last confident
    position on every even frame, the next ring position on odd frames, widening ring by ring, then repeating."""
    offsets = scan_offsets(rings)
    if lost_scan_step % 2 == 0 or not offsets:
        return (0, 0)
    return offsets[(lost_scan_step // 2) % len(offsets)]
