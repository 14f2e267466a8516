"""A node process killed with SIGKILL leaves its Fast DDS shared-memory segment in /dev/shm
(64 MB of RAM with our profile, config/fastdds.xml); the suite removes such leftovers when
it ends (conftest.py), with Fast DDS's own `fastdds shm clean`, which must leave a live
process's segment alone."""
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

SHM = pathlib.Path('/dev/shm')
PROBE = ('import rclpy\n'
         'rclpy.init()\n'
         'node = rclpy.create_node("shm_probe")\n'
         'print("up", flush=True)\n'
         'try:\n'
         '    rclpy.spin(node)\n'          # until SIGTERM: rclpy shuts the context down
         'except Exception:\n'
         '    pass\n')

pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason='no /dev/shm on this system')


def segments():
    return {path.name[:-len('_el')] for path in SHM.glob('fastdds_*_el')
            if not path.name.startswith('fastdds_port')}


def owned_by(pid):
    """The segments whose lock file ``pid`` holds (Fast DDS flocks a segment's ``_el``
    file while its owner lives): other processes, other tests' nodes on the other xdist
    worker included, create segments at the same time."""
    inodes = set()
    for line in pathlib.Path('/proc/locks').read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == 'FLOCK' and fields[4] == str(pid):
            inodes.add(int(fields[5].split(':')[-1]))
    owned = set()
    for name in segments():
        try:
            if (SHM / f'{name}_el').stat().st_ino in inodes:
                owned.add(name)
        except FileNotFoundError:
            pass                    # another process's, removed meanwhile
    return owned


def start_probe():
    process = subprocess.Popen([sys.executable, '-c', PROBE], stdout=subprocess.PIPE,
                               text=True, env=dict(os.environ))
    assert process.stdout.readline().strip() == 'up'
    return process


def stop(process):
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_a_killed_nodes_segment_is_removed_and_a_live_ones_kept(clean_dead_shared_memory):
    killed = start_probe()
    try:
        created = owned_by(killed.pid)
        assert created, 'the node created no Fast DDS segment: is the SHM transport off?'
        live = start_probe()
        try:
            live_ones = owned_by(live.pid)
            assert live_ones and not (live_ones & created)
            killed.send_signal(signal.SIGKILL)
            killed.wait(10)
            time.sleep(0.2)
            assert created <= segments()      # the killed process could not remove it
            report = clean_dead_shared_memory()
            assert 'zombie segments cleaned' in report, report
            left = segments()
            assert not (created & left), f'a dead process\'s segment was kept: {report}'
            assert live_ones <= left, f'a live process\'s segment was removed: {report}'
            for name in created:
                assert not (SHM / name).exists()
        finally:
            stop(live)
    finally:
        stop(killed)
