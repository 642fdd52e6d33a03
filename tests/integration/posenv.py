"""The world of an integration test: real pos-central, pos-agent and pos-hwsim
processes on loopback and pseudo-terminals, in a folder under build/itest/
that the leak scan reads afterwards.

Run with Debian's /usr/bin/python3 (python3-cryptography seals EncTIDs here
independently of the C code, which also proves the HPKE interoperates)."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
BIN = os.path.join(BUILD, "bin")
ITEST = os.path.join(BUILD, "itest")

# Every TID a test uses is listed here so the leak scan can look for them.
TEST_TIDS = [
    "card:4242424242424242",
    "card:5555555555554444",
    "card:4000056655665556",
    "card:378282246310005",
    "loyalty:9900000000011",
    "loyalty:9900000000028",
    "phone:+15550100234",
    "phone:+447700900123",
    "phone:+15550100777",
    "phone:+15550100888",
]


# ---------------------------------------------------------------- TAP

class Tap:
    """Prints TAP lines; the process exits non-zero if any check failed."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, what, detail=None):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {what}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {what}", flush=True)
            if detail is not None:
                for line in str(detail).splitlines()[:30]:
                    print(f"# {line}", flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, what, f"got {got!r}, want {want!r}")

    def done(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed else 0)


def run_tap(main):
    """Runs main(tap); an exception is one failed test, never a silent pass."""
    tap = Tap()
    try:
        main(tap)
    except Exception as exc:  # report, then fail
        import traceback
        tap.ok(False, f"test raised {type(exc).__name__}: {exc}", traceback.format_exc())
    finally:
        Proc.stop_all()
    tap.done()


# ---------------------------------------------------------------- helpers

def workdir(name):
    d = os.path.join(ITEST, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=10.0, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = pred()
            if last:
                return last
        except Exception as exc:  # keep trying until the deadline
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what} (last: {last!r})")


def run(args, input=None, check=True, timeout=60):
    p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p


class Proc:
    """A background process that is always stopped when the test ends."""
    live = []

    def __init__(self, args, log, stdin=None):
        self.log = open(log, "ab")
        self.p = subprocess.Popen(args, stdin=stdin, stdout=self.log, stderr=self.log)
        Proc.live.append(self)

    def alive(self):
        return self.p.poll() is None

    def term(self, timeout=15):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    def kill9(self):
        if self.alive():
            self.p.kill()
        return self.p.wait()

    @classmethod
    def stop_all(cls):
        for pr in cls.live:
            try:
                pr.term(5)
            except Exception:
                pass
        cls.live = []


# ---------------------------------------------------------------- HPKE (RFC 9180)
# An independent implementation, used to seal test EncTIDs for central.

def _labeled_extract(suite, salt, label, ikm):
    return hmac.new(salt or b"\0" * 32, b"HPKE-v1" + suite + label + ikm, hashlib.sha256).digest()


def _labeled_expand(suite, prk, label, info, length):
    labeled = length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + labeled + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def hpke_seal(pk_raw, info, pt):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives import serialization as ser
    ske = X25519PrivateKey.generate()
    enc = ske.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    dh = ske.exchange(X25519PublicKey.from_public_bytes(pk_raw))
    kem = b"KEM" + (0x20).to_bytes(2, "big")
    eae = _labeled_extract(kem, b"", b"eae_prk", dh)
    shared = _labeled_expand(kem, eae, b"shared_secret", enc + pk_raw, 32)
    suite = b"HPKE" + (0x20).to_bytes(2, "big") + (1).to_bytes(2, "big") + (1).to_bytes(2, "big")
    psk_id_hash = _labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(suite, b"", b"info_hash", info)
    ctx = b"\0" + psk_id_hash + info_hash
    secret = _labeled_extract(suite, shared, b"secret", b"")
    key = _labeled_expand(suite, secret, b"key", ctx, 16)
    nonce = _labeled_expand(suite, secret, b"base_nonce", ctx, 12)
    return enc + AESGCM(key).encrypt(nonce, pt, b"")


