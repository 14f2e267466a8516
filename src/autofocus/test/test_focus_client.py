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
