"""Real servers on 127.0.0.1 for data_sync tests: a Range-capable HTTP server with fault
injection, and an rsync daemon. One place, for every test that needs them."""
import email.utils
import http.server
import os
import socket
import subprocess
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        path = self.path.split('?')[0]
        server.requests.append((path, self.headers.get('Range')))
        fault = server.faults.get(path, {})
        if fault.get('delay'):
            time.sleep(fault['delay'])
        if fault.get('redirect'):
            self.send_response(302)
            self.send_header('Location', fault['redirect'])
            self.send_header('Content-Length', '0')
            return self.end_headers()
        if fault.get('status_503', 0) > 0:
            fault['status_503'] -= 1
            return self._send(503, b'busy')
        file = os.path.join(server.root, path.lstrip('/'))
        if not os.path.isfile(file):
            return self._send(404, b'not found')
        with open(file, 'rb') as f:
            data = bytearray(f.read())
        validators = _validators(file)
        start, end = 0, len(data) - 1
        rng = self.headers.get('Range')
        if self.headers.get('If-Range') not in (None,) + validators:
            rng = None                                # another version than the client has: all of it
        if rng and rng.startswith('bytes='):
            a, _, b = rng[6:].partition('-')
            start, end = int(a or 0), int(b) if b else len(data) - 1
            if start >= len(data):
                return self._send(416, b'')
        middle = len(data) // 2
        if fault.get('flip') and start <= middle <= end:
            fault['flip'] = False
            data[middle] ^= 0xFF                      # one flipped byte, served once
        body = bytes(data[start:end + 1])
        self.send_response(206 if rng else 200)
        self.send_header('Accept-Ranges', 'bytes')
        self.send_header('ETag', validators[0])
        self.send_header('Last-Modified', validators[1])
        self.send_header('Content-Length', str(len(body)))
        if rng:
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, len(data)))
        self.end_headers()
        drop = fault.pop('drop_after', None)
        if drop is not None and drop < len(body):
            self.wfile.write(body[:drop])             # the connection dies mid-file, once
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def do_HEAD(self):
        """The GET's status and headers for the whole file, no body. Of the faults only `announce`
        applies: the size HEAD says instead of the file's (upstream replaced it between HEAD and GET)."""
        path = self.path.split('?')[0]
        file = os.path.join(self.server.root, path.lstrip('/'))
        if not os.path.isfile(file):
            self.send_response(404)
            self.send_header('Content-Length', '0')
        else:
            self.send_response(200)
            for name, value in zip(('ETag', 'Last-Modified'), _validators(file)):
                self.send_header(name, value)
            size = self.server.faults.get(path, {}).get('announce', os.path.getsize(file))
            self.send_header('Content-Length', str(size))
        self.end_headers()

    def _send(self, code, body):
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _validators(path):
    """(ETag, Last-Modified) of a file, as a static file server derives them."""
    info = os.stat(path)
    return '"%x-%x"' % (info.st_mtime_ns, info.st_size), email.utils.formatdate(info.st_mtime, usegmt=True)


class HttpServer(object):
    """Serves `root` at http://127.0.0.1:<port>/ (ETag, Last-Modified, Range, If-Range);
    faults[path] = {drop_after, status_503, flip, delay, announce, redirect}."""

    def __init__(self, root):
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.root, self.httpd.faults, self.httpd.requests = str(root), {}, []
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def faults(self):
        return self.httpd.faults

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class RsyncDaemon(object):
    """A real rsync daemon serving `modules` ({name: directory}) read-only."""

    def __init__(self, workdir, modules):
        self.port = free_port()
        conf = os.path.join(str(workdir), 'rsyncd.conf')
        with open(conf, 'w') as f:
            f.write('use chroot = no\nread only = yes\npid file = %s/rsyncd.pid\n' % workdir)
            for name, path in modules.items():
                f.write('[%s]\n    path = %s\n' % (name, path))
        self.proc = subprocess.Popen(['rsync', '--daemon', '--no-detach', '--config', conf, '--port', str(self.port),
                                      '--address', '127.0.0.1'])
        self.url = 'rsync://127.0.0.1:%d' % self.port
        for _ in range(100):
            try:
                socket.create_connection(('127.0.0.1', self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('rsync daemon did not start')

    def close(self):
        self.proc.terminate()
        self.proc.wait()
