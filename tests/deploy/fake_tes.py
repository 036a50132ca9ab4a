#!/usr/bin/env python3
"""A stand-in for Greengrass' Token Exchange Service credential endpoint, for tests.

Usage: fake_tes.py PORT_FILE TOKEN [ACCESS_KEY SECRET_KEY]
Listens on 127.0.0.1 (IPv4 loopback, like the nucleus) on a free port, writes the port to
PORT_FILE, and answers GET /2016-11-01/credentialprovider/ with
{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} when the Authorization header is
exactly TOKEN (raw, no scheme); 403 for a wrong token, 405 for other methods, 404 for
other paths. Each request appends "<status> <path>" to PORT_FILE.log. Stops on SIGTERM,
and by itself once the process that started it is gone (a test killed by a timeout leaves
no endpoint behind).
"""
import datetime
import http.server
import json
import os
import signal
import sys
import threading
import time


def main():
    port_file, token = sys.argv[1], sys.argv[2]
    access_key = sys.argv[3] if len(sys.argv) > 3 else "FAKETESACCESSKEY0000"
    secret_key = sys.argv[4] if len(sys.argv) > 4 else "fakeTesSecretKey000000000000000000000000"
    log_path = port_file + ".log"

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            with open(log_path, "a") as log:
                log.write(f"{status} {self.path}\n")

        def do_GET(self):
            if self.path != "/2016-11-01/credentialprovider/":
                return self._answer(404, {"message": "not found"})
            if self.headers.get("Authorization") != token:
                return self._answer(403, {"message": "invalid token"})
            expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
            return self._answer(200, {
                "AccessKeyId": access_key,
                "SecretAccessKey": secret_key,
                "Token": "fake-session-token",
                "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            })

        def do_POST(self):
            self._answer(405, {"message": "method not allowed"})

        do_PUT = do_POST
        do_DELETE = do_POST

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
