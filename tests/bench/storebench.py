#!/usr/bin/python3
"""The store's controller under load: a real pos-store in front of a real
pos-central, driven by loadgen with a lane's certificate.

Measures
- what relaying resolves through the controller adds to a lane's latency:
  two open-loop loadgen runs of POST /v1/resolve at the same rate and
  connections, one straight to central, one through the controller
  (p99 relayed - p99 direct);
- the controller's tlog commit rate: loadgen posts 20-item baskets to the
  controller, closed loop, while central is frozen (SIGSTOP after the
  warm-up), so every answer is one basket committed to tlog.db and nothing
  is forwarded; the backlog that leaves;
- its forwarding rate: central thawed (SIGCONT), the backlog forwarded in
  batches, counted from the first basket central takes until the log is
  empty.

Prints a summary and "RESULT {json}" lines for tests/bench/run.sh.
Usage: storebench.py WORKDIR [SECONDS] [RATE] [CONNS]
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from posenv import BUILD, Central, Proc, Store, wait_until  # noqa: E402

LOADGEN = os.path.join(BUILD, "bench", "loadgen")


def loadgen(port, term_dir, label, *args):
    """Runs loadgen; returns its load_<label> result (its lines are echoed)."""
    p = subprocess.run([LOADGEN, "--port", str(port), "--dir", term_dir, "--label", label, *args],
                       capture_output=True, text=True, timeout=600)
    result = None
    for line in p.stdout.splitlines():
        print(line)
        if line.startswith("RESULT "):
            result = json.loads(line[7:]).get(f"load_{label}")
    if p.returncode != 0 or result is None:
        sys.stderr.write(p.stderr[-2000:])
        raise RuntimeError(f"loadgen {label} exited {p.returncode}")
    return result


def counter(store, name):
    return store.metric(name)


def main():
    work = sys.argv[1]
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    rate = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        central = Central(work).start()
        term = central.terminal(work, "S1", "T1")
        store = Store(central, work, "S1").start()

        # 1. Resolves at the same open-loop rate: direct, then relayed.
        pool = str(secs * rate + 1000)
        common = ["--route", "resolve", "--seconds", str(secs), "--rate", str(rate),
                  "--conns", str(conns), "--pool", pool, "--population", "200"]
        direct = loadgen(central.port, term, "store_direct", *common)
        relay = loadgen(store.port, term, "store_relay", *common)
        added = relay["p99_us"] - direct["p99_us"]
        print(f"relay: resolve p99 {direct['p99_us'] / 1e3:.2f} ms direct, "
              f"{relay['p99_us'] / 1e3:.2f} ms through the controller: +{added / 1e3:.2f} ms "
              f"at {rate}/s over {conns} connections (errors {direct['errors']}, {relay['errors']})")
        print("RESULT " + json.dumps({"store_relay": {
            "rate": rate, "conns": conns, "direct_p50_us": direct["p50_us"],
            "direct_p99_us": direct["p99_us"], "relay_p50_us": relay["p50_us"],
            "relay_p99_us": relay["p99_us"], "added_p99_us": added,
            "errors": direct["errors"] + relay["errors"]}}))

        # 2. The tlog commit rate, central frozen once the warm-up is done.
        created0 = counter(store, 'pos_store_baskets_total{result="created"}')
        lg = subprocess.Popen([LOADGEN, "--port", str(store.port), "--dir", term, "--label",
                               "store_commit", "--route", "baskets", "--seconds", str(secs),
                               "--conns", str(conns), "--population", "50"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: counter(store, 'pos_store_baskets_total{result="created"}') > created0,
                   120, "the first basket logged")
        central.proc.p.send_signal(signal.SIGSTOP)
        out, err = lg.communicate(timeout=600)
        commit = None
        for line in out.splitlines():
            print(line)
            if line.startswith("RESULT "):
                commit = json.loads(line[7:]).get("load_store_commit")
        if lg.returncode != 0 or commit is None:
            sys.stderr.write(err[-2000:])
            raise RuntimeError(f"loadgen store_commit exited {lg.returncode}")
        backlog = int(counter(store, "pos_store_queue_depth"))

        # 3. The forwarding rate: from central's first answer to an empty log.
        taken = 'pos_store_forwarded_total{result="taken"}'
        taken0 = counter(store, taken)
        central.proc.p.send_signal(signal.SIGCONT)
        wait_until(lambda: counter(store, taken) > taken0, 120, "central to take a basket")
        t0, first = time.monotonic(), counter(store, taken)
        wait_until(lambda: counter(store, "pos_store_queue_depth") == 0, 600,
                   "the controller's log to drain")
        took = time.monotonic() - t0
        forwarded = counter(store, taken) - first
        fwd = forwarded / took if took > 0 else 0.0
        ratio = fwd / commit["rps"] if commit["rps"] else 0.0
        print(f"tlog: {commit['rps']:.0f} baskets/s committed (20 items, {conns} connections, "
              f"errors {commit['errors']}); a backlog of {backlog} forwarded at {fwd:.0f}/s "
              f"({forwarded:.0f} in {took:.2f} s): {ratio:.2f} of the commit rate")
        print("RESULT " + json.dumps({"store_tlog": {
            "commit_per_s": commit["rps"], "commit_p99_us": commit["p99_us"], "backlog": backlog,
            "forward_per_s": fwd, "forward_ratio": ratio}}))
        rc = store.stop()
        if rc != 0:
            raise RuntimeError(f"pos-store exited {rc} on SIGTERM")
        central.stop()
        return 0
    finally:
        Proc.stop_all()


if __name__ == "__main__":
    sys.exit(main())
