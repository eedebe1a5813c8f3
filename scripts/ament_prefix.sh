#!/usr/bin/env bash
# Makes PREFIX an ament prefix for this checkout's siamattn_ros, laid out as a colcon install space is:
#   share/ament_index/resource_index/packages/siamattn_ros   (what ament_index / ros2 pkg look for)
#   share/siamattn_ros/{package.xml,launch,config,models,recordings}
#   lib/siamattn_ros/{tracker_node,select_roi}                (what `ros2 run` and launch_ros execute)
# so that `ros2 launch siamattn_ros tracker.launch.py` and `ros2 run siamattn_ros tracker_node` work with
# PREFIX on AMENT_PREFIX_PATH. Used by scripts/build_msgs.sh for the development virtualenv and by the launch tests
# for a throw-away prefix.
#
# The share/ folders are links into the checkout (edits show at once, nothing large is copied); the executables run
# PYTHON (default PREFIX/bin/python) on this checkout's sources, whatever else is on sys.path. The generated
# messages (siamattn_ros.msg / .srv) are not installed here: they come from the virtualenv (scripts/build_msgs.sh).
#
# Usage: scripts/ament_prefix.sh PREFIX [PYTHON]
set -euo pipefail
prefix=$(mkdir -p "${1:?usage: ament_prefix.sh PREFIX [PYTHON]}" && cd "$1" && pwd)
py=${2:-$prefix/bin/python}
repo=$(cd "$(dirname "$0")/.." && pwd)
pkg=siamattn_ros
[ -x "$py" ] || { echo "ament_prefix: python $py is not an executable" >&2; exit 1; }

mkdir -p "$prefix/share/ament_index/resource_index/packages" "$prefix/share/$pkg" "$prefix/lib/$pkg"
touch "$prefix/share/ament_index/resource_index/packages/$pkg"
# launch/ and config/ are real directories of linked files: `ros2 launch` finds a launch file by walking
# share/siamattn_ros, and os.walk does not enter linked directories. models/ and recordings/ (large, opened by
# path) are linked whole.
for item in package.xml launch config models recordings; do
  dest="$prefix/share/$pkg/$item"
  rm -rf "$dest"
  case $item in
    launch|config)
      (cd "$repo/$item" && find . -type d) | while read -r d; do mkdir -p "$dest/$d"; done
      (cd "$repo/$item" && find . -type f ! -name '*.pyc') | while read -r f; do ln -s "$repo/$item/${f#./}" "$dest/${f#./}"; done ;;
    *) ln -s "$repo/$item" "$dest" ;;
  esac
done
for exe in tracker_node select_roi; do
  module=$(sed -n 's/^from \(siamattn_ros\.[a-z_.]*\) import main$/\1/p' "$repo/scripts/$exe")
  [ -n "$module" ] || { echo "ament_prefix: scripts/$exe does not name its module" >&2; exit 1; }
  cat > "$prefix/lib/$pkg/$exe.tmp" <<EOF
#!$py
"""ros2 run $pkg $exe: runs $module from the checkout $repo (written by scripts/ament_prefix.sh)."""
import sys

sys.path.insert(0, "$repo")
from $module import main  # noqa: E402

if __name__ == "__main__":
    main()
EOF
  chmod 755 "$prefix/lib/$pkg/$exe.tmp"
  mv -f "$prefix/lib/$pkg/$exe.tmp" "$prefix/lib/$pkg/$exe"
done
echo "ament_prefix: $prefix is an ament prefix for $pkg (checkout $repo)"