def load_pub(path):
    from cryptography.hazmat.primitives import serialization as ser
    with open(path, "rb") as f:
        pk = ser.load_pem_public_key(f.read())
    raw = pk.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return raw, hashlib.sha256(raw).hexdigest()[:16]


def enctid(pub_path, store, terminal, txn, tid):
    raw, kid = load_pub(pub_path)
    info = f"pos-tid/1|{store}|{terminal}|{txn}".encode()
    sealed = hpke_seal(raw, info, tid.encode())
    return {"kid": kid, "enc": base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()}


def uuid7():
    ms = int(time.time() * 1000)
    rnd = int.from_bytes(os.urandom(10), "big")
    v = (ms << 80) | (0x7 << 76) | ((rnd >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rnd & ((1 << 62) - 1))
    h = f"{v:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rfc3339_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------- central

class Central:
    """A central home made by `pos-central setup`, served on a free port."""

    def __init__(self, base, name="central", names=()):
        self.home = os.path.join(base, name)
        run([os.path.join(BIN, "pos-central"), "setup", self.home,
             *[a for n in names for a in ("--name", n)]])
        self.port = free_port()
        self.conf = os.path.join(self.home, "central.conf")
        self._set_listen()
        self.backend = test_backend()
        self.dsn = None
        if self.backend == "postgresql":
            self.dsn = use_postgresql(self, pg_db_name(base, name))
        self.proc = None
        self.log = os.path.join(base, name + ".log")
        self.ca = os.path.join(self.home, "ca.crt")
        with open(os.path.join(self.home, "analyst.token")) as f:
            self.analyst_token = f.read().strip()
        with open(os.path.join(self.home, "admin.token")) as f:
            self.admin_token = f.read().strip()

    def _set_listen(self):
        with open(self.conf) as f:
            lines = f.read().splitlines()
        lines = [f"listen = 127.0.0.1:{self.port}" if l.startswith("listen") else l for l in lines]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def cli(self, *args, input=None, check=True):
        return run([os.path.join(BIN, "pos-central"), *args], input=input, check=check)

    def start(self):
        self.proc = Proc([os.path.join(BIN, "pos-central"), "serve", "-c", self.conf], self.log)
        wait_until(self.healthy, 15, "central health")
        return self

    def healthy(self):
        if self.proc and not self.proc.alive():
            raise RuntimeError("central exited; see " + self.log)
        st, _ = self.request("GET", "/v1/health")
        return st == 200

    def stop(self):
        rc = self.proc.term() if self.proc else None
        self.proc = None
        return rc

    def kill9(self):
        rc = self.proc.kill9() if self.proc else None
        self.proc = None
        return rc

    def query(self, sql, args=()):
        """Rows of one SELECT on this central's store, whichever the backend;
        `?` placeholders bound to args. On PostgreSQL values come back as
        text, integers as int, NULL as None."""
        if self.backend == "sqlite":
            import sqlite3
            db = sqlite3.connect(f"file:{os.path.join(self.home, 'central.db')}?mode=ro",
                                 uri=True, timeout=10)
            try:
                return [tuple(r) for r in db.execute(sql, list(args)).fetchall()]
            finally:
                db.close()
        return pg_query(self.dsn, sql, args)

    def db_bytes(self):
        """Every byte the store keeps: the SQLite file, or a pg_dump of the
        database (for checks that a secret is nowhere in it)."""
        if self.backend == "sqlite":
            with open(os.path.join(self.home, "central.db"), "rb") as f:
                return f.read()
        return subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-d", self.dsn],
                              capture_output=True, check=True).stdout

    def terminal(self, base, store, term):
        out = os.path.join(base, f"{store}-{term}")
        self.cli("terminal-cert", self.home, "--store", store, "--terminal", term, "--out", out)
        return out

    def context(self, cert_dir=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if cert_dir:
            ctx.load_cert_chain(os.path.join(cert_dir, "terminal.crt"),
                                os.path.join(cert_dir, "terminal.key"))
        return ctx

    def request(self, method, path, body=None, cert_dir=None, token=None, raw=None, timeout=10):
        """Returns (status, parsed JSON or text)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(cert_dir),
                                           timeout=timeout)
        try:
            headers = {}
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
            if data is not None:
                headers["Content-Type"] = "application/json"
            if token:
                headers["Authorization"] = f"Bearer {token}"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text
        finally:
            conn.close()


# ---------------------------------------------------------------- devices and agents

class HwSim:
    """A pos-hwsim scanner or card reader fed line by line through stdin."""

    def __init__(self, base, name, kind, profile, extra=()):
        self.link = os.path.join(base, name + ".tty")
        self.proc = Proc([os.path.join(BIN, "pos-hwsim"), kind, "--profile", profile,
                          "--link", self.link, *extra],
                         os.path.join(base, name + ".sim.log"), stdin=subprocess.PIPE)
        wait_until(lambda: os.path.exists(self.link), 5, f"{name} pty link")

    def send(self, *lines):
        for line in lines:
            self.proc.p.stdin.write((line + "\n").encode())
            self.proc.p.stdin.flush()
            time.sleep(0.02)


class Agent:
    """A pos-agent with its terminal folder, devices and a control-socket reader."""

    def __init__(self, central, base, store="S1", term="T1"):
        self.dir = central.terminal(base, store, term)
        self.conf = os.path.join(self.dir, "terminal.conf")
        self.sock = os.path.join(self.dir, "agent.sock")
        self.log = os.path.join(self.dir, "agent.log")
        self.proc = None
        self.events = []
        self.lock = threading.Lock()
        self.reader = None

    def add_device(self, name, role, port, profile):
        with open(self.conf, "a") as f:
            f.write(f"\n[device.{name}]\nrole = {role}\nport = {port}\nprofile = {profile}\n")

    def start(self):
        self.proc = Proc([os.path.join(BIN, "pos-agent"), "run", "-c", self.conf], self.log)
        wait_until(lambda: os.path.exists(self.sock) and self._try_status(), 10, "agent control socket")
        self.reader = threading.Thread(target=self._read_events, daemon=True)
        self.reader.start()
        return self

    def _try_status(self):
        return self.cmd({"cmd": "status"}).get("ok")

    def stop(self):
        return self.proc.term() if self.proc else None

    def kill9(self):
        return self.proc.kill9() if self.proc else None

    def cmd(self, obj, timeout=5):
        """Sends one request on its own connection; returns the reply (events skipped)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock)
        try:
            s.sendall((json.dumps(obj) + "\n").encode())
            buf = b""
            while True:
                while b"\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise RuntimeError("agent closed the control socket")
                    buf += chunk
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if "event" not in msg:
                    return msg
        finally:
            s.close()

    def _read_events(self):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.sock)
            f = s.makefile("rb")
            for line in f:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "event" in msg:
                    with self.lock:
                        self.events.append(msg)
        except OSError:
            pass

    def wait_event(self, pred, timeout=10, what="event"):
        def find():
            with self.lock:
                for ev in self.events:
                    if pred(ev):
                        return ev
            return None
        return wait_until(find, timeout, what)

    def clear_events(self):
        with self.lock:
            self.events = []


