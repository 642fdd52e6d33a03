#!/usr/bin/python3
"""Collects the "RESULT {json}" lines of every benchmark log, prints the
table of figures with their ratios against the targets, and
writes results.json. Targets are reported, never enforced: exit 0 unless
the logs cannot be read.

Usage: report.py LOGDIR RESULTS_JSON
"""
import glob
import json
import os
import platform
import subprocess
import sys
import time


def collect(logdir):
    res = {}
    for path in sorted(glob.glob(os.path.join(logdir, "*.log"))):
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("RESULT "):
                    try:
                        res.update(json.loads(line[7:]))
                    except ValueError:
                        pass
    return res


def get(res, *keys):
    v = res
    for k in keys:
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


def main():
    logdir, out = sys.argv[1], sys.argv[2]
    r = collect(logdir)
    targets = []

    def target(name, value, limit, kind, unit="", issue=None, why=None):
        """kind: 'max' (value <= limit) or 'min' (value >= limit); why: what
        made an unmeasured value so."""
        t = {"target": name, "value": None, "limit": limit, "kind": kind, "unit": unit,
             "met": None, "verdict": "not measured" + (": " + why if why else "")}
        if issue:
            t["issue"] = issue
        if value is not None:
            met = value <= limit if kind == "max" else value >= limit
            t.update(value=round(value, 3), met=met, verdict="met" if met else "missed")
        targets.append(t)

    floor = get(r, "cryptofloor", "us_per_op")
    raw = get(r, "cryptofloor", "raw_key_us")
    res_cpu = get(r, "load_resolve", "server_cpu_us")
    health_cpu = get(r, "load_health", "server_cpu_us")
    res_open_cpu = get(r, "load_resolve_open", "server_cpu_us")
    target("resolve server CPU with the keys process / crypto floor (closed loop)",
           res_cpu / floor if floor and res_cpu else None, 1.5, "max", "x", 14)
    target("resolve p99 at %s connections, open loop at half capacity (us)"
           % get(r, "load_resolve_open", "conns"), get(r, "load_resolve_open", "p99_us"), 5000,
           "max", "us", 14)
    target("resolve server CPU with the keys process / crypto floor at half capacity (open loop)",
           res_open_cpu / floor if floor and res_open_cpu else None, 1.5, "max", "x", 14)
    bulk = get(r, "sqlfloor", "bulk_baskets_per_s")
    api = max([v for v in (get(r, "load_baskets", "rps"), get(r, "load_baskets_256", "rps")) if v]
              or [0]) or None
    target("ingest via the API (best of 64, 256 conns) / SQLite bulk insert",
           api / bulk if bulk and api else None, 0.6, "min", "x", 14)
    # A reused EncTID is a TID enrolled already: a run that wrapped its
    # pool measured known TIDs too, so it says nothing of new ones.
    enrol_new = not get(r, "load_enrol", "pool_reused")
    reused = None if enrol_new else "the EncTID pool was reused (known TIDs)"
    target("new-TID resolves (each enrols a household) per second at %s connections"
           % get(r, "load_enrol", "conns"), get(r, "load_enrol", "rps") if enrol_new else None,
           10000, "min", "/s", 14, reused)
    target("new-TID resolve p99 at %s connections (us)" % get(r, "load_enrol", "conns"),
           get(r, "load_enrol", "p99_us") if enrol_new else None, 10000, "max", "us", 14, reused)
    h1 = get(r, "history_1000000", "json_p99_us")
    h10 = get(r, "history_10000000", "json_p99_us")
    target("history p99 at 10M item rows, history_write JSON (us)", h10, 5000, "max", "us")
    if h1 and h10:
        target("history p99 10M / 1M", h10 / h1, 1.5, "max", "x")
    for what in ("household", "cohort", "funnel"):
        v = get(r, "analyst", what + "_p99_us")
        target(f"workbench {what} data call p99 at 10M item rows (ms)",
               v / 1e3 if v is not None else None, 100, "max", "ms")
    # PostgreSQL (tests/bench/pg.sh): not measured when it is not installed.
    pg_floor = get(r, "pgfloor", "copy_baskets_per_s")
    pg_api = max([v for v in (get(r, "load_pg_baskets", "rps"), get(r, "load_pg_baskets_256", "rps"))
                  if v] or [0]) or None
    target("PostgreSQL: ingest via the API (best of 64, 256 conns) / COPY of the same rows",
           pg_api / pg_floor if pg_api and pg_floor else None, 0.5, "min", "x")
    sq_cpu, pg_cpu = get(r, "load_pg_resolve_sqlite", "server_cpu_us"), get(
        r, "load_pg_resolve_postgresql", "server_cpu_us")
    sq_rps, pg_rps = get(r, "load_pg_resolve_sqlite", "rps"), get(
        r, "load_pg_resolve_postgresql", "rps")
    target("PostgreSQL: resolve server CPU per request / SQLite's, same run",
           pg_cpu / sq_cpu if pg_cpu and sq_cpu else None, 1.2, "max", "x")
    target("PostgreSQL: resolve throughput, SQLite's / PostgreSQL's, same run",
           sq_rps / pg_rps if pg_rps and sq_rps else None, 1.2, "max", "x")
    target("PostgreSQL: history p99 at 10M item rows, history_write JSON (us)",
           get(r, "history_pg_10000000", "json_p99_us"), 5000, "max", "us")
    full = get(r, "tls", "full_us")
    resumed = get(r, "tls", "resumed_us")
    target("TLS resumed / full handshake, server CPU",
           resumed / full if full and resumed else None, 0.25, "max", "x", 14)
    rss = get(r, "agent", "rss_kb")
    target("agent RSS after the lanes (MB)", rss / 1024 if rss else None, 16, "max", "MB")
    target("agent idle CPU (%)", get(r, "agent", "idle_cpu_pct"), 0.1, "max", "%")
    target("agent scan-to-event p99 (us)", get(r, "agent", "scan_p99_us"), 2000, "max", "us")
    added = get(r, "store_relay", "added_p99_us")
    target("resolve p99 added by the store's controller at %s/s (ms)"
           % get(r, "store_relay", "rate"), added / 1e3 if added is not None else None, 1.0,
           "max", "ms")
    target("controller forwarding / its tlog commit rate", get(r, "store_tlog", "forward_ratio"),
           0.5, "min", "x")

    # The figures, one table.
    rows = []

    def load_row(label, d, pg):
        """One loadgen run; on PostgreSQL the server's CPU leaves out PostgreSQL's."""
        if not d:
            row(label, None)
            return
        lat = f"p50 {d['p50_us'] / 1e3:.2f} ms, p99 {d['p99_us'] / 1e3:.2f} ms"
        if pg:
            rows.append((f"{label}, {d['conns']} conns",
                         f"{d['rps']:.0f} req/s; {lat}; server {d['server_cpu_us']:.1f} us "
                         f"CPU/req (PostgreSQL's own CPU not in it); other processes "
                         f"{d.get('other_cores', 0):.2f} cores"))
            return
        rows.append((f"{label}, {d['conns']} conns",
                     f"{d['rps']:.0f} req/s; {lat}, p99.9 {d['p999_us'] / 1e3:.2f} ms; server "
                     f"{d['server_cpu_us']:.1f} us CPU/req"
                     + (f" (keys process {d['keys_cpu_us']:.1f})" if d.get("keys_cpu_us") else "")
                     + f"; errors {d['errors']}; other "
                     f"processes {d.get('other_cores', 0):.2f} cores"))

    def row(what, value, fmt="{:.1f}"):
        rows.append((what, "-" if value is None else fmt.format(value)))

    row("X25519 ceiling, 1 core (op/s)", get(r, "x25519_speed", "one_core_per_s"), "{:.0f}")
    row("X25519 ceiling, 2 cores (op/s)", get(r, "x25519_speed", "two_cores_per_s"), "{:.0f}")
    row("crypto floor per resolve, central's calls (us)", floor, "{:.2f}")
    row("  same through the raw-key calls (us)", raw, "{:.2f}")
    row("  X25519 derive alone (us)", get(r, "cryptofloor", "x25519_us"), "{:.2f}")
    kr = r.get("keys_roundtrip")
    if kr:
        rows.append(("open through the keys process, one channel (us)",
                     f"caller {kr['caller_us']:.2f} + keys process {kr['keys_us']:.2f} CPU vs "
                     f"{kr['local_us']:.2f} in-process (+{kr['overhead_us']:.2f}); "
                     f"{kr['wall_us']:.1f} wall; {kr.get('group', 0)} a round trip: "
                     f"+{kr.get('group_overhead_us', 0):.2f}"))
    for key, label in (("load_health", "GET /v1/health (no-op)"),
                       ("load_resolve", "POST /v1/resolve, closed loop"),
                       ("load_resolve_open", "POST /v1/resolve, open loop"),
                       ("load_enrol", "POST /v1/resolve, new TIDs (enrol)"),
                       ("load_baskets", "POST /v1/baskets, 20 items"),
                       ("load_baskets_256", "POST /v1/baskets, 20 items")):
        load_row(label, r.get(key), False)
    two = get(r, "x25519_speed", "two_cores_per_s")
    rps = get(r, "load_resolve", "rps")
    if two and rps:
        rows.append(("resolve throughput / 2-core X25519 ceiling", f"{rps:.0f} / {two:.0f} = {rps / two:.2f}"))
    if res_cpu and health_cpu:
        row("resolve CPU beyond HTTP+TLS (resolve - health, us)", res_cpu - health_cpu)
    row("SQLite bulk insert (baskets/s)", bulk, "{:.0f}")
    row("store_put_baskets, 1,000 a batch (baskets/s)", get(r, "sqlfloor", "store_batch_baskets_per_s"), "{:.0f}")
    for key, label in (("history_1000000", "history, 1M item rows"),
                       ("history_10000000", "history, 10M item rows")):
        d = r.get(key)
        if d:
            rows.append((label, f"store_history p50 {d['walk_p50_us'] / 1e3:.2f} ms, p99 "
                                f"{d['walk_p99_us'] / 1e3:.2f} ms; JSON p50 {d['json_p50_us'] / 1e3:.2f}"
                                f" ms, p99 {d['json_p99_us'] / 1e3:.2f} ms ({d['queries']} households)"))
        else:
            row(label, None)
    fb, fs = get(r, "analyst", "fold_baskets"), get(r, "analyst", "fold_s")
    if fb and fs:
        rows.append(("workbench fold (baskets into the cohorts' tables, the first run)",
                     f"{fb / fs:.0f} baskets/s ({fb} in {fs:.1f} s)"))
    for what in ("household", "cohort", "funnel"):
        v, h10 = get(r, "analyst", what + "_p99_us"), get(r, "history_10000000", "json_p99_us")
        if v is not None and h10:
            rows.append((f"workbench {what} p99 / history JSON p99 (the store's floor)",
                         f"{v / h10:.1f}x"))
    row("PostgreSQL COPY floor (baskets/s)", pg_floor, "{:.0f}")
    row("PostgreSQL store_put_baskets, 1,000 a batch (baskets/s)",
        get(r, "pgfloor", "store_batch_baskets_per_s"), "{:.0f}")
    for key, label in (("load_pg_resolve_sqlite", "POST /v1/resolve on SQLite (PostgreSQL part)"),
                       ("load_pg_resolve_postgresql", "POST /v1/resolve on PostgreSQL"),
                       ("load_pg_baskets", "POST /v1/baskets on PostgreSQL"),
                       ("load_pg_baskets_256", "POST /v1/baskets on PostgreSQL")):
        load_row(label, r.get(key), True)
    d = r.get("history_pg_10000000")
    if d:
        rows.append(("history on PostgreSQL, 10M item rows",
                     f"store_history p50 {d['walk_p50_us'] / 1e3:.2f} ms, p99 "
                     f"{d['walk_p99_us'] / 1e3:.2f} ms; JSON p50 {d['json_p50_us'] / 1e3:.2f}"
                     f" ms, p99 {d['json_p99_us'] / 1e3:.2f} ms ({d['queries']} households)"))
    else:
        row("history on PostgreSQL, 10M item rows", None)
    row("TLS full handshake, server CPU (us)", full)
    row("TLS resumed handshake, server CPU (us)", resumed)
    a = r.get("agent")
    if a:
        rows.append(("agent after %d lanes" % a["lanes"],
                     f"RSS {a['rss_kb'] / 1024:.1f} MB; idle CPU {a['idle_cpu_s'] * 1e3:.1f} ms over "
                     f"{a['idle_seconds']:.0f} s; scan-to-event p50 {a['scan_p50_us']:.0f} us, "
                     f"p99 {a['scan_p99_us']:.0f} us"))

    sr = r.get("store_relay")
    if sr:
        rows.append(("resolve through the store's controller, %d/s over %d conns"
                     % (sr["rate"], sr["conns"]),
                     f"p50 {sr['relay_p50_us'] / 1e3:.2f} ms, p99 {sr['relay_p99_us'] / 1e3:.2f} ms; "
                     f"direct p50 {sr['direct_p50_us'] / 1e3:.2f} ms, p99 "
                     f"{sr['direct_p99_us'] / 1e3:.2f} ms; errors {sr['errors']}"))
    else:
        row("resolve through the store's controller", None)
    st = r.get("store_tlog")
    if st:
        rows.append(("store controller's tlog",
                     f"{st['commit_per_s']:.0f} baskets/s committed (p99 "
                     f"{st['commit_p99_us'] / 1e3:.2f} ms); a backlog of {st['backlog']} "
                     f"forwarded at {st['forward_per_s']:.0f}/s"))
    else:
        row("store controller's tlog", None)

    m = r.get("machine", {})
    if m:
        rows.insert(0, ("load average at start / end",
                        f"{m.get('loadavg_start', '?')} / {get(r, 'machine_end', 'loadavg_end') or '?'}"
                        f" ({m.get('cores', '?')} cores)"))
    width = max(len(w) for w, _ in rows)
    print("== figures")
    for w, v in rows:
        print(f"   {w:<{width}}  {v}")
    # In the PostgreSQL runs the server itself is one of the other processes.
    others = [d.get("other_cores", 0) for k, d in r.items()
              if (k.startswith("load_") and not k.startswith("load_pg_")) or k == "agent"]
    if others and max(others) > 0.3:
        print(f"   WARNING: other processes took up to {max(others):.2f} of the {os.cpu_count()} "
              "cores during the load and agent runs: latencies and throughputs suffer; rerun on "
              "an idle machine (CPU per request stays comparable).")
    print("== targets (reported, not enforced)")
    tw = max(len(t["target"]) for t in targets)
    for t in targets:
        if t["met"] is None:
            verdict, val = t["verdict"], "-"
        else:
            verdict = "met" if t["met"] else "MISSED"
            val = f"{t['value']:.2f}"
        if t.get("issue"):
            verdict += f" (issue {t['issue']})"
        cmp_ = "<=" if t["kind"] == "max" else ">="
        print(f"   {t['target']:<{tw}}  {val:>10}  ({cmp_} {t['limit']})  {verdict}")

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    doc = {
        "meta": {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git": rev,
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "bench_seconds": float(os.environ.get("BENCH_SECONDS", "10")),
        },
        "results": r,
        "targets": targets,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
