#!/usr/bin/env bash
# Set up this machine, start the autofocus graph (the simulated lens when no
# camera is attached), focus once, print the result and save the focus curve.
#   scripts/demo.sh                       # everything with defaults
#   scripts/demo.sh --strategy sweep      # focus_client options pass through
# Graph arguments: AUTOFOCUS_BRINGUP_ARGS="use_sim:=false camera_source:=/dev/video2"
# The web page is on (web:=true; AUTOFOCUS_BRINGUP_ARGS="web:=false" turns it off): the
# demo prints its URL and, from a terminal, keeps the graph up for it until Ctrl+C.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh"
# shellcheck disable=SC1091
. "$repo/scripts/env.sh"
# A private DDS domain on this machine only, unless the caller chose one.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"

log="$repo/log/demo-bringup.log"
# shellcheck disable=SC2086
"$repo/install/autofocus/lib/autofocus/bringup" web:=true ${AUTOFOCUS_BRINGUP_ARGS:-} \
  > "$log" 2>&1 &
bringup=$!
trap 'kill -INT $bringup 2>/dev/null; wait $bringup 2>/dev/null || true' EXIT
echo "[demo] graph starting (log: $log)"
web_url() { grep -o 'web page for camera .*' "$log" 2>/dev/null | head -1 || true; }
case " ${AUTOFOCUS_BRINGUP_ARGS:-} " in
  *" web:=false "*) ;;
  *) for _ in $(seq 100); do  # up to 20 s for the web node's line (its URL, with the token)
       if [ -n "$(web_url)" ] || ! kill -0 $bringup 2>/dev/null \
          || grep -q '^\[bringup\] web exited' "$log"; then break; fi
       sleep 0.2
     done ;;
esac
if [ -n "$(web_url)" ]; then
  echo "[demo] $(web_url)"
else
  grep -m1 '^\[web\].*cannot start' "$log" || true   # e.g. port 8080 taken
fi
status=0
"$repo/install/autofocus/lib/autofocus/focus_client" --plot "$repo/focus_curve.png" "$@" \
  || status=$?
grep -E "^\[(camera|focus_motor)\] .*(simulating|driver|open)" "$log" | head -3 || true
if [ -n "$(web_url)" ] && [ -t 0 ]; then
  echo "[demo] the graph stays up for the $(web_url)"
  echo "[demo] Ctrl+C to stop"
  wait $bringup || true
fi
exit $status
