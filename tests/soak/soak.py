#!/usr/bin/python3
"""Chaos soak: 8 pos-agents, each with a simulated scanner, play lanes
continuously against one pos-central, half of them through the store's
controller (pos-store, listed before central in their terminal.conf), while
a chaos loop kill -9s central, the controller or an agent at random moments,
restarts it, and cuts central off (SIGSTOP, or a graceful stop). At the end
everything is restarted, every spool and the controller's log drain, and
what the lanes completed (a total answered {"ok":true,"txn"}) is compared
with what central stored, by the analyst history API and by a read-only look
at central.db:

    baskets=N restarts=N lost=N duplicated=N

Exit status 0 only when nothing was lost, nothing duplicated, every stored
basket holds exactly the items its lane sent and lands in its customer's
household, and no process died on its own.

With SOAK_BACKEND=postgresql central is two nodes on one fresh PostgreSQL
database of the test cluster (tests/pg/pgctl, started when none runs), the
lanes list both nodes in `[central] url` (half of them each node first) and
the chaos picks its node at random each time.
  SOAK_SECONDS (default 300), SOAK_SEED, SOAK_AGENTS (default 8),
  SOAK_BACKEND (sqlite, the default, or postgresql; else POS_TEST_BACKEND);
  --seconds N --seed N --agents N --name DIR (under build/itest/, default soak)
  --via-controller N (lanes behind the controller, default half; 0: none)
  --drain-timeout S --quiet

Lanes never carry a TID that is not in posenv.TEST_TIDS, so the leak scan
after the integration suites checks this test's folders too. Nothing this
script writes holds a TID."""

import os
import sys

try:
    import sqlite3  # a pyenv Python may lack it; Debian's has it
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    raise

import argparse
import json
import random
import signal
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
from posenv import (PGCTL, ROOT, TEST_TIDS, Agent, Central, HwSim, Proc, Store, run,  # noqa: E402
                    wait_until, workdir)

# Items every lane may buy (GTIN-13 as scanned; stored as GTIN-14).
COMMON = ["9520000000011", "9520000000028", "9520000000035"]

# The customers: TIDs from TEST_TIDS only. How each reaches the agent:
# "ctl" = {"cmd":"tid"} on the control socket, "scan" = a loyalty barcode
# through the simulated scanner.
CUSTOMERS = [
    ("phone:+15550100234", "ctl"),
    ("phone:+447700900123", "ctl"),
    ("card:4242424242424242", "ctl"),
    ("card:5555555555554444", "ctl"),
    ("loyalty:9900000000011", "scan"),
]
assert all(t in TEST_TIDS for t, _ in CUSTOMERS)

LANE_WAIT = 4.0      # s for the agent to report a scanned code
CMD_TIMEOUT = 5.0    # s for any control-socket answer


def gtin13(body12):
    s = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body12))
    return body12 + str((10 - s % 10) % 10)


def lane_gtin(agent_no, seq):
    """A GTIN unique to one lane: a stored basket names the lane it came from."""
    return gtin13(f"951{agent_no}{seq:08d}")


def lane_of(gtin14):
    """(agent_no, seq) for a lane GTIN-14, else None."""
    if len(gtin14) == 14 and gtin14.startswith("0951"):
        return int(gtin14[4]), int(gtin14[5:13])
    return None


