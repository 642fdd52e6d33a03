"""PostgreSQL for the integration tests: a database of its own in the
throwaway cluster tests/pg/pgctl runs under build/pg, and central homes
pointed at it. Tests that need it skip (TAP "1..0 # SKIP") when this build
or machine has no PostgreSQL."""

import os
import re
import shutil
import subprocess
import sys

from posenv import BIN, BUILD, ROOT, Central, free_port, run

PGCTL = os.path.join(ROOT, "tests", "pg", "pgctl")
PSQL = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin") + "/psql"


def skip(why):
    print(f"1..0 # SKIP {why}", flush=True)
    sys.exit(0)


def fresh_db(name, required=True):
    """The DSN of an empty database NAME (an old one is dropped). Without
    PostgreSQL: skips the whole test, or None when not required."""
    def absent(why):
        if required:
            skip(why)
        return None
    if not os.access(PGCTL, os.X_OK):
        return absent("no tests/pg/pgctl")
    p = subprocess.run([PGCTL, "fresh", os.path.join(BUILD, "pg"), name],
                       capture_output=True, text=True)
    if p.returncode == 3:
        return absent("PostgreSQL 15 is not installed (make deps)")
    if p.returncode != 0:
        raise RuntimeError("pgctl fresh: " + p.stderr.strip())
    return p.stdout.strip().splitlines()[-1]


def sql(dsn, query):
    """Rows of query as lists of text."""
    p = subprocess.run([PSQL, "-X", "-tA", "-F", "|", "-v", "ON_ERROR_STOP=1", dsn, "-c", query],
                       capture_output=True, text=True, check=True)
    return [l.split("|") for l in p.stdout.splitlines() if l]


def set_store(conf, dsn):
    """Points central.conf's [store] at PostgreSQL."""
    with open(conf) as f:
        text = f.read()
    text = re.sub(r"(?m)^backend\s*=.*$", "backend = postgresql", text)
    text = re.sub(r"(?m)^dsn\s*=.*$", f"dsn = {dsn}", text)
    with open(conf, "w") as f:
        f.write(text)


def pg_ready(c):
    """Skips when this build's pos-central has no PostgreSQL backend."""
    p = run([os.path.join(BIN, "pos-central"), "check", "-c", c.conf], check=False)
    if p.returncode != 0 and "no PostgreSQL backend" in (p.stderr + p.stdout):
        skip("this build has no PostgreSQL backend")
    return p


def second_node(c, base, name):
    """A copy of c's home (secrets included) on another port: a second node."""
    home = os.path.join(base, name)
    shutil.copytree(c.home, home)
    n = Central.__new__(Central)
    n.__dict__.update(c.__dict__)
    n.home = home
    n.conf = os.path.join(home, "central.conf")
    n.ca = os.path.join(home, "ca.crt")
    n.port = free_port()
    n._set_listen()
    n.proc = None
    n.log = os.path.join(base, name + ".log")
    return n