# ---------------------------------------------------------------- store controller

class Store:
    """A pos-store controller with the folder `pos-central store-cert` makes."""

    def __init__(self, central, base, store="S1"):
        self.central = central
        self.store = store
        self.dir = os.path.join(base, f"store-{store}")
        central.cli("store-cert", central.home, "--store", store, "--out", self.dir)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "store.conf")
        self.log = os.path.join(self.dir, "store.log")
        self.tlog = os.path.join(self.dir, "tlog.db")
        self.url = f"https://127.0.0.1:{self.port}"
        with open(self.conf) as f:
            lines = f.read().splitlines()
        out = []
        for l in lines:
            if l.startswith("address"):
                l = f"address = 127.0.0.1:{self.port}"
            elif l.startswith("url"):
                l = f"url = https://127.0.0.1:{central.port}"
            out.append(l)
        with open(self.conf, "w") as f:
            f.write("\n".join(out) + "\n")
        self.proc = None

    def cli(self, *args, check=True):
        return run([os.path.join(BIN, "pos-store"), *args, "-c", self.conf], check=check)

    def start(self):
        self.proc = Proc([os.path.join(BIN, "pos-store"), "run", "-c", self.conf], self.log)
        wait_until(self.healthy, 10, "store controller health")
        return self

    def healthy(self):
        if self.proc and not self.proc.alive():
            raise RuntimeError("pos-store exited; see " + self.log)
        st, _ = self.request("GET", "/v1/health")
        return st == 200

    def stop(self):
        rc = self.proc.term() if self.proc else None
        self.proc = None
        return rc

    def kill9(self):
        rc = self.proc.kill9() if self.proc else None
        self.proc = None
        return rc

    def request(self, method, path, body=None, cert_dir=None, timeout=10, headers=None):
        ctx = self.central.context(cert_dir)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            hdrs = dict(headers or {})
            if data is not None:
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text
        finally:
            conn.close()

    def metric(self, name):
        st, text = self.request("GET", "/metrics")
        assert st == 200, (st, text)
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)


