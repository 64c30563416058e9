#!/usr/bin/env python3
"""The shop: a tiny HTTP app for the deployer's example and tests.

It listens on $BIND:$PORT (given by the deployer's .env), answers every
path with its version, instance and replica, and /health with 200 (or 500
when broken). At start it counts itself in the cache ($REDIS_URL, keys
under $CACHE_PREFIX) and, from v4 on, reads the note its migration 002
wrote into its PostgreSQL database ($DATABASE_URL, through psql) and shows
it in every answer: a v4 answer proves the migration ran. Either failing
stops the app (so its health check fails). With $SICK_DIR set (the
tests'), a file `sick-REPLICA` there makes that replica's /health answer
500 from then on, until it is restarted (the file is taken: a restart
cures it), and `always-sick-REPLICA` makes it fail for as long as the
file is there. On SIGTERM it stops accepting
and finishes the requests in flight, then exits: a graceful stop.
"""
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "v1"
HEALTHY = True
NOTES = False


def count_start():
    url = os.environ.get("REDIS_URL")
    if not url:
        return
    where = url[len("redis://"):].split("/")[0]
    host, _, port = where.rpartition(":")
    key = (os.environ.get("CACHE_PREFIX", "") + "starts").encode()
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(key), key))
        reply = s.recv(64)
    if not reply.startswith(b":"):
        sys.exit("the cache refused INCR: %r" % reply)


def note():
    if not NOTES:
        return ""
    out = subprocess.run(
        ["psql", os.environ["DATABASE_URL"], "-qtAX", "-c",
         "SELECT note FROM notes ORDER BY id LIMIT 1"],
        capture_output=True, text=True, timeout=10)
    if out.returncode != 0 or not out.stdout.strip():
        sys.exit("cannot read the notes: " + out.stderr)
    return " note: " + out.stdout.strip()


count_start()
NOTE = note()


SICK = False


def sick():
    """A replica gone bad in memory (only a restart cures it)."""
    global SICK
    where = os.environ.get("SICK_DIR")
    if not where:
        return False
    me = os.environ.get("REPLICA", "")
    try:
        os.remove(os.path.join(where, "sick-" + me))
        SICK = True
    except FileNotFoundError:
        pass
    return SICK or os.path.exists(os.path.join(where, "always-sick-" + me))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            code, body = (200, "ok\n") if HEALTHY and not sick() else (500, "broken\n")
        else:
            code, body = 200, "shop {} instance {} replica {}{}\n".format(
                VERSION, os.environ.get("INSTANCE"), os.environ.get("REPLICA"), NOTE)
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight
    request_queue_size = 128

    def server_bind(self):
        # http.server's own looks up the bound address's name (reverse
        # DNS) between bind() and listen(): on a host whose resolver is
        # slow or out of reach (a server just provisioned) the app would
        # refuse connections, and fail its health check, for the
        # resolver's whole timeout. The name serves CGI only.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


server = Server((os.environ.get("BIND", "127.0.0.1"), int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