class Log:
    def __init__(self, quiet):
        self.quiet = quiet
        self.t0 = time.time()
        self.lock = threading.Lock()

    def __call__(self, msg, force=False):
        if self.quiet and not force:
            return
        with self.lock:
            print(f"soak [{time.time() - self.t0:6.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------- one terminal

class Terminal:
    """An agent with its scanner; the lane driver and the chaos loop share it."""

    def __init__(self, central, base, no, log, store=None, nodes=()):
        self.no = no
        self.name = f"T{no}"
        self.log = log
        self.base = base
        self.agent = Agent(central, base, "S1", self.name)
        self.store = store
        if store:
            # The controller first, central as the fallback.
            with open(self.agent.conf) as f:
                text = f.read()
            with open(self.agent.conf, "w") as f:
                f.write(text.replace(f"url = https://127.0.0.1:{central.port}",
                                     f"url = {store.url} https://127.0.0.1:{central.port}"))
        elif len(nodes) > 1:
            # Every node, this lane's own first: lanes spread over them.
            order = nodes[no % len(nodes):] + nodes[:no % len(nodes)]
            with open(self.agent.conf) as f:
                text = f.read()
            with open(self.agent.conf, "w") as f:
                f.write(text.replace(f"url = https://127.0.0.1:{central.port}", "url = " +
                                     " ".join(f"https://127.0.0.1:{n.port}" for n in order)))
        self.scanner = HwSim(base, f"scanner-{self.name}", "scanner", "scanner-crlf")
        self.agent.add_device("flatbed", "scanner", self.scanner.link, "scanner-crlf")
        self.lock = threading.Lock()   # one start/kill at a time
        self.completed = {}            # txn -> lane record
        self.abandoned = 0
        self.abandon_reasons = {}
        self.seq = 0
        self.in_lane = False
        self.hwsim_restarts = 0

    # -- processes (chaos thread and final phase)

    def start(self):
        with self.lock:
            old = self.agent.proc
            self.agent.start()
            if old is not None:
                old.log.close()

    def kill9(self):
        with self.lock:
            return self.agent.kill9()

    def stop(self):
        with self.lock:
            return self.agent.stop()

    def alive(self):
        return self.agent.proc is not None and self.agent.proc.alive()

    # -- the lane driver

    def events_since(self, cursor):
        with self.agent.lock:
            return list(self.agent.events[cursor:])

    def mark(self):
        """Trims old events; returns a cursor past everything seen so far."""
        with self.agent.lock:
            ev = self.agent.events
            if len(ev) > 500:
                del ev[:len(ev) - 100]
            return len(ev)

    def wait_events(self, cursor, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            evs = self.events_since(cursor)
            if pred(evs):
                return evs
            time.sleep(0.02)
        return None

    def ensure_scanner(self):
        if not self.scanner.proc.alive():
            self.log(f"{self.name}: pos-hwsim exited ({self.scanner.proc.p.returncode}); restarting it")
            self.scanner = HwSim(self.base, f"scanner-{self.name}", "scanner", "scanner-crlf")
            self.hwsim_restarts += 1

    def abandon(self, why):
        self.abandoned += 1
        self.abandon_reasons[why] = self.abandon_reasons.get(why, 0) + 1
        try:
            self.agent.cmd({"cmd": "cancel"}, timeout=2)
        except Exception:
            pass

    def play_lane(self, rng):
        """One customer at the lane. Records the txn if total was acknowledged."""
        self.ensure_scanner()
        st = self.agent.cmd({"cmd": "status"}, timeout=CMD_TIMEOUT)
        if not st.get("ok") or not all(d.get("up") for d in st.get("devices", [])):
            time.sleep(0.1)
            return
        if st.get("txn"):
            self.agent.cmd({"cmd": "cancel"}, timeout=CMD_TIMEOUT)

        self.seq += 1
        self.in_lane = True
        lg = lane_gtin(self.no, self.seq)
        lg14 = "0" + lg
        tid, how = rng.choice(CUSTOMERS)
        buy = {g: rng.randint(1, 3) for g in rng.sample(COMMON, rng.randint(1, 3))}
        void_extra = rng.random() < 0.2
        cursor = self.mark()

        # The lane GTIN opens the transaction; its item event names the txn.
        self.scanner.send(lg)
        evs = self.wait_events(cursor, lambda es: any(
            e["event"] == "item" and e.get("gtin") == lg14 for e in es), LANE_WAIT)
        if evs is None:
            return self.abandon("lane item not seen")
        txn = next(e["txn"] for e in evs if e["event"] == "item" and e.get("gtin") == lg14)

        if how == "ctl":
            r = self.agent.cmd({"cmd": "tid", "tid": tid}, timeout=CMD_TIMEOUT)
            if not r.get("ok") or r.get("txn") != txn:
                return self.abandon("tid refused")
        else:
            self.scanner.send(tid.split(":", 1)[1])
            if self.wait_events(cursor, lambda es: any(
                    e["event"] == "tid" and e.get("txn") == txn for e in es), LANE_WAIT) is None:
                return self.abandon("loyalty scan not seen")

        lines = []
        for g, q in buy.items():
            lines += [g] * q
        self.scanner.send(*lines)
        want = {"0" + g: q for g, q in buy.items()}
        want[lg14] = 1

        def items_of(es):
            got = {}
            for e in es:
                if e.get("txn") == txn and e["event"] in ("item", "void"):
                    got[e["gtin"]] = e["qty"]
            return {g: q for g, q in got.items() if q > 0}

        if self.wait_events(cursor, lambda es: items_of(es) == want, LANE_WAIT) is None:
            return self.abandon("items not seen as sent")

        if void_extra:
            extra = rng.choice(COMMON)
            self.scanner.send(extra)
            plus = dict(want)
            plus["0" + extra] = plus.get("0" + extra, 0) + 1
            if self.wait_events(cursor, lambda es: items_of(es) == plus, LANE_WAIT) is None:
                return self.abandon("extra item not seen")
            r = self.agent.cmd({"cmd": "void"}, timeout=CMD_TIMEOUT)
            if not r.get("ok") or r.get("gtin") != "0" + extra:
                return self.abandon("void refused")

        # Nothing but what this lane sent may be in the basket (the void's
        # event may trail its reply: they travel on different connections).
        if self.wait_events(cursor, lambda es: items_of(es) == want, LANE_WAIT) is None:
            return self.abandon("foreign items in the basket")

        r = self.agent.cmd({"cmd": "total"}, timeout=CMD_TIMEOUT)
        if r.get("ok") is True and r.get("txn"):
            # "units" counts scans standing; older agents named it "items".
            units = r.get("units", r.get("items"))
            if r["txn"] != txn or units != sum(want.values()):
                # Acknowledged, yet not the basket this lane built: evidence.
                self.log(f"{self.name}: total answered {r} for lane txn {txn}", force=True)
            self.completed[r["txn"]] = {"agent": self.name, "lane": [self.no, self.seq],
                                        "items": want, "customer": CUSTOMERS.index((tid, how)),
                                        "acked_at": time.time()}
        else:
            self.abandoned += 1
            why = f"total refused: {r.get('error')}"
            self.abandon_reasons[why] = self.abandon_reasons.get(why, 0) + 1

    def drive(self, stop, seed):
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                self.play_lane(rng)
            except Exception as exc:  # the agent died or is restarting: not completed
                if self.in_lane:
                    self.abandoned += 1
                    why = type(exc).__name__
                    self.abandon_reasons[why] = self.abandon_reasons.get(why, 0) + 1
                time.sleep(0.1)
            self.in_lane = False
            time.sleep(rng.uniform(0, 0.15))


# ---------------------------------------------------------------- chaos

class Chaos:
    def __init__(self, central, terms, rng, log, store=None, nodes=()):
        self.central = central
        self.nodes = list(nodes) or [central]
        self.terms = terms
        self.store = store
        self.rng = rng
        self.log = log
        self.restarts = 0
        self.counts = {"kill9_central": 0, "kill9_agent": 0, "cut_central": 0,
                       "term_central": 0, "kill9_agent_during_cut": 0}
        if store:
            self.counts["kill9_controller"] = 0
        self.crashes = []          # processes that died without being told to
        self.problems = []         # starts that failed, SIGTERMs that did not exit 0
        self.stopped = False       # central under SIGSTOP

    def which(self, node):
        """" on port N" when there are several nodes, else nothing."""
        return f" on port {node.port}" if len(self.nodes) > 1 else ""

    def check_alive(self):
        for c in self.nodes:
            if c.proc is not None and not c.proc.alive():
                rc = c.proc.p.returncode
                self.crashes.append(f"central exited on its own with status {rc}")
                self.log(f"CRASH: central exited with status {rc}; restarting", force=True)
                c.proc = None
                self.start_central(c)
        s = self.store
        if s is not None and s.proc is not None and not s.proc.alive():
            rc = s.proc.p.returncode
            self.crashes.append(f"the controller exited on its own with status {rc}")
            self.log(f"CRASH: the controller exited with status {rc}; restarting", force=True)
            s.proc = None
            self.start_store()
        for t in self.terms:
            if t.agent.proc is not None and not t.agent.proc.alive():
                rc = t.agent.proc.p.returncode
                self.crashes.append(f"{t.name} agent exited on its own with status {rc}")
                self.log(f"CRASH: agent {t.name} exited with status {rc}; restarting", force=True)
                self.start_agent(t)

    def start_central(self, node=None):
        try:
            (node or self.central).start()
            self.restarts += 1
        except Exception as exc:
            self.problems.append(f"central did not start: {exc}")
            self.log(f"central did not start: {exc}", force=True)

    def start_store(self):
        try:
            self.store.start()
            self.restarts += 1
        except Exception as exc:
            self.problems.append(f"the controller did not start: {exc}")
            self.log(f"the controller did not start: {exc}", force=True)

    def start_agent(self, t):
        try:
            t.start()
            self.restarts += 1
        except Exception as exc:
            self.problems.append(f"{t.name} did not start: {exc}")
            self.log(f"{t.name} did not start: {exc}", force=True)

    def step(self, until):
        # Downtimes are cut short near the end so the soak ends on time.
        left = max(0.2, until - time.time())
        r = self.rng.random()
        for n in self.nodes:
            if n.proc is None:
                self.start_central(n)
                return
        c = self.rng.choice(self.nodes)
        if self.store is not None and self.store.proc is None:
            self.start_store()
            return
        if self.store is not None and r < 0.2:
            # The controller dies with baskets logged and not yet forwarded,
            # or a lane's batch half written: its lanes fail over to central.
            self.counts["kill9_controller"] += 1
            self.log("chaos: kill -9 the controller")
            self.store.kill9()
            time.sleep(min(left, self.rng.uniform(0, 1.5)))
            self.start_store()
            return
        if self.store is not None:
            r = self.rng.random()
        if r < 0.25:
            self.counts["kill9_central"] += 1
            self.log(f"chaos: kill -9 central{self.which(c)}")
            c.kill9()
            time.sleep(min(left, self.rng.uniform(0, 2.0)))
            self.start_central(c)
        elif r < 0.65:
            t = self.rng.choice(self.terms)
            self.counts["kill9_agent"] += 1
            self.log(f"chaos: kill -9 agent {t.name}")
            t.kill9()
            time.sleep(min(left, self.rng.uniform(0, 1.0)))
            self.start_agent(t)
        elif r < 0.92:
            hold = min(left, self.rng.uniform(0.5, 4.0))
            self.counts["cut_central"] += 1
            self.log(f"chaos: central{self.which(c)} cut off (SIGSTOP) for {hold:.1f}s")
            c.proc.p.send_signal(signal.SIGSTOP)
            self.stopped = True
            try:
                if self.rng.random() < 0.4:
                    # An agent dies while its upload hangs on the frozen central.
                    time.sleep(hold / 2)
                    t = self.rng.choice(self.terms)
                    self.counts["kill9_agent_during_cut"] += 1
                    self.log(f"chaos: kill -9 agent {t.name} during the cut")
                    t.kill9()
                    self.start_agent(t)
                    time.sleep(hold / 2)
                else:
                    time.sleep(hold)
            finally:
                c.proc.p.send_signal(signal.SIGCONT)
                self.stopped = False
        else:
            self.counts["term_central"] += 1
            self.log(f"chaos: central{self.which(c)} stopped with SIGTERM")
            rc = c.stop()
            if rc != 0:
                self.problems.append(f"central exited {rc} on SIGTERM (want 0)")
                self.log(f"central exited {rc} on SIGTERM", force=True)
            time.sleep(min(left, self.rng.uniform(0.2, 2.0)))
            self.start_central(c)

    def run(self, until):
        while time.time() < until:
            time.sleep(self.rng.uniform(0.3, 2.0))
            if time.time() >= until:
                break
            self.check_alive()
            self.step(until)
        self.check_alive()


# ---------------------------------------------------------------- verdict

def stored_from_db(central):
    """txn -> {"count", "hhid", "items": {gtin: qty}} from central's store, read-only."""
    out = {}
    for txn, n in central.query("SELECT txn, count(*) FROM baskets GROUP BY txn"):
        out[txn] = {"count": n, "hhid": None, "items": {}}
    for txn, hhid in central.query("SELECT txn, hhid FROM baskets"):
        out[txn]["hhid"] = hhid
    for txn, gtin, qty in central.query(
            "SELECT b.txn, i.gtin, i.qty FROM items i JOIN baskets b ON b.id = i.basket_id"):
        items = out[txn]["items"]
        items[gtin] = items.get(gtin, 0) + qty
    return out


def stored_from_api(central, hhids):
    """txn -> [(hhid, {gtin: qty})] over the histories of hhids; errors listed."""
    out, errors = {}, []
    for h in sorted(hhids):
        st, body = central.request("GET", f"/v1/households/{h}/baskets?format=json",
                                   token=central.analyst_token, timeout=60)
        if st != 200 or not isinstance(body, list):
            errors.append(f"history of {h}: status {st}")
            continue
        for b in body:
            items = {}
            for it in b.get("items", []):
                items[it["gtin"]] = items.get(it["gtin"], 0) + it["qty"]
            out.setdefault(b["txn"], []).append((b.get("hhid"), items))
    return out, errors


def log_lines(path, needle):
    """The lines of a log file that name needle (a txn: logs hold no TID)."""
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip() for line in f if needle in line]
    except OSError:
        return []


def compare(completed, db, api):
    """The verdict, pure: completed = txn -> lane record (what the lanes had
    acknowledged), db = stored_from_db(), api = stored_from_api()[0]."""
    lost = sorted(t for t in completed if t not in db)
    dup_txn = sorted(t for t, s in db.items() if s["count"] > 1)
    dup_txn += sorted(t for t, occ in api.items() if len(occ) > 1 and t not in dup_txn)
    # The same lane stored under two txns is a duplicate too (a re-spool
    # under a fresh txn would slip past central's txn key).
    by_lane = {}
    for txn, s in db.items():
        for g in s["items"]:
            lane = lane_of(g)
            if lane:
                by_lane.setdefault(tuple(lane), []).append(txn)
    dup_lanes = {k: v for k, v in by_lane.items() if len(v) > 1}
    duplicated = len(dup_txn) + sum(len(v) - 1 for v in dup_lanes.values())

    mismatched, unresolved, not_in_history, history_differs = [], [], [], []
    households_of = {}
    for txn, lane in completed.items():
        s = db.get(txn)
        if s is None:
            continue
        if s["items"] != lane["items"]:
            mismatched.append(txn)
        if not s["hhid"]:
            unresolved.append(txn)
            continue
        households_of.setdefault(lane["customer"], set()).add(s["hhid"])
        occ = api.get(txn, [])
        if not occ:
            not_in_history.append(txn)
        elif any(h != s["hhid"] or items != lane["items"] for h, items in occ):
            history_differs.append(txn)
    split = {CUSTOMERS[c][0].split(":")[0] + f"#{c}": len(h)
             for c, h in households_of.items() if len(h) > 1}
    unacked = sorted(t for t in db if t not in completed)
    return {"lost": lost, "dup_txn": dup_txn, "dup_lanes": dup_lanes, "duplicated": duplicated,
            "mismatched": mismatched, "unresolved": unresolved, "not_in_history": not_in_history,
            "history_differs": history_differs, "split": split, "unacked": unacked}


def pg_cluster():
    """The test cluster of this build (POS_TEST_PG_DIR, or tests/pg/pgctl
    start under build/pg), exported for posenv."""
    if os.environ.get("POS_TEST_PG_DIR"):
        return
    d = os.path.join(ROOT, os.environ.get("BUILD", "build"), "pg")
    run([PGCTL, "start", d])
    os.environ["POS_TEST_PG_DIR"] = os.path.realpath(d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "300")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "0")) or None)
    ap.add_argument("--agents", type=int, default=int(os.environ.get("SOAK_AGENTS", "8")))
    ap.add_argument("--name", default="soak")
    ap.add_argument("--via-controller", type=int, default=None)
    ap.add_argument("--drain-timeout", type=float, default=90.0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if not args.name.startswith("soak"):
        ap.error("--name must start with 'soak' (the leak scan reads build/itest/soak*)")
    if not 1 <= args.agents <= 9:
        ap.error("--agents must be 1..9")
    via = args.agents // 2 if args.via_controller is None else args.via_controller
    if not 0 <= via <= args.agents:
        ap.error("--via-controller must be 0..agents")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    log = Log(args.quiet)
    rng = random.Random(seed)
    log(f"seed={seed} seconds={args.seconds:g} agents={args.agents} via_controller={via}",
        force=True)

    # make test's PostgreSQL pass sets POS_TEST_BACKEND for every suite.
    backend = (os.environ.get("SOAK_BACKEND", "") or os.environ.get("POS_TEST_BACKEND", "")
               or "sqlite")
    if backend not in ("sqlite", "postgresql"):
        ap.error("SOAK_BACKEND must be sqlite or postgresql")
    if backend == "postgresql":
        pg_cluster()
        os.environ["POS_TEST_BACKEND"] = "postgresql"
    base = workdir(args.name)
    findings = []
    terms = []
    try:
        central = Central(base)
        nodes = [central]
        if backend == "postgresql":
            from pgenv import second_node
            nodes.append(second_node(central, base, "central_b"))
        for n in nodes:
            n.start()
        store = Store(central, base, "S1").start() if via else None
        # Odd lanes through the controller first, then even ones.
        order = list(range(1, args.agents + 1, 2)) + list(range(2, args.agents + 1, 2))
        behind = set(order[:via])
        for i in range(1, args.agents + 1):
            terms.append(Terminal(central, base, i, log, store if i in behind else None, nodes))
        for t in terms:
            t.start()
        for t in terms:
            t.agent.wait_event(lambda e: e["event"] == "device" and e.get("name") == "flatbed"
                               and e.get("state") == "up", 10, f"{t.name} scanner up")
        log(f"central on port {central.port}, {len(terms)} agents with scanners up, "
            f"{sum(1 for t in terms if t.store)} behind the controller")

        stop = threading.Event()
        drivers = [threading.Thread(target=t.drive, args=(stop, rng.randrange(2**31)), daemon=True)
                   for t in terms]
        for d in drivers:
            d.start()
        chaos = Chaos(central, terms, rng, log, store, nodes)
        chaos.run(time.time() + args.seconds)
        stop.set()
        for d in drivers:
            d.join(30)
        if any(d.is_alive() for d in drivers):
            findings.append("a lane driver did not stop within 30 s")
        completed = {}
        for t in terms:
            completed.update(t.completed)
        log(f"chaos over: {len(completed)} lanes acknowledged, "
            f"{sum(t.abandoned for t in terms)} interrupted; {chaos.counts}", force=True)

        # Restart everything, then let every spool drain.
        for t in terms:
            rc = t.stop()
            if rc != 0:
                chaos.problems.append(f"{t.name} exited {rc} on SIGTERM (want 0)")
        if store:
            rc = store.stop()
            if rc != 0:
                chaos.problems.append(f"the controller exited {rc} on SIGTERM (want 0)")
        for n in nodes:
            rc = n.stop()
            if rc != 0:
                chaos.problems.append(f"central exited {rc} on the final SIGTERM (want 0)")
        for n in nodes:
            chaos.start_central(n)
        if store:
            chaos.start_store()
        for t in terms:
            chaos.start_agent(t)

        def spooled():
            out = {}
            for t in terms:
                try:
                    out[t.name] = t.agent.cmd({"cmd": "status"})
                except Exception as exc:
                    out[t.name] = {"spooled": f"no answer ({type(exc).__name__})"}
            return out

        def store_queue():
            """(waiting, set aside) in the controller's log; (0, 0) without one."""
            if not store:
                return 0, 0
            try:
                return (int(store.metric("pos_store_queue_depth")),
                        int(store.metric("pos_store_set_aside")))
            except Exception as exc:
                return f"no answer ({type(exc).__name__})", 0

        try:
            wait_until(lambda: all(s.get("spooled") == 0 for s in spooled().values())
                       and store_queue()[0] == 0, args.drain_timeout,
                       "every spool and the controller's log to drain")
        except TimeoutError:
            pass
        status = spooled()
        left = {n: s.get("spooled") for n, s in status.items() if s.get("spooled")}
        rejected = {n: s.get("rejected") for n, s in status.items() if s.get("rejected")}
        waiting, aside = store_queue()
        if waiting:
            left["controller"] = waiting
        if aside:
            rejected["controller"] = aside
        if left:
            findings.append(f"spools not drained after {args.drain_timeout:g} s: {left}")
        if rejected:
            findings.append(f"baskets central refused, set aside in spools: {rejected}")

        # What central says through the analyst API, then what its database holds.
        pre = stored_from_db(central)
        hhids = {s["hhid"] for s in pre.values() if s["hhid"]}
        api, api_errors = stored_from_api(central, hhids)
        findings += api_errors
        for t in terms:
            rc = t.stop()
            if rc != 0:
                chaos.problems.append(f"{t.name} exited {rc} on the final SIGTERM (want 0)")
        if store:
            rc = store.stop()
            if rc != 0:
                chaos.problems.append(f"the controller exited {rc} on the final SIGTERM (want 0)")
        for n in nodes:
            rc = n.stop()
            if rc != 0:
                chaos.problems.append(f"central exited {rc} on the final SIGTERM (want 0)")
        db = stored_from_db(central)

        v = compare(completed, db, api)
        lost, dup_txn, dup_lanes = v["lost"], v["dup_txn"], v["dup_lanes"]
        duplicated, mismatched, unresolved = v["duplicated"], v["mismatched"], v["unresolved"]
        not_in_history, history_differs = v["not_in_history"], v["history_differs"]
        split, unacked = v["split"], v["unacked"]

        # ------------------------------------------------------------ evidence
        def lane_note(txn):
            lane = completed[txn]
            return f"{txn} ({lane['agent']} lane {lane['lane'][1]}, items {lane['items']})"

        logs = {t.name: t.agent.log for t in terms}
        for txn in lost[:20]:
            findings.append(f"LOST: {lane_note(txn)} acknowledged, not in central.db")
            for path in (logs[completed[txn]["agent"]], central.log) + ((store.log,) if store else ()):
                findings += [f"    {os.path.basename(path)}: {line}"
                             for line in log_lines(path, txn)[-6:]]
        for txn in dup_txn[:20]:
            findings.append(f"DUPLICATED txn: {txn} stored {db.get(txn, {}).get('count')} times "
                            f"/ in histories {len(api.get(txn, []))} times")
        for lane, txns in list(dup_lanes.items())[:20]:
            findings.append(f"DUPLICATED lane: T{lane[0]} lane {lane[1]} stored as {txns}")
        for txn in mismatched[:20]:
            findings.append(f"ITEMS DIFFER: {lane_note(txn)} stored as {db[txn]['items']}")
        for txn in unresolved[:20]:
            findings.append(f"NO HOUSEHOLD: {lane_note(txn)} stored without an hhid")
        for txn in not_in_history[:20]:
            findings.append(f"NOT IN HISTORY: {lane_note(txn)} (hhid {db[txn]['hhid']})")
        for txn in history_differs[:20]:
            findings.append(f"HISTORY DIFFERS: {lane_note(txn)} history {api.get(txn)}")
        if split:
            findings.append(f"ONE CUSTOMER, SEVERAL HOUSEHOLDS: {split}")
        findings += [f"CRASH: {c}" for c in chaos.crashes]
        findings += [f"PROBLEM: {p}" for p in chaos.problems]
        for t in terms:
            if t.hwsim_restarts:
                findings.append(f"pos-hwsim for {t.name} exited and was restarted "
                                f"{t.hwsim_restarts} times")

        report = {
            "backend": backend, "nodes": len(nodes), "seed": seed, "seconds": args.seconds, "agents": args.agents, "via_controller": via,
            "chaos": chaos.counts, "restarts": chaos.restarts,
            "completed": len(completed), "stored": len(db),
            "unacked_stored": len(unacked), "lost": lost, "duplicated_txns": dup_txn,
            "duplicated_lanes": {f"T{k[0]}/{k[1]}": v for k, v in dup_lanes.items()},
            "mismatched": mismatched, "unresolved": unresolved,
            "not_in_history": not_in_history, "history_differs": history_differs,
            "households": len(hhids), "interrupted": {t.name: t.abandon_reasons for t in terms},
            "findings": findings,
        }
        for line in findings:
            log(line, force=True)
        interrupted = sum(t.abandoned for t in terms)
        # Re-sends central answered "already stored": proof the chaos hit
        # the window between central's commit and the agent hearing of it.
        resent = sum(1 for t in terms for line in log_lines(t.agent.log, "status=duplicate")
                     if "uploaded" in line)
        report["resent_already_stored"] = resent
        with open(os.path.join(base, "soak-report.json"), "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
        print(f"details: stored={len(db)} unacked_stored={len(unacked)} interrupted={interrupted} "
              f"households={len(hhids)} resent={resent} mismatched={len(mismatched)} "
              f"unresolved={len(unresolved)} "
              f"not_in_history={len(not_in_history) + len(history_differs)} "
              f"split_households={len(split)} crashes={len(chaos.crashes)} "
              f"problems={len(chaos.problems) + len(api_errors) + len(left) + len(rejected)} "
              f"chaos={','.join(f'{k}:{v}' for k, v in chaos.counts.items())} seed={seed}",
              flush=True)
        print(f"baskets={len(completed)} restarts={chaos.restarts} lost={len(lost)} "
              f"duplicated={duplicated}", flush=True)
        bad = (lost or duplicated or mismatched or unresolved or not_in_history or history_differs
               or split or chaos.crashes or chaos.problems or api_errors or left or rejected
               or not completed)
        return 1 if bad else 0
    finally:
        Proc.stop_all()


if __name__ == "__main__":
    sys.exit(main())
