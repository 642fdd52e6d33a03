#!/usr/bin/python3
"""A fake CRM or SMS gateway for the integration tests: a small HTTP server
that checks each call's signature and appends one JSON line per call to a
log. It never writes a phone number: the SMS gateway logs the SHA-256 of
To, so the leak scan stays meaningful.

  fake_endpoint.py --kind crm|sms --port P --secret S --log FILE [--url URL]
                   [--fail N]   (answer 503 to the first N calls)
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=("crm", "sms"), required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--url", default="")
    ap.add_argument("--fail", type=int, default=0)
    a = ap.parse_args()
    state = {"calls": 0}

    def b64mac(msg):
        return base64.b64encode(hmac.new(a.secret.encode(), msg, hashlib.sha256).digest()).decode()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            state["calls"] += 1
            rec = {"key": self.headers.get("Idempotency-Key"), "path": self.path}
            sig = self.headers.get("X-Pos-Signature", "")
            if a.kind == "crm":
                ts = self.headers.get("X-Pos-Timestamp", "")
                rec["sig_ok"] = hmac.compare_digest(sig, b64mac(ts.encode() + b"." + body))
                rec["event"] = json.loads(body)
            else:
                params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
                msg = a.url + "".join(k + params[k] for k in sorted(params))
                rec["sig_ok"] = hmac.compare_digest(sig, b64mac(msg.encode()))
                rec["to_sha256"] = hashlib.sha256(params.get("To", "").encode()).hexdigest()
                rec["from"] = params.get("From")
                rec["body"] = params.get("Body")
                rec["account"] = params.get("Account")
            status = 503 if state["calls"] <= a.fail else 200
            rec["status"] = status
            with open(a.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    print("ready", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
