#!/usr/bin/env python3
"""The shop: a tiny HTTP app for the deployer's example and tests.

It listens on $BIND:$PORT (given by the deployer's .env), answers every
path with its version, instance and replica, and /health with 200 (or 500
when broken). On SIGTERM it stops accepting and finishes the requests in
flight, then exits: a graceful stop.
"""
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "v1"
HEALTHY = True


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            code, body = (200, "ok\n") if HEALTHY else (500, "broken\n")
        else:
            code, body = 200, "shop {} instance {} replica {}\n".format(
                VERSION, os.environ.get("INSTANCE"), os.environ.get("REPLICA"))
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


server = Server((os.environ.get("BIND", "127.0.0.1"), int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
