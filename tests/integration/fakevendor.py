#!/usr/bin/python3
"""A fake vendor backend for the vendor tests: bookable slots, signed calls.

    fakevendor.py --port P --secret S [--fail-reschedules N] [--refuse-option ID]

GET  /activities/{ref}/options     {"options":[{"id","at"}]}
POST /activities/{ref}/reschedule  {"option","at","customer"} + Idempotency-Key;
                                   the first N answer 500 (before recording);
                                   option ID is refused with 409 (taken)
GET  /_log                          what it saw, for the test

Every call must carry X-Pos-Timestamp and X-Pos-Signature = base64(HMAC-SHA256(
secret, timestamp "." body)); a bad one is answered 401 and counted. A
reschedule with a key seen before is answered as the first time and not
recorded again: the backend sees one reschedule per key."""
import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
LOG = {"options_calls": 0, "reschedule_attempts": 0, "reschedules": [], "bad_signatures": 0,
       "keys": [], "customers": [], "seen": []}
DONE = {}


def slots():
    base = int(time.time()) // 86400 * 86400 + 10 * 86400
    return [{"id": f"slot-{i}", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                      time.gmtime(base + i * 86400 + 9 * 3600))}
            for i in range(1, 4)]


class Handler(BaseHTTPRequestHandler):
    server_version = "fakevendor"

    def log_message(self, *args):
        pass

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def signed(self, body):
        ts = self.headers.get("X-Pos-Timestamp", "")
        sig = self.headers.get("X-Pos-Signature", "")
        want = base64.b64encode(hmac.new(self.server.secret, ts.encode() + b"." + body,
                                         hashlib.sha256).digest()).decode()
        ok = ts.isdigit() and abs(int(ts) - time.time()) < 300 and hmac.compare_digest(sig, want)
        with LOCK:
            LOG["seen"].append({"path": self.path, "headers": dict(self.headers),
                                "body": body.decode(errors="replace")})
            if not ok:
                LOG["bad_signatures"] += 1
            else:
                LOG["customers"].append(self.headers.get("X-Pos-Customer", ""))
        return ok

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.answer(200, LOG)
        parts = self.path.split("/")
        if len(parts) == 4 and parts[1] == "activities" and parts[3] == "options":
            if not self.signed(b""):
                return self.answer(401, {"error": "bad signature"})
            with LOCK:
                LOG["options_calls"] += 1
            return self.answer(200, {"options": slots()})
        return self.answer(404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        parts = self.path.split("/")
        if not (len(parts) == 4 and parts[1] == "activities" and parts[3] == "reschedule"):
            return self.answer(404, {"error": "not found"})
        if not self.signed(body):
            return self.answer(401, {"error": "bad signature"})
        key = self.headers.get("Idempotency-Key", "")
        with LOCK:
            LOG["reschedule_attempts"] += 1
            LOG["keys"].append(key)
            if self.server.fail > 0:
                self.server.fail -= 1
                return self.answer(500, {"error": "try again"})
            if key in DONE:
                return self.answer(200, DONE[key])
            req = json.loads(body)
            if req.get("option") == self.server.refuse:
                return self.answer(409, {"error": "slot taken"})
            rec = {"ref": parts[2], "option": req.get("option"), "at": req.get("at"),
                   "customer": req.get("customer"), "key": key}
            LOG["reschedules"].append(rec)
            DONE[key] = {"ref": parts[2], "status": "rescheduled", "at": req.get("at")}
            return self.answer(200, DONE[key])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--fail-reschedules", type=int, default=0)
    ap.add_argument("--refuse-option", default="")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.secret = a.secret.encode()
    srv.fail = a.fail_reschedules
    srv.refuse = a.refuse_option
    srv.serve_forever()


if __name__ == "__main__":
    main()
