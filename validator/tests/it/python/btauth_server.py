"""A reference btauth/1 server built on the real bittensor 11.3.0 SDK (stdlib HTTP server).

Prints its port on the first line of stdout, then answers every request:
200 {"caller": <ss58>} when `bittensor.http_auth.verify` accepts it, else 401 {"error": <SDK error class>}.
Usage: python btauth_server.py <self_hotkey_ss58>
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bittensor import http_auth

SELF = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            caller = http_auth.verify(
                dict(self.headers.items()), body,
                method=self.command, path=self.path, self_hotkey_ss58=SELF,
            )
            status, out = 200, {"caller": caller.hotkey_ss58, "body": body.decode("utf-8", "replace")}
        except http_auth.AuthError as e:
            status, out = 401, {"error": type(e).__name__}
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
