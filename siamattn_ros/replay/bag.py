"""Reading and writing rosbag2 bags (mcap storage) with `rosbags`; messages stay CDR-serialized bytes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from siamattn_ros.replay.typestore import typestore


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    timestamp_ns: int   # the bag's receive/log time
    data: bytes         # CDR bytes as stored


def bag_topics(path: Path | str) -> dict[str, str]:
    """{topic: message type} of a bag (a rosbag2 folder, or a single .mcap / .db3 file)."""
    with Reader(_check(path)) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def read_messages(path: Path | str, topics: Optional[Sequence[str]] = None) -> Iterator[BagMessage]:
    """Messages in log-time order, optionally only those on `topics` (each must exist in the bag)."""
    with Reader(_check(path)) as reader:
        conns = reader.connections
        if topics:
            have = {c.topic for c in conns}
            missing = sorted(set(topics) - have)
            if missing:
                raise ValueError(f"topics {missing} are not in bag {path} (it has {sorted(have)})")
            conns = [c for c in conns if c.topic in set(topics)]
        for conn, stamp, data in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, int(stamp), bytes(data))


def deserialize(msg: BagMessage) -> Any:
    """The message as a rosbags dataclass (fields named as in the .msg)."""
    return typestore().deserialize_cdr(msg.data, msg.msgtype)


def serialize(obj: Any, msgtype: str) -> bytes:
    return bytes(typestore().serialize_cdr(obj, msgtype))


class BagWriter:
    """Writes a rosbag2 folder (mcap storage, metadata version 8) topic by topic. Use as a context manager.

    A path ending in '.mcap' gives a single mcap file instead of a folder (written in a temporary folder next to
    it, then moved). The mcap file carries each topic's full message definition (also for siamattn_ros types), so
    tools without our package (Foxglove, `rosbags`, `ros2 bag info`) can decode it.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"bag {self.path} exists already; remove it or choose another name")
        self._single = self.path.suffix == ".mcap"
        self._folder = self.path.with_name(self.path.name + ".partial") if self._single else self.path
        if self._folder.exists():
            raise FileExistsError(f"{self._folder} exists already (left over from an interrupted write?)")
        self._writer = Writer(self._folder, version=8, storage_plugin=StoragePlugin.MCAP)
        self._conns: dict[str, Any] = {}

    def __enter__(self) -> "BagWriter":
        self._writer.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._writer.close()
        if self._single:
            files = list(self._folder.glob("*.mcap"))
            files[0].replace(self.path)
            for f in self._folder.iterdir():
                f.unlink()
            self._folder.rmdir()

    def add_topic(self, topic: str, msgtype: str) -> None:
        if topic in self._conns:
            return
        self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        if topic not in self._conns:
            raise KeyError(f"topic {topic!r} was not added to bag {self.path} (added: {sorted(self._conns)})")
        self._writer.write(self._conns[topic], int(timestamp_ns), data)

    def write_obj(self, topic: str, msgtype: str, timestamp_ns: int, obj: Any) -> None:
        self.add_topic(topic, msgtype)
        self.write(topic, timestamp_ns, serialize(obj, msgtype))


def _check(path: Path | str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"bag {p} does not exist")
    return p
