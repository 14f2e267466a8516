"""focus_client in a namespaced graph, and what bringup --help says about processes."""
import pytest
from test_graph_sim import Graph

pytestmark = pytest.mark.graph


def test_focus_client_reaches_a_namespaced_graph_both_ways(ros, node_process, tmp_path):
    graph = Graph(ros, node_process, tmp_path, namespace='cam1', focus_position=610.0)
    for how in (['--namespace', 'cam1'], ['--ros-args', '-r', '__ns:=/cam1']):
        client = node_process('autofocus', 'focus_client', ros=False,
                              args=['--strategy', 'sweep', '--range', '500', '800',
                                    '--plot', '', '--wait', '30', *how])
        assert client.popen.wait(90) == 0, client.log() + graph.process.log()
        output = client.log()
        assert 'SUCCEEDED' in output, output
        assert abs(float(output.split('final position:')[1].split()[0]) - 610.0) <= 25.0
    # Without the namespace there is no server to talk to: it says so, and how to fix it.
    client = node_process('autofocus', 'focus_client', ros=False, args=['--wait', '2'])
    assert client.popen.wait(60) == 3
    assert "no action server '/focus'" in client.log()
    assert '--namespace' in client.log()


def test_bringup_help_says_what_shares_a_process(node_process):
    bringup = node_process('autofocus', 'bringup', ros=False, args=['--help'])
    assert bringup.popen.wait(60) == 0
    text = ' '.join(bringup.log().split())
    assert 'By default (compose:=true) the camera (or the simulated lens) and the sharpness ' \
           'node share one process' in text
    assert 'Each node runs as its own process' not in text


def test_ctrl_c_waits_for_a_silent_server_only_so_long(ros, node_process, tmp_path):
    import os
    import re
    import signal
    from ros_helpers import wait_for
    graph = Graph(ros, node_process, tmp_path, focus_position=500.0)
    pid = int(re.search(r'started focus_server \(.*pid (\d+)\)', graph.process.log()).group(1))
    client = node_process('autofocus', 'focus_client', ros=False,
                          args=['--strategy', 'sweep', '--plot', ''])
    assert wait_for(lambda: client.log().count(' sweep  position ') >= 2, 60.0), client.log()
    os.kill(pid, signal.SIGSTOP)            # the server hangs: no cancel answer, no result
    try:
        client.popen.send_signal(signal.SIGINT)
        assert client.popen.wait(60.0) == 130
    finally:
        os.kill(pid, signal.SIGCONT)
    output = client.log()
    assert 'canceling the goal' in output
    assert 'did not answer the cancel request within 5 s' in output
    assert 'the goal may still be running' in output
    assert 'Traceback' not in output
