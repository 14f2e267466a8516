"""Which cameras focus_fleet checks: URLs, a file of them, host ranges with URL templates,
ONVIF WS-Discovery; and where their credentials come from.

Nothing here scans on its own: a host range is expanded only from what the user
wrote (and capped), discovery runs only when asked for.
"""
from __future__ import annotations

import ipaddress
import netrc
import os
import urllib.parse
from dataclasses import dataclass, field

from autofocus.io.camera_probe import Credentials

# URL templates of common makes: {host}, {port}. RTSP ones take the RTSP ports, HTTP ones the
# HTTP ports. (Vendors' documented defaults; main stream, first channel.)
TEMPLATES = {
    'generic': ['rtsp://{host}:{port}/', 'http://{host}:{port}/snapshot.jpg'],
    'hikvision': ['rtsp://{host}:{port}/Streaming/Channels/101',
                  'http://{host}:{port}/ISAPI/Streaming/channels/101/picture'],
    'dahua': ['rtsp://{host}:{port}/cam/realmonitor?channel=1&subtype=0',
              'http://{host}:{port}/cgi-bin/snapshot.cgi'],
    'amcrest': ['rtsp://{host}:{port}/cam/realmonitor?channel=1&subtype=0',
                'http://{host}:{port}/cgi-bin/snapshot.cgi'],
    'axis': ['rtsp://{host}:{port}/axis-media/media.amp',
             'http://{host}:{port}/axis-cgi/jpg/image.cgi'],
    'reolink': ['rtsp://{host}:{port}/h264Preview_01_main',
                'http://{host}:{port}/cgi-bin/api.cgi?cmd=Snap&channel=0'],
    'uniview': ['rtsp://{host}:{port}/unicast/c1/s0/live',
                'http://{host}:{port}/images/snapshot.jpg'],
}
MAX_HOSTS = 4096
USER_ENV, PASSWORD_ENV = 'AUTOFOCUS_CAMERA_USER', 'AUTOFOCUS_CAMERA_PASSWORD'
ONVIF_NVT = ('http://www.onvif.org/ver10/network/wsdl', 'NetworkVideoTransmitter')


class TargetError(ValueError):
    """A camera list, host range or credential source that cannot be used; says which."""


@dataclass
class Camera:
    name: str                                     # what the report calls it
    urls: list[str] = field(default_factory=list)  # tried in order until one gives frames
    host: str = ''
    ports: list[int] = field(default_factory=list)  # checked with a TCP connect first


def check_url(url: str, where: str = 'command line') -> str:
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ('rtsp', 'rtsps', 'http', 'https') or not parts.hostname:
        raise TargetError(f"{where}: '{url}' is not an rtsp:// or http(s):// camera URL")
    if parts.username or parts.password:
        raise TargetError(f'{where}: a URL holds credentials; they would show in the process '
                          'list, the shell history and the report. Put them in a netrc file '
                          f'(--credentials FILE) or in {USER_ENV}/{PASSWORD_ENV}')
    return url


def from_file(path) -> list[Camera]:
    """One camera a line: URL [name]; '#' starts a comment."""
    try:
        text = open(path, encoding='utf-8').read()
    except OSError as error:
        raise TargetError(f'--file {path}: {error.strerror}') from None
    cameras = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        url, _, name = line.partition(' ')
        url = check_url(url, f'{path}:{number}')
        cameras.append(Camera(name.strip() or url, [url]))
    return cameras