# ---------------------------------------------------------------- PostgreSQL

PGCTL = os.path.join(ROOT, "tests", "pg", "pgctl")


def pg_dir():
    """The folder of the test PostgreSQL cluster this run started (make test
    exports POS_TEST_PG_DIR after `tests/pg/pgctl start`), or None."""
    d = os.environ.get("POS_TEST_PG_DIR", "")
    return d or None


PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


def pg_query(dsn, sql, args=()):
    """Rows of one SELECT on dsn through psql, typed as the server typed them
    (each row comes back as JSON); each `?` is bound to one of args as a psql
    variable (quoted by psql, never pasted in)."""
    parts = sql.rstrip().rstrip(";").split("?")
    if len(parts) - 1 != len(args):
        raise ValueError("placeholders and args differ in number")
    text = parts[0] + "".join(f":'p{i}'" + part for i, part in enumerate(parts[1:]))
    text = f"SELECT row_to_json(q) FROM ({text}) q;\n"
    cmd = [os.path.join(PG_BIN, "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", dsn]
    for i, a in enumerate(args):
        cmd += ["-v", f"p{i}={a}"]
    p = subprocess.run(cmd, input=text, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("psql: " + p.stderr.strip())
    return [tuple(v for _, v in json.loads(line, object_pairs_hook=list))
            for line in p.stdout.splitlines() if line.strip()]


def test_backend():
    """The backend every Central of this run uses: POS_TEST_BACKEND
    (sqlite, the default, or postgresql: a fresh database per Central on the
    test cluster). The one place a suite's backend is decided."""
    b = os.environ.get("POS_TEST_BACKEND", "") or "sqlite"
    if b not in ("sqlite", "postgresql"):
        raise ValueError(f"POS_TEST_BACKEND must be sqlite or postgresql, not {b!r}")
    if b == "postgresql" and not pg_dir():
        raise RuntimeError("POS_TEST_BACKEND=postgresql needs a test cluster (POS_TEST_PG_DIR)")
    return b


def on_sqlite():
    """Whether this run's Centrals use SQLite: checks that read the SQLite
    file itself run only then (elsewhere they print a `# skip` line)."""
    return test_backend() == "sqlite"


def skip_unless_sqlite(what):
    """True on SQLite; on PostgreSQL prints `# skip WHAT` and returns False."""
    if on_sqlite():
        return True
    print(f"# skip {what}: SQLite only (POS_TEST_BACKEND={test_backend()})", flush=True)
    return False


def pg_db_name(base, name):
    """A database name unique to a test's folder and a Central in it."""
    import re
    raw = f"it_{os.path.basename(os.path.normpath(base))}_{name}".lower()
    raw = re.sub(r"[^a-z0-9_]", "_", raw)
    if len(raw) > 60:
        raw = raw[:47] + "_" + hashlib.sha256(raw.encode()).hexdigest()[:12]
    return raw


def pg_fresh(name):
    """The DSN of an empty database `name` ([a-z_][a-z0-9_]*, one per test) on
    the test cluster, made anew, or None when no cluster runs."""
    d = pg_dir()
    if not d:
        return None
    return run([PGCTL, "fresh", d, name]).stdout.strip()


def backends(tap=None):
    """The store backends a suite runs on: "sqlite", and "postgresql" when a
    test cluster runs. Without one it says SKIP aloud (a TAP comment)."""
    if pg_dir():
        return ["sqlite", "postgresql"]
    print("# SKIP PostgreSQL half: POS_TEST_PG_DIR is not set "
          "(make test sets it; by hand: export POS_TEST_PG_DIR=$PWD/build/pg "
          "after tests/pg/pgctl start)", flush=True)
    return ["sqlite"]


def set_conf(conf, section, key, value):
    """Sets `key = value` in [section] of an INI file like central.conf,
    replacing the key where it is, adding the section where it is missing."""
    with open(conf) as f:
        lines = f.read().splitlines()
    out, cur, done, seen = [], None, False, False
    for line in lines:
        t = line.strip()
        if t.startswith("[") and t.endswith("]"):
            if cur == section and not done:
                out.append(f"{key} = {value}")
                done = True
            cur = t[1:-1].strip()
            seen = seen or cur == section
        elif cur == section and t.split("=", 1)[0].strip() == key and "=" in t:
            if not done:
                out.append(f"{key} = {value}")
                done = True
            continue
        out.append(line)
    if not done:
        if not seen:
            out.append(f"[{section}]")
        out.append(f"{key} = {value}")
    with open(conf, "w") as f:
        f.write("\n".join(out) + "\n")


def use_postgresql(central, name):
    """Points a Central (made, not started) at a fresh PostgreSQL database
    `name`: [store] backend = postgresql, dsn = its DSN. Returns the DSN,
    or None (and changes nothing) when no test cluster runs."""
    dsn = pg_fresh(name)
    if dsn:
        set_conf(central.conf, "store", "backend", "postgresql")
        set_conf(central.conf, "store", "dsn", dsn)
    return dsn


def use_backend(central, backend, name):
    """use_postgresql for backend "postgresql"; "sqlite" leaves the default.
    For suites that loop over backends(): `for b in backends(): ...`."""
    if backend == "postgresql":
        if not use_postgresql(central, name):
            raise RuntimeError("no PostgreSQL test cluster (POS_TEST_PG_DIR)")
    elif backend != "sqlite":
        raise ValueError(f"unknown backend {backend!r}")
    return central


# ---------------------------------------------------------------- leak scan

def tid_forms(tid):
    """Every encoding a leak of this TID could take in a file."""
    value = tid.split(":", 1)[1]
    forms = set()
    for s in (tid, value, value.lstrip("+")):
        b = s.encode()
        forms.update({b, b.hex().encode(), b.hex().upper().encode(),
                      base64.b64encode(b).rstrip(b"="), base64.urlsafe_b64encode(b).rstrip(b"=")})
    return forms


def scan_for_tids(folder, tids=TEST_TIDS):
    """Returns [(path, tid)] for every file under folder holding a TID form."""
    hits = []
    for dirpath, _, files in os.walk(folder):
        for fn in files:
            path = os.path.join(dirpath, fn)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            for tid in tids:
                if any(form in data for form in tid_forms(tid)):
                    hits.append((path, tid.split(":")[0]))
    return hits
