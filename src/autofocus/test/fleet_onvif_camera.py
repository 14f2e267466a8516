"""An ONVIF-style camera for the WS-Discovery test, run inside a network namespace:
a WS-Discovery responder (the WSDiscovery library's publisher) announcing a
NetworkVideoTransmitter, and an HTTP snapshot server at /snapshot.jpg.

Usage: fleet_onvif_camera.py ADDRESS PORT IMAGE. Prints READY; serves until killed.
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from wsdiscovery import QName
from wsdiscovery.publishing import ThreadedWSPublishing

NVT = QName('http://www.onvif.org/ver10/network/wsdl', 'NetworkVideoTransmitter')


def main():
    address, port, image = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = open(image, 'rb').read()

    class Snapshot(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path != '/snapshot.jpg':
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header('Content-Type', 'image/jpeg')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer((address, port), Snapshot)
    publisher = ThreadedWSPublishing()
    publisher.start()
    publisher.publishService(types=[NVT], scopes=[],
                             xAddrs=[f'http://{address}:{port}/onvif/device_service'])
    print('READY', flush=True)
    try:
        server.serve_forever()
    finally:
        publisher.stop()


if __name__ == '__main__':
    main()
