#!/usr/bin/env bash
# Gather what the GPU machine lacks into .gpu_bundle/ (git-ignored), for `python -m siamattn_ros.tools.gpu_check`.
#
# The GPU machine (nvidia-h200: Python 3.12, torch 2.11, torchvision 0.26, numpy, opencv-python-headless, pyyaml;
# no network) lacks only the pure-Python bag reader `rosbags` and its compiled dependencies. This downloads their
# cp312 manylinux x86_64 wheels, without dependencies (each one is named here):
#   rosbags 0.11.9 (reads the bundled recordings), ruamel.yaml 0.19.1 (bag metadata), lz4 4.4.5 and
#   backports.zstd 1.8.0 (mcap chunk compression), apsw 3.54.1.0 (sqlite3 storage plugin, imported by rosbags).
# ROS 2 (rclpy and our generated messages) is NOT bundled: cp312 rclpy wheels exist, but our messages would have to be
# built there with rosidl; gpu_check then replays the recording in-process (the node's decode + tracker, no DDS).
#
#   bash scripts/gpu_bundle.sh            # -> .gpu_bundle/whl/*.whl, prints the sizes
# Then, with the device tool (see docs/PERFORMANCE.md), carry [".gpu_bundle"].
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu_bundle
PY=${PYTHON:-python3}
PKGS=(rosbags==0.11.9 ruamel.yaml==0.19.1 lz4==4.4.5 backports.zstd==1.8.0 apsw==3.54.1.0)
rm -rf "$OUT/whl"
mkdir -p "$OUT/whl"
for pkg in "${PKGS[@]}"; do
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64 \
    --platform any -d "$OUT/whl" "$pkg" 2>&1 | grep -v "^WARNING: Location" || true
done
n=$(ls "$OUT"/whl/*.whl | wc -l)
if [ "$n" -ne "${#PKGS[@]}" ]; then
  echo "gpu_bundle: expected ${#PKGS[@]} wheels, got $n:" >&2; ls "$OUT/whl" >&2; exit 1
fi
ls -l "$OUT/whl" | awk 'NR>1 {printf "  %8.1f KiB  %s\n", $5/1024, $9}'
bundle=$(du -sk "$OUT" | cut -f1)
# What travels: tracked + untracked-not-ignored files, plus the carried bundle (limit 64 MiB in all).
tree=$(git ls-files -z --cached --others --exclude-standard | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
echo "gpu_bundle: $OUT = ${bundle} KiB; working tree that travels = ${tree} KiB; total $(( (bundle + tree) / 1024 )) MiB (limit 64)"
if [ $((bundle + tree)) -gt $((60 * 1024)) ]; then
  echo "gpu_bundle: over 60 MiB: the device tool would refuse the tree" >&2; exit 1
fi
