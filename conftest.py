"""Fixtures shared by every package's tests: DDS isolation, in-process rclpy
nodes, and node processes started the way a user starts them.

DDS isolation: each test gets its own ROS_DOMAIN_ID (derived from this pytest
process's pid, so two test runs on one machine do not hear each other) and
discovery limited to this machine.
"""
import fcntl
import itertools
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import traceback

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parent
FASTDDS_PROFILE = REPO / 'src' / 'autofocus' / 'config' / 'fastdds.xml'

# A suite started in the background by a non-interactive shell inherits SIGINT ignored, and
# every node it starts would too (an ignored signal stays ignored across exec): the tests'
# Ctrl+C would do nothing. A handled signal is reset to the default in a child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(FASTDDS_PROFILE)

# Domain IDs 1..100 are safe on Linux. Each test holds an exclusive lock on
# the domain it uses, so two test runs on one machine (a developer's and a
# CI run, or two checkouts) never share one; the lock is released only after
# the test's processes have stopped, so a late-dying node is never heard by
# the next test either.
DOMAIN_IDS = range(1, 101)
_LOCK_DIR = pathlib.Path(tempfile.gettempdir())
_next_start = itertools.count(os.getpid())


def _lock_free_domain():
    start = next(_next_start) * 7
    for offset in range(len(DOMAIN_IDS)):
        domain = DOMAIN_IDS[(start + offset) % len(DOMAIN_IDS)]
        lock = open(_LOCK_DIR / f'autofocus-ros-domain-{domain}.lock', 'w')
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return domain, lock
    raise RuntimeError('every ROS domain ID 1..100 is locked by other test runs')


@pytest.fixture(autouse=True)
def ros_domain(monkeypatch):
    domain, lock = _lock_free_domain()
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    yield domain
    lock.close()


# scripts/test.sh runs the suite on two pytest-xdist workers (--dist loadgroup): each
# test gets its own ROS domain (above), so two graphs never hear each other. The tests
# that build network namespaces (link cut, strangers, DDS security) run one at a time,
# in one group: each judges sub-second stops across a whole simulated network.
SERIAL_MARKERS = ('netns',)
SERIAL_PATHS = ('test_security.py', 'test_link_cut.py')


# Tests that start node processes (whole graphs over real DDS) get one rerun: in
# fresh-clone runs on this 2-core machine about one run in three had one such test fail on
# timing (each cause found was fixed; none was the same twice). A rerun is counted in the
# summary line ("N rerun") and listed by -ra with its first failure: read them, they are
# the next defects to fix, not noise to ignore.
GRAPH_RERUNS = 1


_reruns = []


def pytest_runtest_logreport(report):
    if report.outcome == 'rerun':
        _reruns.append(report)


def pytest_terminal_summary(terminalreporter):
    # -rR names the reruns only; their first failure is what a reader needs to fix.
    for report in _reruns:
        terminalreporter.write_sep('_', f'first failure of the rerun {report.nodeid}')
        terminalreporter.write_line(report.longreprtext[-6000:])
    for line in _shm_report:
        terminalreporter.write_line(line)


def _clean_dead_shared_memory() -> str:
    """Remove the Fast DDS shared-memory files whose owner process is gone, with Fast DDS's
    own tool (`fastdds shm clean`, in the venv: it deletes only files whose lock no live
    process holds). Our profile gives every process a 64 MB segment in /dev/shm, which is
    RAM, and a process the tests kill (SIGKILL: a killed driver, a cut link) cannot remove
    its own: a day of runs on a developer's machine left 17 GB of them. Returns the tool's
    report; raises OSError or subprocess.SubprocessError when it cannot run."""
    # The wheel's `fastdds` script runs whichever python3 is first on PATH: run its tool
    # with this interpreter (which has psutil, which the tool imports).
    tool = pathlib.Path(sys.prefix) / 'tools' / 'fastdds' / 'fastdds.py'
    command = [sys.executable, str(tool)] if tool.exists() else ['fastdds']
    result = subprocess.run(command + ['shm', 'clean'], capture_output=True, text=True,
                            timeout=60, check=True)
    return ' '.join(result.stdout.split())


@pytest.fixture
def clean_dead_shared_memory():
    return _clean_dead_shared_memory


