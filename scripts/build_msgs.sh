#!/usr/bin/env bash
# Builds msg/ and srv/ with rosidl against the ROS 2 wheels in a virtualenv and installs the generated Python
# modules into it. The package's own Python sources stay in the checkout (a .pth file puts it on sys.path), and
# scripts/ament_prefix.sh makes the virtualenv a complete ament prefix for this package (share/ and lib/ as a colcon
# install space has them), so `ros2 launch` / `ros2 run siamattn_ros ...` work with it.
set -euo pipefail
venv=$(cd "${1:-.venv}" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
py="$venv/bin/python"
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# The wheels' exported CMake targets name the include directories of the machine that built them (see
# ../shared/notes/environment.md); CMake refuses non-existent paths, so point them at this interpreter's.
pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
tag=cp${pyver/./}
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
for pair in "/opt/python/$tag-$tag/include/python$pyver:$pyinc" \
            "/opt/python/$tag-$tag/lib/python$pyver/site-packages/numpy/_core/include:$npinc"; do
  link=${pair%%:*}; target=${pair#*:}
  if [ ! -e "$link" ]; then
    mkdir -p "$(dirname "$link")" 2>/dev/null && ln -sfn "$target" "$link" || {
      echo "build_msgs: cannot create $link (needs root); create it as a link to $target and re-run" >&2; exit 1; }
  fi
done

export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
build="$repo/build/msgs"
mkdir -p "$repo/build"
cmake -S "$repo" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$py" \
      -DSIAMATTN_INSTALL_PYTHON=OFF -DBUILD_TESTING=OFF > "$build.log" 2>&1 \
  && cmake --build "$build" -j2 >> "$build.log" 2>&1 \
  && cmake --install "$build" >> "$build.log" 2>&1 \
  || { tail -40 "$build.log" >&2; echo "build_msgs: failed, full log in $build.log" >&2; exit 1; }

# rosidl installs an empty siamattn_ros/__init__.py; drop it so the checkout's package (which extends its __path__
# to this directory) is the one imported.
rm -rf "$site/siamattn_ros/__init__.py" "$site/siamattn_ros/__pycache__"
echo "$repo" > "$site/siamattn_ros_checkout.pth"
rm -f "$site/siamattn_ros_dev.pth"
"$py" -c 'from siamattn_ros.msg import InitBox, TrackResult; from siamattn_ros.srv import InitTrack; import siamattn_ros; print("build_msgs: siamattn_ros", siamattn_ros.__version__, "messages installed")'
bash "$repo/scripts/ament_prefix.sh" "$venv" "$py"
