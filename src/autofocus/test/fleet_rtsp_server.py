"""A real RTSP server for the fleet tests: GStreamer's gst-rtsp-server (Debian's
gir1.2-gst-rtsp-server-1.0) serving one still image as an MJPEG (RTP/JPEG) stream.

Run with the system python3 (python3-gi): rtsp_server.py PORT PATH IMAGE.
Prints READY when it listens; serves until killed. With FLEET_RTSP_USER and
FLEET_RTSP_PASSWORD set, the stream needs RTSP Basic authentication.
"""
import os
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    port, path, image = sys.argv[1], sys.argv[2], sys.argv[3]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(port)
    decoder = 'jpegdec' if image.lower().endswith(('.jpg', '.jpeg')) else 'pngdec'
    launch = (f'( filesrc location="{image}" ! {decoder} ! imagefreeze ! videoconvert ! '
              'video/x-raw,format=I420,framerate=5/1 ! jpegenc quality=95 ! '
              'rtpjpegpay name=pay0 pt=26 )')
    mounts = server.get_mount_points()
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    user = os.environ.get('FLEET_RTSP_USER')
    if user:  # every path needs Basic authentication: no default token, so 401 first
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, 'viewer')
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(
            user, os.environ['FLEET_RTSP_PASSWORD']), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(Gst.Structure.new_from_string(
            'viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true'))
        factory.set_permissions(permissions)
    mounts.add_factory(path, factory)
    server.attach(None)
    print('READY', flush=True)
    GLib.MainLoop().run()


if __name__ == '__main__':
    main()