def pytest_sessionfinish(session):
    if hasattr(session.config, 'workerinput'):
        return                  # an xdist worker: the controller cleans once, after them all
    try:
        report = _clean_dead_shared_memory()
    except (OSError, subprocess.SubprocessError) as error:
        report = f'could not run `fastdds shm clean` ({error}): /dev/shm may hold leftovers'
    _shm_report.append(f'Fast DDS shared memory after the tests: {report}')


_shm_report = []


def pytest_itemcollected(item):
    # At collection, before xdist's pytest_collection_modifyitems reads the groups.
    if (any(item.get_closest_marker(name) for name in SERIAL_MARKERS)
            or any(part in str(item.path) for part in SERIAL_PATHS)):
        item.add_marker(pytest.mark.xdist_group('netns'))
    if 'node_process' in getattr(item, 'fixturenames', ()):
        item.add_marker(pytest.mark.flaky(reruns=GRAPH_RERUNS, reruns_delay=1))


class RosHarness:
    """An rclpy context with one node spun by a background executor thread."""

    def __init__(self):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('test_harness', context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        # Tracebacks of exceptions raised in node callbacks: printed at once (pytest shows
        # them with a failing test's output) and turned into a failure by the fixture.
        self.errors: list[str] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        # spin() would end at a callback's exception (the executor re-raises it) and stop
        # every later callback: record it and keep spinning until the context shuts down.
        from rclpy.executors import ExternalShutdownException, ShutdownException

        while self.context.ok() and not self._closing.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except (ShutdownException, ExternalShutdownException):
                break                           # close(): the executor or context shut down
            except Exception:
                if not self.context.ok():
                    break
                text = traceback.format_exc()
                self.errors.append(text)
                print(f'exception in a node callback of the test harness:\n{text}',
                      file=sys.stderr, flush=True)

    def check_callbacks(self):
        """Fail the test when a node callback raised (each traceback in the message)."""
        if self.errors:
            pytest.fail(f'{len(self.errors)} exception(s) in node callbacks:\n'
                        + '\n'.join(self.errors), pytrace=False)

    def add_node(self, node):
        self.executor.add_node(node)
        return node

    def collect(self, msg_type, topic, qos=10):
        """Subscribe and return the list that received messages are appended to."""
        received = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def close(self):
        # The spinning thread ends first: a node destroyed under a running spin_once raised
        # InvalidHandle in the executor (seen at a teardown).
        self._closing.set()
        self._thread.join(timeout=10.0)
        self.executor.shutdown(timeout_sec=2.0)
        for node in list(self.executor.get_nodes()):
            node.destroy_node()
        self.rclpy.shutdown(context=self.context)
        self._thread.join(timeout=5.0)


@pytest.fixture
def ros(ros_domain):
    harness = RosHarness()
    yield harness
    harness.close()
    harness.check_callbacks()


def executable(package: str, name: str) -> str:
    from ament_index_python.packages import get_package_prefix

    path = pathlib.Path(get_package_prefix(package), 'lib', package, name)
    if not path.exists():
        raise FileNotFoundError(f'{path} not found: run scripts/setup.sh (colcon build)')
    return str(path)


class NodeProcess:
    def __init__(self, popen, log_path):
        self.popen = popen
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def alive(self) -> bool:
        return self.popen.poll() is None

    def interrupt(self, timeout=10.0) -> int:
        """Ctrl+C, as a user would; kill only if it does not stop by itself."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


@pytest.fixture
def node_process(tmp_path):
    """Start a package's executable as a separate process; all are stopped after the test."""
    started = []

    def start(package, name, params=None, ros_args=(), args=(), node_name=None, ros=True):
        cmd = [executable(package, name), *args]
        if not ros:  # a plain program (the bringup launcher, the focus client)
            return _start(cmd, name)
        cmd.append('--ros-args')
        if params:
            params_file = tmp_path / f'{name}-{len(started)}.yaml'
            params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': params}}))
            cmd += ['--params-file', str(params_file)]
        if node_name:
            cmd += ['-r', f'__node:={node_name}']
        cmd += list(ros_args)
        return _start(cmd, name)

    def _start(cmd, name):
        log_path = tmp_path / f'{name}-{len(started)}.log'
        with open(log_path, 'wb') as log:
            popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED='1'))
        proc = NodeProcess(popen, log_path)
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        # A launcher gives its nodes 10 s to stop before it kills them.
        proc.interrupt(timeout=15.0)
