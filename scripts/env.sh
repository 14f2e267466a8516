# Source me (bash): the venv with the ROS 2 wheels, this repository's built
# packages, and the DDS settings every autofocus process should run with.
_af_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_af_venv="${AUTOFOCUS_VENV:-$_af_repo/.venv}"
if [ ! -f "$_af_repo/install/local_setup.bash" ]; then
  echo "autofocus: not built yet; run scripts/setup.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
# colcon's and venv's scripts read unset variables: relax `set -u` while sourcing.
case $- in *u*) _af_nounset=1; set +u ;; *) _af_nounset= ;; esac
# shellcheck disable=SC1091
. "$_af_venv/bin/activate"
export AMENT_PREFIX_PATH="$_af_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_af_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# shellcheck disable=SC1091
. "$_af_repo/install/local_setup.bash"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Fast DDS's default 512 KB shared-memory segment silently drops best-effort
# images above ~0.5 MB between processes; our profile enlarges it.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_af_repo/src/autofocus/config/fastdds.xml}"
# Keep glibc from unmapping and re-mapping multi-megabyte image buffers on
# every frame (roughly doubles 1080p throughput between processes).
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-67108864}"
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-134217728}"
export MALLOC_TOP_PAD_="${MALLOC_TOP_PAD_:-67108864}"
[ -n "$_af_nounset" ] && set -u
unset _af_repo _af_venv _af_nounset
