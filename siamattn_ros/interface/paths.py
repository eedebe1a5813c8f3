"""Where the package's data folders (config/, models/, recordings/) are: the source checkout first, then the share
directory of an ament (colcon) install when ament_index_python is importable."""
from __future__ import annotations

from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def package_dirs(subdir: str) -> list[Path]:
    """Candidate folders for `subdir` (e.g. "config/trackers", "models"), in search order; they may not exist."""
    dirs = [SOURCE_ROOT / subdir]
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("siamattn_ros")) / subdir)
    except Exception:  # ament_index_python missing, or the package is not installed in an ament prefix
        pass
    return dirs


def package_file(relative: str) -> Path:
    """The first existing `relative` file of package_dirs (e.g. "config/train/embedded.yaml"); the source-tree path
    when none exists, so that a message naming it says where it was expected."""
    folder, name = str(Path(relative).parent), Path(relative).name
    for d in package_dirs(folder):
        if (d / name).is_file():
            return d / name
    return SOURCE_ROOT / relative
