#!/usr/bin/env bash
# Create an SROS2 (DDS Security) keystore for a two-machine autofocus: one enclave for
# the PC's processes (camera, sharpness, focus server, client) and one for the Pi's motor
# driver, both signed by the keystore's own CA. With ROS_SECURITY_STRATEGY=Enforce, a
# participant without a certificate from this CA cannot join the domain, so it can
# neither hear nor move the motor (docs/reliability.md).
#
# Needs a ROS 2 installation (Jazzy/Kilted from apt) with sros2 (`ros2 security`) and a
# Fast DDS built with its security plugins, as the apt packages are. The PyPI wheels this
# repository's scripts/setup.sh installs do NOT have them: a node started with
# ROS_SECURITY_ENABLE=true fails with "This Fast DDS version doesn't have the security
# libraries" (tested: src/autofocus/test/test_security.py).
#
# Usage: scripts/sros2_keystore.sh [KEYSTORE_DIR]     (default: ~/.ros/autofocus_keystore)
set -euo pipefail

keystore="${1:-$HOME/.ros/autofocus_keystore}"
pc_enclave=/autofocus/pc
pi_enclave=/autofocus/pi

if ! command -v ros2 >/dev/null 2>&1 || ! ros2 security --help >/dev/null 2>&1; then
  cat >&2 <<'MSG'
sros2_keystore: `ros2 security` is not available. SROS2 needs a ROS 2 installation with
the sros2 package and a Fast DDS built with security (apt: ros-$ROS_DISTRO-ros-base and
ros-$ROS_DISTRO-sros2; source /opt/ros/$ROS_DISTRO/setup.bash first). The pip environment
of scripts/setup.sh has neither: there, use the discovery profiles
config/fastdds_peers_pc.xml and autofocus_motor/config/fastdds_peers_pi.xml instead.
MSG
  exit 1
fi

if [ -e "$keystore/enclaves" ]; then
  echo "sros2_keystore: $keystore already holds a keystore; adding the enclaves to it"
else
  ros2 security create_keystore "$keystore"
fi
for enclave in "$pc_enclave" "$pi_enclave"; do
  ros2 security create_enclave "$keystore" "$enclave"
done

cat <<MSG
Keystore ready: $keystore
Copy to the Pi only what it needs: $keystore/public and $keystore/enclaves/governance.p7s,
$keystore/enclaves$pi_enclave (never $keystore/private, the CA's key, nor the PC's enclave).

On both machines, before starting any node:
  export ROS_SECURITY_KEYSTORE=$keystore
  export ROS_SECURITY_ENABLE=true
  export ROS_SECURITY_STRATEGY=Enforce
PC:  ROS_SECURITY_ENCLAVE_OVERRIDE=$pc_enclave ros2 launch autofocus bringup.launch.py launch_motor:=false
Pi:  ROS_SECURITY_ENCLAVE_OVERRIDE=$pi_enclave ros2 launch autofocus_motor motor.launch.py
MSG
