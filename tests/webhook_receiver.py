"""A webhook receiver for tests/tests/webhooks.rs that checks every delivery
with an independent implementation of Standard Webhooks: the
`standardwebhooks` package from PyPI (the spec authors' reference library).

It listens on 127.0.0.1 (a free port, printed as the first line of stdout)
and keeps what it saw. The test configures and reads it over HTTP:

  POST /_control/config {"path": "/hook/a", "secrets": ["whsec_..."], "fail": 2}
      deliveries to /hook/a are verified against each secret separately
      (so a rotation shows which secrets signed); the first `fail` attempts
      of each message (each webhook-id) are answered 500, the rest 200
  GET  /_control/log     every delivery so far: path, headers, body, the
      status answered, and per secret whether `Webhook(secret).verify`
      accepted it (with the library's error when not)

Anything else is a delivery.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

LOCK = threading.Lock()
CONFIG = {}
LOG = []
SEEN = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_control/log":
            with LOCK:
                return self._answer(200, {"deliveries": list(LOG)})
        return self._answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if self.path == "/_control/config":
            cfg = json.loads(raw)
            with LOCK:
                CONFIG[cfg["path"]] = cfg
            return self._answer(200, {"ok": True})
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            cfg = CONFIG.get(self.path, {"secrets": [], "fail": 0})
            key = (self.path, headers.get("webhook-id"))
            SEEN[key] = SEEN.get(key, 0) + 1
            nth = SEEN[key]
        verified = []
        for secret in cfg["secrets"]:
            try:
                Webhook(secret).verify(raw, headers)
                verified.append({"ok": True})
            except Exception as e:  # the library's own verdict, whatever it is
                verified.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
        status = 500 if nth <= cfg.get("fail", 0) else 200
        entry = {
            "path": self.path,
            "nth": nth,
            "headers": {k: headers.get(k) for k in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")},
            "body": raw.decode("utf-8", "replace"),
            "verified": verified,
            "status": status,
        }
        with LOCK:
            LOG.append(entry)
        return self._answer(status, {"received": nth})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
