#!/usr/bin/env bash
# Check a camera that turns its own lens and print a report to paste into an issue:
#   scripts/hardware_check.sh /dev/video0     (UVC webcam)
#   scripts/hardware_check.sh picamera2       (Pi Camera Module 3)
#   scripts/hardware_check.sh gphoto2         (Canon/Nikon DSLR over USB)
# Extra options: --help. Needs scripts/setup.sh to have run.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$repo/scripts/env.sh"
if command -v v4l2-ctl >/dev/null && [[ "${1:-}" == /dev/video* ]]; then
  echo "### v4l2-ctl -d $1 -l"; echo '```'; v4l2-ctl -d "$1" -l || true; echo '```'
fi
exec python -m autofocus.tools.hardware_check "$@"
