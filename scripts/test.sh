#!/usr/bin/env bash
# Set up if needed, then run every package's tests (pytest arguments pass through).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh"
# shellcheck disable=SC1091
. "$repo/scripts/env.sh"
cd "$repo"
# Two workers (pytest-xdist), each test in its own ROS domain; the network-namespace
# tests one at a time (conftest.py). AUTOFOCUS_TEST_WORKERS=0 runs all in this process;
# a -n of your own, given after, wins.
workers="${AUTOFOCUS_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  exec python -m pytest "$@"
fi
exec python -m pytest -n "$workers" --dist loadgroup "$@"
