#!/usr/bin/env bash
# Start the autofocus graph on a machine with only the pip environment (no
# `ros2 launch`). Arguments as for bringup.launch.py, e.g. use_sim:=true.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$repo/scripts/env.sh"
exec "$repo/install/autofocus/lib/autofocus/bringup" "$@"