def expand_hosts(spec: str) -> list[str]:
    """'10.0.0.5', '10.0.0.5-20', '10.0.0.5-10.0.0.20', '10.0.0.0/28', comma-separated."""
    hosts = []
    for item in (s.strip() for s in spec.split(',')):
        if not item:
            continue
        try:
            if '/' in item:
                network = ipaddress.ip_network(item, strict=False)
                if network.num_addresses > MAX_HOSTS:
                    raise TargetError(f'--hosts {item}: {network.num_addresses} addresses, more '
                                      f'than {MAX_HOSTS}; name a smaller range')
                found = list(network.hosts()) or [network.network_address]
            elif '-' in item:
                first, last = item.split('-', 1)
                start = ipaddress.ip_address(first)
                if '.' not in last and ':' not in last:
                    last = first.rsplit('.', 1)[0] + '.' + last
                end = ipaddress.ip_address(last)
                if int(end) < int(start):
                    raise TargetError(f'--hosts {item}: the range ends before it starts')
                if int(end) - int(start) + 1 > MAX_HOSTS:
                    raise TargetError(f'--hosts {item}: more than {MAX_HOSTS} addresses; '
                                      'name a smaller range')
                found = [ipaddress.ip_address(n) for n in range(int(start), int(end) + 1)]
            else:
                found = [ipaddress.ip_address(item)]
        except ValueError as error:
            if isinstance(error, TargetError):
                raise
            raise TargetError(f"--hosts: '{item}' is not an address, a-b range or CIDR "
                              f'({error})') from None
        hosts += [str(h) for h in found]
    if len(hosts) > MAX_HOSTS:
        raise TargetError(f'--hosts: {len(hosts)} addresses, more than {MAX_HOSTS}')
    return list(dict.fromkeys(hosts))


def parse_ports(spec: str, option: str) -> list[int]:
    try:
        ports = [int(p) for p in spec.split(',') if p.strip()]
    except ValueError:
        raise TargetError(f"{option}: '{spec}' is not a comma-separated list of ports") from None
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise TargetError(f'{option}: ports are 1..65535')
    return ports


def host_camera(host: str, templates: list[str], rtsp_ports, http_ports) -> Camera:
    """The candidate URLs of one host: every template at every port of its scheme."""
    urls, ports = [], []
    netloc_host = f'[{host}]' if ':' in host else host
    for template in templates:
        scheme = template.split(':', 1)[0].lower()
        for port in (rtsp_ports if scheme.startswith('rtsp') else http_ports):
            urls.append(template.format(host=netloc_host, port=port))
            ports.append(port)
    return Camera(host, urls, host, list(dict.fromkeys(ports)))


def templates_for(makes: list[str], custom: list[str]) -> list[str]:
    unknown = [m for m in makes if m not in TEMPLATES]
    if unknown:
        raise TargetError(f'--make {",".join(unknown)}: unknown; known: {", ".join(TEMPLATES)}')
    templates = [t for m in makes for t in TEMPLATES[m]] + list(custom)
    for template in custom:
        if '{host}' not in template:
            raise TargetError(f"--template '{template}' has no {{host}}")
        check_url(template.replace('{host}', 'h').replace('{port}', '1'), '--template')
    return list(dict.fromkeys(templates))


def discover(seconds: float) -> list[str]:
    """Hosts of the ONVIF cameras (NetworkVideoTransmitter) that answer a WS-Discovery probe."""
    from wsdiscovery import QName
    from wsdiscovery.discovery import ThreadedWSDiscovery
    wsd = ThreadedWSDiscovery()
    wsd.start()
    try:
        services = wsd.searchServices(types=[QName(*ONVIF_NVT)], timeout=seconds)
    finally:
        wsd.stop()
    hosts = []
    for service in services:
        for xaddr in service.getXAddrs():
            host = urllib.parse.urlsplit(xaddr).hostname
            if host:
                hosts.append(host)
    return list(dict.fromkeys(hosts))


class CredentialStore:
    """Credentials per host from a netrc file (machine HOST login USER password PW; 'default'),
    else from AUTOFOCUS_CAMERA_USER / AUTOFOCUS_CAMERA_PASSWORD, else none."""

    def __init__(self, path=None, environ=os.environ):
        self._netrc = None
        if path:
            try:
                self._netrc = netrc.netrc(path)
            except (OSError, netrc.NetrcParseError) as error:
                raise TargetError(f'--credentials {path}: {error}') from None
        user = environ.get(USER_ENV)
        self._env = Credentials(user, environ.get(PASSWORD_ENV, '')) if user else None

    def for_url(self, url: str) -> Credentials | None:
        host = urllib.parse.urlsplit(url).hostname or ''
        if self._netrc is not None:
            entry = self._netrc.authenticators(host)
            if entry is not None:
                return Credentials(entry[0] or '', entry[2] or '')
        return self._env
