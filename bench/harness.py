#!/usr/bin/python3
"""outbox-relay benchmark harness (run through bench/run, which builds the tools first).

Starts its own PostgreSQL and Kafka (scripts/pg.sh and scripts/kafka.sh on other ports, under
$OUTBOX_RELAY_RUN), measures the relay, its ceilings and Debezium Server on this machine in one run,
and writes bench/results/<date>[-quick].{md,json,png}. Every step is bounded in time and stops by
itself; nothing but loopback is used. Benchmarks report numbers: nothing here asserts.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PGBIN = "/usr/lib/postgresql/15/bin"
RUN_DIR = os.environ.setdefault("OUTBOX_RELAY_RUN", "/tmp/outbox-relay-bench")
PG_PORT = os.environ.setdefault("PG_PORT", "54339")
KAFKA_PORT = os.environ.setdefault("KAFKA_BASE_PORT", "29092")
CACHE = os.environ.get("OUTBOX_RELAY_CACHE", os.path.expanduser("~/.cache/outbox-relay"))
DBZ_VERSION = os.environ.get("DEBEZIUM_VERSION", "3.6.1.Final")   # bench/setup picks it (and its java)
DBZ_JAVA = os.environ.get("BENCH_DBZ_JAVA", "java")
DB = "bench"
URL = f"postgresql://postgres:postgres@127.0.0.1:{PG_PORT}/{DB}"
ADMIN_URL = f"postgresql://postgres:postgres@127.0.0.1:{PG_PORT}/postgres"
BROKERS = f"127.0.0.1:{KAFKA_PORT}"
PUB = "outbox_relay_pub"          # the relay's default publication name, made like the relay makes it
DBZ_RELAY_PUB = "bench_dbz_relay_pub"
DBZ_PUB = "bench_dbz_pub"

PROFILES = {
    # ~3 minutes: one run of each, smaller sizes.
    # A few minutes: one run of each, smaller sizes. Capped steps stop at their cap and count what
    # they did by then.
    "quick": dict(lat_runs=5, dbz_tune_backlog=100_000, dbz_tune_reps=1, newtopic_backlog=100_000, newtopic_reps=3, mem_reps=3, mem_budgets=["16MiB"],
                  mem_sets=[("100k x 200 B", 100_000, 200, False), ("100k x 2 KB", 100_000, 2000, False),
                            ("100k x 1 KB in one transaction", 100_000, 1000, True)],
                  reps=1, backlog={200: 100_000, 2000: 100_000}, payloads=[200, 2000], drain_cap=10, eos_runs=3,
                  wal_cap=60, claim_cap=10, lat_rates=[1000, 5000, 20000], sweep_rates=[], steady_s=4,
                  grace_s=10, idle_events=4, writer_s=2, degrade_backlog=50_000, dbz_backlog=10_000,
                  dbz_rates=[1000], dbz_cap=60, dbz_tuned=True, tune_backlog=50_000, tune_rate=5000,
                  tune_batch=[100, 1000, 2000, 5000], tune_linger=[0, 10], tune_bsize=[], tune_modes=["wal"],
                  snapshot_age_s=60, snapshot_base_s=15, snapshot_rate=1000, snapshot_backlog=50_000),
    # ~25-30 minutes: median of 3 runs; 1M-event backlog of 200 B events (250k of 2 KB events, 0.5 GB).
    "full": dict(lat_runs=5, dbz_tune_backlog=200_000, dbz_tune_reps=3, newtopic_backlog=100_000, newtopic_reps=3, mem_reps=3, mem_budgets=["16MiB"],
                 mem_sets=[("100k x 200 B", 100_000, 200, False), ("1M x 200 B", 1_000_000, 200, False),
                           ("100k x 2 KB", 100_000, 2000, False),
                           ("300k x 1 KB in one transaction", 300_000, 1000, True)],
                 reps=3, backlog={200: 1_000_000, 2000: 250_000}, payloads=[200, 2000], drain_cap=60, eos_runs=3,
                 wal_cap=120, claim_cap=15, lat_rates=[1000, 5000, 20000], sweep_rates=[40000, 80000],
                 steady_s=6, grace_s=20, idle_events=10, writer_s=3, degrade_backlog=100_000,
                 dbz_backlog=20_000, dbz_rates=[1000, 5000], dbz_cap=120, dbz_tuned=True, tune_backlog=100_000,
                 tune_rate=5000, tune_batch=[100, 1000, 2000, 5000], tune_linger=[0, 10], tune_bsize=[65536],
                 tune_modes=["poll", "wal"], tune_reps=3, dbz_steady_s=5,
                 snapshot_age_s=300, snapshot_base_s=30, snapshot_rate=1000, snapshot_backlog=100_000),
}

CLK_TCK = os.sysconf("SC_CLK_TCK")
_children = []   # every process this harness started, so an interrupted run leaves none behind


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def now_ns():
    return time.monotonic_ns()   # CLOCK_MONOTONIC, the clock the C++ tools stamp with


# ---- processes ---------------------------------------------------------------------------------------

class Proc:
    """A child process whose CPU time (utime+stime from /proc/<pid>/stat) and peak RSS (VmHWM from
    /proc/<pid>/status) are sampled every 50 ms while it runs; CPU is read once more from wait4() at exit."""

    def __init__(self, argv, log_path=None, cwd=None, env=None, stdout=subprocess.PIPE):
        self.argv = argv
        self.log_path = log_path
        self.err = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.start_ns = now_ns()
        if stdout == "log":
            stdout = self.err
        self.p = subprocess.Popen(argv, stdout=stdout, stderr=self.err, cwd=cwd, env=env, text=True,
                                  start_new_session=True)
        _children.append(self)
        self.pid = self.p.pid
        self.cpu_s = 0.0
        self.hwm_kb = 0
        self.rc = None
        self.end_ns = None
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self):
        while not self._stop.is_set():
            try:
                with open(f"/proc/{self.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                self.cpu_s = max(self.cpu_s, (int(fields[11]) + int(fields[12])) / CLK_TCK)
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.hwm_kb = max(self.hwm_kb, int(line.split()[1]))
            except (OSError, IndexError, ValueError):
                pass
            self._stop.wait(0.05)

    def readline(self, timeout):
        """One line of stdout, or None after `timeout` seconds."""
        out = []
        t = threading.Thread(target=lambda: out.append(self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return out[0] if out else None

    def wait(self, timeout):
        """Waits up to `timeout` s; returns the exit code or None if still running."""
        deadline = time.monotonic() + timeout
        while self.rc is None:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.end_ns = now_ns()
                self.rc = os.waitstatus_to_exitcode(status)
                self.p.returncode = self.rc
                # CPU from rusage covers the last moments the sampler missed. Not ru_maxrss: Linux carries
                # the forked Python's RSS across exec into it; VmHWM (sampled) is the relay's own.
                self.cpu_s = max(self.cpu_s, ru.ru_utime + ru.ru_stime)
                self._stop.set()
                if self in _children:
                    _children.remove(self)
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return self.rc

    def stop(self, grace=15):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit code."""
        if self.rc is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(grace) is None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(10)
        return self.rc

    def stdout_rest(self):
        try:
            return self.p.stdout.read() if self.p.stdout else ""
        except ValueError:
            return ""


def _cleanup():
    for c in list(_children):
        try:
            c.stop(grace=5)
        except Exception:
            pass


atexit.register(_cleanup)


def run_json(argv, timeout):
    """Runs a bench tool that prints one JSON line; returns the dict (with 'error' when it failed)."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s: {' '.join(argv[:2])}"}
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    out = json.loads(lines[-1]) if lines else {}
    if r.returncode != 0:
        out["error"] = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
    return out


# ---- database --------------------------------------------------------------------------------------

def sql(q, args=None, url=URL, fetch=False):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(q, args)
            return cur.fetchall() if fetch else None
    finally:
        conn.close()


def drop_bench_slots():
    for (name,) in sql("SELECT slot_name FROM pg_replication_slots WHERE database = %s", (DB,), fetch=True):
        try:
            sql("SELECT pg_drop_replication_slot(%s)", (name,))
        except psycopg2.Error as e:
            log(f"could not drop slot {name}: {e}")


def create_slot(name):
    sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
    return name


def reset_tables():
    drop_bench_slots()
    sql("TRUNCATE outbox, orders, dbz_outbox, outbox_relay_parked")
    sql("CHECKPOINT")


def settle(table="outbox"):
    sql(f"ANALYZE {table}")
    sql("CHECKPOINT")


class Tools:
    def __init__(self, build, relay):
        self.loadgen = os.path.join(build, "bench", "bench_loadgen")
        self.claim = os.path.join(build, "bench", "bench_claim")
        self.kafka = os.path.join(build, "bench", "bench_kafka")
        self.relay = relay


T = None            # Tools
RELAY_EXTRA = []    # flags this relay build has that keep it off the test instances' ports
RAW = None          # directory for this run's raw files
_topic_no = [0]


def new_topic(tag):
    _topic_no[0] += 1
    name = f"bench.{tag}.{os.getpid()}.{_topic_no[0]}"
    r = run_json([T.kafka, "topics", "--brokers", BROKERS, "--partitions", "3", name], 60)
    if "error" in r:
        raise RuntimeError(f"could not create topic {name}: {r['error']}")
    return name


def fill(n, payload, layout="default"):
    """A backlog of n events written by the load generator (100 events per transaction). The NOTIFY
    trigger is off meanwhile: it only wakes a relay (none runs now) and serializes the writers."""
    if layout == "default":
        sql("ALTER TABLE outbox DISABLE TRIGGER outbox_notify")
    try:
        r = run_json([T.loadgen, "--db-url", URL, "--layout", layout, "--count", str(n), "--per-txn", "100",
                      "--connections", "4", "--payload", str(payload), "--writer-base", "500"], 1800)
    finally:
        if layout == "default":
            sql("ALTER TABLE outbox ENABLE TRIGGER outbox_notify")
    if "error" in r:
        raise RuntimeError(f"backlog fill failed: {r['error']}")
    settle("outbox" if layout == "default" else "dbz_outbox")
    return r


def sql_fill(n, payload):
    """The same rows written server-side (for the DB-only claim ceiling, which needs no WAL shape)."""
    chunk = 100_000
    for lo in range(1, n + 1, chunk):
        hi = min(n, lo + chunk - 1)
        sql("INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) "
            "SELECT 'order', g::text, 'OrderCreated', ('{\"id\": ' || g || ', \"ts\": 0, \"pad\": \"' || "
            "repeat('x', greatest(0, %s - 28 - length(g::text))) || '\"}')::jsonb "
            "FROM generate_series(%s, %s) g", (payload, lo, hi))
    settle()


# ---- the relay -------------------------------------------------------------------------------------

def relay_argv(mode, topic, layout="default", slot=None, extra=(), exit_when_idle=False):
    argv = [T.relay, "--db-url", URL, "--kafka-brokers", BROKERS, "--topic-template", topic]
    argv += RELAY_EXTRA
    if layout == "debezium":
        argv += ["--layout", "debezium", "--table", "dbz_outbox"]
        if mode == "poll":
            argv.append("--unordered")  # the table as Debezium has it: no ordering column
    if mode == "wal":
        argv += ["--mode", "wal", "--slot", slot,
                 "--publication", DBZ_RELAY_PUB if layout == "debezium" else PUB]
    if exit_when_idle:
        argv.append("--exit-when-idle")
    return argv + list(extra)


def logpath(name):
    return os.path.join(RAW, f"{name}.log")


class SqlCapture:
    """Reads the statements the relay's poll connection runs from pg_stat_activity, so the DB-only
    ceiling replays exactly the relay's SQL."""

    def __init__(self):
        self.claim = None
        self.done = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            conn = psycopg2.connect(URL)
            conn.autocommit = True
            cur = conn.cursor()
            while not self._stop.is_set() and not (self.claim and self.done):
                # the DELETE shows only between its start and COMMIT: sample often
                cur.execute("SELECT query FROM pg_stat_activity WHERE datname = %s AND application_name = "
                            "'outbox-relay' AND pid <> pg_backend_pid()", (DB,))
                for (q,) in cur.fetchall():
                    q = (q or "").strip()
                    if re.search(r"FOR UPDATE( OF \S+)? SKIP LOCKED", q):
                        self.claim = q
                    elif re.match(r"(DELETE FROM|UPDATE) .* = ANY\(\$1", q):
                        self.done = q
                self._stop.wait(0.005)
            conn.close()
        except psycopg2.Error:
            pass

    def stop(self):
        self._stop.set()
        self._t.join(2)


def drain(argv, name, expect, cap, capture_sql=False, cwd=None, env=None, topic=None, until_exit=False):
    """Runs a relay (or Debezium) over a backlog of `expect` events; returns rates, CPU and RSS.
    rate_wall: events / (process start -> last event visible in Kafka); rate_stream: events / (first ->
    last visible). until_exit: the end is the relay's exit instead (--exit-when-idle: every record
    acknowledged, every Kafka transaction committed, every row marked or the slot confirmed); the high
    watermark counts an exactly-once run's commit markers as records and its last transaction's records
    before they are committed. A run still going after `cap` seconds is stopped and counted as far as it got."""
    watch = Proc([T.kafka, "watch", "--brokers", BROKERS, "--topic", topic, "--expect", str(expect),
                  "--timeout", str(cap + 30), "--interval-ms", "20"], logpath(name + ".watch"))
    if watch.readline(60) is None:
        raise RuntimeError("watch did not start")
    cap_sql = SqlCapture() if capture_sql else None
    proc = Proc(argv, logpath(name), cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    t0 = proc.start_ns
    exited = proc.wait(cap)
    capped = exited is None
    if capped:
        proc.stop()
    else:
        # an exit-when-idle relay has committed everything; give the watch a moment to see it all
        watch.wait(5)
    if watch.rc is None and (capped or proc.rc is not None):
        watch.wait(0 if capped else 1)
        if watch.rc is None:
            os.kill(watch.pid, signal.SIGTERM)
            watch.wait(10)
    w = json.loads([l for l in watch.stdout_rest().splitlines() if l.startswith("{")][-1])
    if cap_sql:
        cap_sql.stop()
    count = w["count"]
    end = w["done_ns"] or (proc.end_ns if capped else None) or now_ns()
    offsets = count
    if until_exit and not capped and proc.end_ns:
        end = max(end, proc.end_ns)
        count = min(count, expect)  # offsets past `expect` are commit markers
    res = {
        "events": count, "expected": expect, "offsets": offsets, "capped": capped, "rc": proc.rc,
        "elapsed_s": (end - t0) / 1e9,
        "rate_wall": count / ((end - t0) / 1e9) if count else 0.0,
        "rate_stream": count / ((end - w["first_ns"]) / 1e9) if count and w["first_ns"] and end > w["first_ns"] else 0.0,
        "startup_s": (w["first_ns"] - t0) / 1e9 if w["first_ns"] else None,
        "cpu_s": proc.cpu_s, "cpu_per_100k": proc.cpu_s / count * 1e5 if count else None,
        "rss_mb": proc.hwm_kb / 1024,
    }
    if cap_sql:
        res["claim_sql"], res["done_sql"] = cap_sql.claim, cap_sql.done
    if (proc.rc not in (0, None, -15) and not capped) or count == 0:
        res["error"] = last_error(logpath(name))
    return res


def last_error(path):
    try:
        lines = [l.strip() for l in open(path, errors="replace") if l.strip()]
    except OSError:
        return "no log"
    errs = [l for l in lines if re.search(r"error|fatal|exception", l, re.I)]
    return (errs or lines or ["no output"])[-1][:300]


# ---- steady load and latency -----------------------------------------------------------------------

def txn_shape(rate):
    """(events per transaction, connections). With the NOTIFY trigger every committing writer is
    serialized (see the writer ceiling), so high rates batch events to stay near 200 commits/s."""
    if rate <= 10:
        return 1, 1
    return max(1, round(rate / 200)), 4


def pct(a, p):
    return float(np.percentile(a, p)) if len(a) else None


def steady_load(start_proc, name, rates, steady_s, grace_s, payload=200, layout="default",
                warmup_timeout=30):
    """Starts one relay (or Debezium) through start_proc(topic) and, for each rate, drives steady load
    for steady_s seconds while the probe records when each event became visible. One process per
    rate list, restarted per call. Returns one result per rate (stops at the first rate it falls
    behind)."""
    reset_tables()   # WAL-mode runs leave their rows behind; a poll relay would publish them here
    topic = new_topic(name.split("-")[0])
    proc = start_proc(topic)
    results = []
    try:
        # Warm-up: one event through the whole path, so connections and metadata are in place.
        run_json([T.loadgen, "--db-url", URL, "--layout", layout, "--count", "1", "--writer-base", "900",
                  "--connections", "1", "--payload", str(payload)], 60)
        w = run_json([T.kafka, "watch", "--brokers", BROKERS, "--topic", topic, "--expect", "1", "--from-zero",
                      "--timeout", str(warmup_timeout)], warmup_timeout + 30)
        if w.get("timed_out", True):
            raise RuntimeError(f"{name}: no event came through within {warmup_timeout}s "
                               f"({last_error(proc.log_path)})")
        seen = 1
        for rate in rates:
            r = one_rate(proc, topic, name, rate, steady_s, grace_s, payload, layout, seen)
            seen += r.get("generated", 0)
            results.append(r)
            if r.get("behind"):
                break
    except Exception as e:  # recorded, not raised: a failing variant must not end the whole run
        results.append({"error": str(e)})
    finally:
        proc.stop()
    for r in results:
        r["rss_mb"] = proc.hwm_kb / 1024
        r["cpu_s_total"] = proc.cpu_s
    return results


def match_latency(commit_out, probe_out):
    """Per event: the probe's time it became visible minus its commit (or send) time, in ms."""
    commits = np.fromfile(commit_out, dtype=np.int64).reshape(-1, 2)
    seen = np.fromfile(probe_out, dtype=np.int64).reshape(-1, 2)
    lat_ms = np.array([])
    if len(commits) and len(seen):
        c = commits[np.argsort(commits[:, 0])]
        s = seen[np.argsort(seen[:, 0])]
        idx = np.searchsorted(c[:, 0], s[:, 0])
        idx[idx >= len(c)] = 0
        ok = c[idx, 0] == s[:, 0]
        lat_ms = (s[ok, 1] - c[idx[ok], 1]) / 1e6
    return lat_ms


def producer_floor(rate, steady_s, tag):
    """The producer alone at `rate`, through the same probe: send -> visible. The relay cannot beat it."""
    topic = new_topic("floor")
    # Warm-up, as the relay runs get one event through first: the new topic's partitions led and written.
    run_json([T.kafka, "produce", "--brokers", BROKERS, "--topic", topic, "--count", "100"], 60)
    probe_out = os.path.join(RAW, tag + ".probe")
    sent_out = os.path.join(RAW, tag + ".sent")
    probe = Proc([T.kafka, "consume", "--brokers", BROKERS, "--topic", topic, "--out", probe_out,
                  "--timeout", str(steady_s + 60)], logpath(tag + ".probe"))
    if probe.readline(60) is None:
        raise RuntimeError("probe did not start")
    r = run_json([T.kafka, "produce", "--brokers", BROKERS, "--topic", topic, "--count", str(int(rate * steady_s)),
                  "--rate", str(rate), "--commit-log", sent_out], steady_s + 120)
    time.sleep(0.3)
    probe.stop()
    if "error" in r or not os.path.exists(sent_out):
        log(f"  producer floor at {rate}/s failed: {r.get('error', 'no send log')}")
        return {"rate": rate, "error": "producer: " + str(r.get("error", "no send log"))[:200]}
    lat_ms = match_latency(sent_out, probe_out)
    return {"rate": rate, "events": r.get("events"), "matched": int(len(lat_ms)),
            "p50_ms": pct(lat_ms, 50), "p99_ms": pct(lat_ms, 99), "p999_ms": pct(lat_ms, 99.9),
            "max_ms": float(lat_ms.max()) if len(lat_ms) else None}


def latency_runs(cfg, wal_ok):
    """cfg["lat_runs"] consecutive runs: per mode a relay under steady load at each latency rate, and the
    producer alone at the same rates (the floor), interleaved so that all see the same host."""
    out = {"floor": [], "poll": [], "wal": []} if wal_ok else {"floor": [], "poll": []}
    for i in range(cfg["lat_runs"]):
        log(f"  run {i + 1} of {cfg['lat_runs']}")
        rates = [1000, 5000]
        out["floor"].append([producer_floor(rate, cfg["steady_s"], f"floor-{rate}-{i}") for rate in rates])
        for mode in [m for m in ("poll", "wal") if m in out]:
            out[mode].append(steady_load(relay_daemon(mode), f"lat5-{mode}", rates, cfg["steady_s"], cfg["grace_s"]))
    return out


def eos_pairs(cfg, wal_ok):
    """At-least-once against --exactly-once on the same services, pair by pair: cfg["eos_runs"] runs, each
    draining the same backlog with one and then the other (which goes first alternates by run), both
    modes, both payloads; then each under steady load at 1,000 and 5,000 events/s. A drain ends when the
    relay exits with everything durable (drain(until_exit=True))."""
    modes = ["poll", "wal"] if wal_ok else ["poll"]
    variants = [("at-least-once", []), ("exactly-once", ["--exactly-once"])]
    out = {"drain": [], "latency": [], "first_start": {}}
    # The first exactly-once start on a new cluster creates the checkpoint topic, and the broker its
    # transaction log: once per cluster, not per start, so it is timed here and kept out of the runs.
    reset_tables()
    for mode in modes:
        slot = create_slot("bench_eos_first") if mode == "wal" else None
        t0 = now_ns()
        p = Proc(relay_argv(mode, new_topic("eos"), slot=slot, extra=["--exactly-once"], exit_when_idle=True),
                 logpath(f"eos-first-start-{mode}"), stdout=subprocess.DEVNULL)
        rc = p.wait(120)
        out["first_start"][mode] = {"seconds": ((p.end_ns or now_ns()) - t0) / 1e9, "rc": rc}
        if rc is None:
            p.stop()
        if slot:
            sql("SELECT pg_drop_replication_slot(%s)", (slot,))
    for i in range(cfg["eos_runs"]):
        order = variants if i % 2 == 0 else list(reversed(variants))
        drains = {}
        for payload in cfg["payloads"]:
            n = cfg["backlog"][payload]
            for mode in modes:
                log(f"  run {i + 1}: {mode} drain of {n} x {payload} B, " + " then ".join(v for v, _ in order))
                reset_tables()
                slots = [create_slot(f"bench_eos_{j}") for j in range(len(order))] if mode == "wal" else []
                if mode == "wal":
                    fill(n, payload)  # both slots read the same WAL
                for v, flags in order:
                    if mode == "poll":
                        sql("TRUNCATE outbox")
                        fill(n, payload)
                    topic = new_topic("eos")
                    slot = slots.pop(0) if mode == "wal" else None
                    drains[f"{mode} {payload} {v}"] = drain(
                        relay_argv(mode, topic, slot=slot, extra=flags, exit_when_idle=True),
                        f"eos-drain-{mode}-{payload}-{v}-{i}", n, cfg["drain_cap"] * 4, topic=topic, until_exit=True)
                    if slot:
                        sql("SELECT pg_drop_replication_slot(%s)", (slot,))
        out["drain"].append(drains)
        lat = {}
        for mode in modes:
            for v, flags in order:
                log(f"  run {i + 1}: {mode} {v} steady load")
                lat[f"{mode} {v}"] = steady_load(relay_daemon(mode, extra=flags), f"eoslat-{mode}", [1000, 5000],
                                                 cfg["steady_s"], cfg["grace_s"])
        out["latency"].append(lat)
    return out


def scrape_stages():
    """The relay's batch stage histograms (sum, count) from its /metrics; None when it has none."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{int(KAFKA_PORT) + 95}/metrics", timeout=2).read().decode()
    except Exception:
        return None
    out = {}
    for stage in ("fetch", "publish", "settle"):
        ms = re.search(rf"^outbox_relay_batch_{stage}_seconds_sum (\S+)$", text, re.M)
        mc = re.search(rf"^outbox_relay_batch_{stage}_seconds_count (\S+)$", text, re.M)
        if ms and mc:
            out[stage] = (float(ms.group(1)), float(mc.group(1)))
    return out or None


def stage_means(before, after):
    """Mean ms per batch of each stage between two scrape_stages() readings, and the batch count."""
    if not before or not after:
        return None
    out = {}
    for stage, (s1, c1) in after.items():
        s0, c0 = before.get(stage, (0.0, 0.0))
        if c1 > c0:
            out[stage] = (s1 - s0) / (c1 - c0) * 1000
            out["batches"] = int(c1 - c0)
    return out or None


def one_rate(proc, topic, name, rate, steady_s, grace_s, payload, layout, seen_before):
    per_txn, conns = txn_shape(rate)
    stages0 = scrape_stages() if name.startswith("lat") else None
    tag = f"{name}-{rate}"
    probe_out = os.path.join(RAW, tag + ".probe")
    commit_out = os.path.join(RAW, tag + ".commits")
    probe = Proc([T.kafka, "consume", "--brokers", BROKERS, "--topic", topic, "--out", probe_out,
                  "--timeout", str(steady_s + grace_s + 60)], logpath(tag + ".probe"))
    if probe.readline(60) is None:
        raise RuntimeError("probe did not start")
    cpu0 = proc.cpu_s
    if rate <= 10:
        count = steady_s
        lg = run_json([T.loadgen, "--db-url", URL, "--layout", layout, "--rate", str(rate), "--count",
                       str(count), "--per-txn", "1", "--connections", "1", "--payload", str(payload),
                       "--commit-log", commit_out], count / rate + 60)
    else:
        lg = run_json([T.loadgen, "--db-url", URL, "--layout", layout, "--rate", str(rate), "--duration",
                       str(steady_s), "--per-txn", str(per_txn), "--connections", str(conns), "--payload",
                       str(payload), "--commit-log", commit_out], steady_s + 120)
    if "error" in lg:
        probe.stop()
        return {"rate": rate, "error": "load generator: " + lg["error"]}
    gen = lg["events"]
    w = run_json([T.kafka, "watch", "--brokers", BROKERS, "--topic", topic, "--expect", str(seen_before + gen),
                  "--from-zero", "--timeout", str(grace_s)], grace_s + 30)
    time.sleep(0.3)
    probe.stop()
    lat_ms = match_latency(commit_out, probe_out)
    done_ns = w.get("done_ns") or 0
    tail_s = (done_ns - lg["end_ns"]) / 1e9 if done_ns else None
    behind = bool(w.get("timed_out", True) or (tail_s is not None and tail_s > 1.0) or
                  (len(lat_ms) and pct(lat_ms, 99) > 1000))
    gen_limited = lg["rate"] < 0.9 * rate if rate > 10 else False
    res = {
        "rate": rate, "per_txn": per_txn, "connections": conns, "generated": gen,
        "gen_rate": lg["rate"], "gen_limited": gen_limited,
        "commit_ms_p50": lg["commit_ms_p50"], "commit_ms_p99": lg["commit_ms_p99"],
        "matched": int(len(lat_ms)), "missing": int(gen - len(lat_ms)),
        "p50_ms": pct(lat_ms, 50), "p99_ms": pct(lat_ms, 99), "p999_ms": pct(lat_ms, 99.9),
        "max_ms": float(lat_ms.max()) if len(lat_ms) else None,
        "tail_s": tail_s, "behind": behind,
        "delivered_rate": gen / ((done_ns - lg["start_ns"]) / 1e9) if done_ns else None,
        "cpu_s": proc.cpu_s - cpu0, "rss_mb_so_far": proc.hwm_kb / 1024,
    }
    if stages0:
        res["stages_ms"] = stage_means(stages0, scrape_stages())
    if 0 < len(lat_ms) <= 50:
        res["samples_ms"] = [round(float(x), 2) for x in lat_ms]
    for f in (probe_out, commit_out):
        try:
            os.remove(f)
        except OSError:
            pass
    return res


def relay_daemon(mode, layout="default", extra=()):
    def start(topic):
        slot = create_slot(f"bench_lat_{os.getpid()}_{_topic_no[0]}") if mode == "wal" else None
        argv = relay_argv(mode, topic, layout=layout, slot=slot, extra=extra)
        p = Proc(argv, logpath(f"relay-{mode}-{layout}-{_topic_no[0]}"), stdout=subprocess.DEVNULL)
        return p
    return start


# ---- Debezium Server --------------------------------------------------------------------------------

def dbz_home():
    return os.path.join(CACHE, "debezium", DBZ_VERSION, "debezium-server")


def dbz_available():
    home = dbz_home()
    if not os.path.isdir(home):
        return f"Debezium Server {DBZ_VERSION} is not in {home} (bench/setup fetches it)"
    if shutil.which(DBZ_JAVA) is None:
        return f"no java ({DBZ_JAVA})"
    return None


# Debezium Server's tuning, step by step, as its documentation advises: the engine's poll interval (500 ms
# by default), its batch and queue sizes (2048 / 8192), the Kafka sink's producer (batching, compression),
# and how often offsets are flushed. Each step keeps the ones before it; the dbz-tune section measures
# every step, and "tuned" in the comparison is the last one (the fastest in bench/results' dbz-tune
# runs). Debezium Server 2.7's sink waits for each record in turn, so there any linger.ms is paid per
# record (linger.ms=5 measured 160 events/s): its steps stop before the producer's.
DBZ_STEPS = [
    ("defaults", {}),
    ("poll.interval.ms=10", {"debezium.source.poll.interval.ms": "10"}),
    ("max.batch.size=8192, max.queue.size=32768",
     {"debezium.source.max.batch.size": "8192", "debezium.source.max.queue.size": "32768"}),
    ("producer linger.ms=10, batch.size=256KiB",
     {"debezium.sink.kafka.producer.linger.ms": "10", "debezium.sink.kafka.producer.batch.size": "262144"}),
    ("producer compression.type=lz4", {"debezium.sink.kafka.producer.compression.type": "lz4"}),
    ("max.batch.size=20480, max.queue.size=81920",
     {"debezium.source.max.batch.size": "20480", "debezium.source.max.queue.size": "81920"}),
    # The base flushes offsets every second (a re-send window near the relay's, which marks every batch);
    # Debezium's default is a minute.
    ("offset.flush.interval.ms=60000", {"debezium.source.offset.flush.interval.ms": "60000"}),
]


def dbz_step_props(upto):
    """The settings of DBZ_STEPS[0..upto], later steps overriding earlier ones."""
    props = {}
    for _, p in DBZ_STEPS[:upto + 1]:
        props.update(p)
    return props


def dbz_tuned_props():
    if DBZ_VERSION.startswith("2."):
        return dbz_step_props(2)   # see DBZ_STEPS: no producer steps on 2.x
    return dbz_step_props(len(DBZ_STEPS) - 1)


def dbz_properties(topic, slot, run_dir, tuned):
    props = {
        "debezium.sink.type": "kafka",
        "debezium.sink.kafka.producer.bootstrap.servers": BROKERS,
        "debezium.sink.kafka.producer.key.serializer": "org.apache.kafka.common.serialization.StringSerializer",
        "debezium.sink.kafka.producer.value.serializer": "org.apache.kafka.common.serialization.StringSerializer",
        "debezium.sink.kafka.producer.acks": "all",
        "debezium.sink.kafka.producer.enable.idempotence": "true",
        "debezium.source.connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "debezium.source.offset.storage.file.filename": os.path.join(run_dir, "offsets.dat"),
        "debezium.source.offset.flush.interval.ms": "1000",
        "debezium.source.database.hostname": "127.0.0.1",
        "debezium.source.database.port": PG_PORT,
        "debezium.source.database.user": "postgres",
        "debezium.source.database.password": "postgres",
        "debezium.source.database.dbname": DB,
        "debezium.source.topic.prefix": "bench",
        "debezium.source.table.include.list": "public.dbz_outbox",
        "debezium.source.plugin.name": "pgoutput",
        "debezium.source.slot.name": slot,
        "debezium.source.publication.name": DBZ_PUB,
        "debezium.source.publication.autocreate.mode": "disabled",
        "debezium.source.snapshot.mode": "no_data",
        "debezium.transforms": "outbox",
        "debezium.transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        "debezium.transforms.outbox.route.topic.replacement": topic,
        "debezium.format.key": "json",
        "debezium.format.value": "json",
        "debezium.format.key.schemas.enable": "false",
        "debezium.format.value.schemas.enable": "false",
        "quarkus.http.host": "127.0.0.1",
        "quarkus.http.port": str(int(KAFKA_PORT) + 88),
        "quarkus.log.level": "INFO",
        "quarkus.log.console.json": "false",
    }
    if tuned is True:
        props.update(dbz_tuned_props())
    elif isinstance(tuned, dict):
        props.update(tuned)
    return props


def dbz_start(tuned, slot=None):
    """tuned: False (Debezium's defaults), True (dbz_tuned_props()) or a dict of settings."""
    def start(topic):
        s = slot or create_slot(f"bench_dbz_{os.getpid()}_{_topic_no[0]}")
        run_dir = os.path.join(RAW, f"dbz-{topic}")
        shutil.rmtree(run_dir, ignore_errors=True)   # no offsets from an earlier run
        os.makedirs(os.path.join(run_dir, "config"))
        with open(os.path.join(run_dir, "config", "application.properties"), "w") as f:
            for k, v in dbz_properties(topic, s, run_dir, tuned).items():
                f.write(f"{k}={v}\n")
        home = dbz_home()
        runner = [n for n in os.listdir(home) if n.endswith("-runner.jar")][0]
        cp = ":".join([os.path.join(home, runner), os.path.join(home, "config", "lib"),
                       os.path.join(home, "lib", "*")])
        return Proc([DBZ_JAVA, "-cp", cp, "io.debezium.server.Main"], os.path.join(run_dir, "debezium.log"),
                    cwd=run_dir, stdout="log")
    return start


# ---- experiments -----------------------------------------------------------------------------------

def median_of(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None and "error" not in r]
    return statistics.median(vals) if vals else None


def check_wal():
    """Whether this relay build has a working --mode wal (the rows stay empty until it does)."""
    reset_tables()
    topic = new_topic("walcheck")
    slot = create_slot("bench_walcheck")
    p = Proc(relay_argv("wal", topic, slot=slot, exit_when_idle=True), logpath("walcheck"),
             stdout=subprocess.DEVNULL)
    rc = p.wait(30)
    if rc is None:
        p.stop()
        return f"--mode wal did not go idle within 30 s on an empty table ({last_error(p.log_path)})"
    drop_bench_slots()
    if rc != 0:
        return f"--mode wal exits {rc}: {last_error(p.log_path)}"
    return None


def writer_ceiling(cfg):
    """The application's commit rate (1 event per transaction, 8 connections) with and without the
    outbox NOTIFY trigger: notifying commits are serialized cluster-wide by PostgreSQL."""
    out = {}
    for trig in ("on", "off"):
        sql("TRUNCATE outbox, orders")
        if trig == "off":
            sql("ALTER TABLE outbox DISABLE TRIGGER outbox_notify")
        try:
            out[trig] = run_json([T.loadgen, "--db-url", URL, "--duration", str(cfg["writer_s"]), "--per-txn", "1",
                                  "--connections", "8", "--payload", "200"], cfg["writer_s"] + 60)
        finally:
            sql("ALTER TABLE outbox ENABLE TRIGGER outbox_notify")
    sql("TRUNCATE outbox, orders")
    return out


def throughput(cfg, wal_ok, rep, payload):
    n = cfg["backlog"][payload]
    res = {}
    reset_tables()
    slot_recv = create_slot("bench_recv")
    slot_wal = create_slot("bench_wal") if wal_ok else None
    log(f"  fill {n} x {payload} B")
    res["fill"] = fill(n, payload)
    endpos = sql("SELECT pg_current_wal_insert_lsn()::text", fetch=True)[0][0]
    # Something in the stream past endpos, so pg_recvlogical stops as soon as it has read the backlog
    # rather than at the server's next keepalive (up to wal_sender_timeout/2 later). The relay ignores
    # logical messages without its prefix.
    sql("SELECT pg_logical_emit_message(false, 'bench-end', '')")

    def recvlogical():
        # DB-only WAL ceiling: pg_recvlogical with pgoutput, the relay's options, to /dev/null.
        log("  pg_recvlogical ceiling")
        t0 = now_ns()
        p = Proc([os.path.join(PGBIN, "pg_recvlogical"), "-d", URL, "--slot", slot_recv, "--start",
                  "--endpos", endpos, "-o", "proto_version=1", "-o", f"publication_names={PUB}",
                  "-o", "messages=true", "-f", "/dev/null", "--no-loop"], logpath(f"recvlogical-{payload}-{rep}"),
                 stdout=subprocess.DEVNULL)
        rc = p.wait(cfg["wal_cap"])
        if rc is None:
            p.stop()
        el = ((p.end_ns or now_ns()) - t0) / 1e9
        res["recvlogical"] = {"events": n, "elapsed_s": el, "rate": n / el, "rc": rc, "cpu_s": p.cpu_s}
        if rc not in (0,):
            res["recvlogical"]["error"] = last_error(p.log_path)
        sql("SELECT pg_drop_replication_slot(%s)", (slot_recv,))


    def wal_relay():
        if wal_ok:
            log("  relay --mode wal drain")
            topic = new_topic("wal")
            res["wal"] = drain(relay_argv("wal", topic, slot=slot_wal, exit_when_idle=True),
                               f"drain-wal-{payload}-{rep}", n, cfg["wal_cap"], topic=topic)
            sql("SELECT pg_drop_replication_slot(%s)", (slot_wal,))


    # Both read the same WAL; which goes first alternates by run so neither always reads it cold.
    for step in ((recvlogical, wal_relay) if rep % 2 == 0 else (wal_relay, recvlogical)):
        step()

    log("  relay --mode poll drain")
    topic = new_topic("poll")
    res["poll"] = drain(relay_argv("poll", topic, exit_when_idle=True), f"drain-poll-{payload}-{rep}", n,
                        cfg["drain_cap"], capture_sql=True, topic=topic)

    # DB-only poll ceiling: the relay's own claim + mark statements, no Kafka.
    log("  claim ceiling (relay SQL)")
    sql("TRUNCATE outbox")
    sql_fill(n, payload)
    # The relay's batches: --batch-size 2000, cut at --batch-bytes 2 MiB of records (~1,000 of 2 KB).
    batch = min(2000, (2 << 20) // (payload + 60))
    argv = [T.claim, "--db-url", URL, "--timeout", str(cfg["claim_cap"]), "--batch-size", str(batch)]
    if res["poll"].get("claim_sql"):
        argv += ["--claim-sql", res["poll"]["claim_sql"]]
        if res["poll"].get("done_sql"):
            argv += ["--done-sql", res["poll"]["done_sql"]]
    else:
        argv += ["--order", "qualified"]   # not captured: the poll source's own claim statements
    res["claim"] = run_json(argv, cfg["claim_cap"] + 120)
    res["claim"]["sql_from_relay"] = bool(res["poll"].get("claim_sql"))

    if rep == 0:
        # The claim as commit 0262e23 wrote it: ORDER BY the text alias `id`, which sorts every pending
        # row as text on each claim (the tree now orders by o.id). Kept as evidence of what that cost.
        log("  claim loop, 0262e23's unqualified ORDER BY")
        sql("TRUNCATE outbox")
        sql_fill(n, payload)
        res["claim_old"] = run_json([T.claim, "--db-url", URL, "--timeout", str(cfg["claim_cap"]),
                                     "--order", "text-alias"], cfg["claim_cap"] + 120)
    sql("TRUNCATE outbox")

    log("  raw producer ceiling")
    topic = new_topic("producer")
    res["producer"] = run_json([T.kafka, "produce", "--brokers", BROKERS, "--topic", topic, "--count", str(n),
                                "--payload", str(payload)], 600)

    # Both ceilings at once, each on its own data, for the same window (short enough that neither runs out
    # of data at its rate alone): what this host does of the DB side and the Kafka side together with no
    # relay between them (they share the CPUs, as the relay's drain does).
    log("  claim ceiling and raw producer at once")
    rates = [x.get("rate") for x in (res["claim"], res["producer"]) if x.get("rate")]
    window = max(1.0, min(cfg["claim_cap"], 0.8 * n / max(rates))) if rates else 5.0
    sql_fill(n, payload)
    topic = new_topic("producer")
    both = {}

    def run_into(key, argv, timeout):
        both[key] = run_json(argv, timeout)
    claim_argv = list(argv)
    claim_argv[claim_argv.index("--timeout") + 1] = f"{window:.1f}"
    threads = [threading.Thread(target=run_into, args=("claim", claim_argv, cfg["claim_cap"] + 120)),
               threading.Thread(target=run_into, args=("producer", [
                   T.kafka, "produce", "--brokers", BROKERS, "--topic", topic, "--count", str(n),
                   "--seconds", f"{window:.1f}", "--payload", str(payload)], 600))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    both["window_s"] = window
    res["claim_with_producer"] = both.get("claim", {})
    res["producer_with_claim"] = both.get("producer", {})
    res["both_window_s"] = window
    sql("TRUNCATE outbox")
    return res


def one_txn_fill(n, payload):
    """n events inserted by one transaction (a backfill): WAL mode receives it only at its commit."""
    sql("ALTER TABLE outbox DISABLE TRIGGER outbox_notify")
    try:
        sql("INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) "
            "SELECT 'order', (g %% 1000)::text, 'OrderCreated', ('{\"id\": ' || g || ', \"pad\": \"' || "
            "repeat('x', greatest(0, %s - 20 - length(g::text))) || '\"}')::jsonb "
            "FROM generate_series(1, %s) g", (payload, n))
    finally:
        sql("ALTER TABLE outbox ENABLE TRIGGER outbox_notify")
    settle()


def memory(cfg, wal_ok):
    """Peak RSS of drains at the default --memory-budget, beside the same drains with a budget large
    enough not to bind (the throughput the bound costs), alternating, cfg["mem_reps"] runs of each."""
    variants = [("default", [])] + [(f"--memory-budget {b}", ["--memory-budget", b]) for b in cfg["mem_budgets"]]
    # Not binding: a 1 GiB read-ahead, batches bounded by --batch-size alone, no transaction chunked.
    variants.append(("unbound", ["--memory-budget", "4GiB", "--batch-bytes", "0B"]))
    reps = cfg["mem_reps"]
    out = {}
    for name, n, payload, one_txn in cfg["mem_sets"]:
        modes = ["wal", "poll"] if wal_ok else ["poll"]
        if one_txn:
            modes = [m for m in modes if m == "wal"]  # poll mode claims rows, whatever wrote them
        for mode in modes:
            key = f"{mode} {name}"
            log(f"  {key}")
            runs = {v: [] for v, _ in variants}
            reset_tables()
            slots = [create_slot(f"bench_mem_{i}") for i in range(reps * len(variants))] if mode == "wal" else []
            filled = False
            for i in range(reps):
                for v, flags in (variants if i % 2 == 0 else list(reversed(variants))):
                    if mode == "poll" or not filled:
                        if mode == "poll":
                            sql("TRUNCATE outbox")
                        if one_txn:
                            one_txn_fill(n, payload)
                        else:
                            fill(n, payload)
                        filled = True
                    topic = new_topic("mem")
                    slot = slots.pop(0) if mode == "wal" else None
                    r = drain(relay_argv(mode, topic, slot=slot, extra=flags, exit_when_idle=True),
                              f"mem-{mode}-{n}-{payload}-{v.replace(' ', '')}-{i}", n, cfg["drain_cap"] * 4,
                              topic=topic)
                    if slot:
                        sql("SELECT pg_drop_replication_slot(%s)", (slot,))
                    runs[v].append(r)
            out[key] = {"events": n, "payload": payload, "one_txn": one_txn, "runs": runs}
    return out


def new_topic_start(cfg):
    """Poll drains of the same backlog into a topic created beforehand and into one that does not exist
    yet (the broker auto-creates it on the relay's first request), alternating, cfg["newtopic_reps"] runs
    of each. Process start to exit: an --exit-when-idle relay exits once every record is acknowledged."""
    n = cfg["newtopic_backlog"]
    out = {"events": n, "existing": [], "auto-created": []}
    for i in range(cfg["newtopic_reps"]):
        for kind in (("existing", "auto-created") if i % 2 == 0 else ("auto-created", "existing")):
            sql("TRUNCATE outbox")
            fill(n, 200)
            if kind == "existing":
                topic = new_topic("nt")
            else:
                _topic_no[0] += 1
                topic = f"bench.auto.{os.getpid()}.{_topic_no[0]}"
            p = Proc(relay_argv("poll", topic, exit_when_idle=True), logpath(f"newtopic-{kind}-{i}"),
                     stdout=subprocess.DEVNULL)
            rc = p.wait(cfg["drain_cap"] * 4)
            if rc is None:
                p.stop()
            el = ((p.end_ns or now_ns()) - p.start_ns) / 1e9
            left = int(sql("SELECT count(*) FROM outbox", fetch=True)[0][0])
            r = {"elapsed_s": el, "rate": (n - left) / el, "rc": rc, "left": left}
            if rc != 0 or left:
                r["error"] = last_error(p.log_path)
            log(f"  {kind} topic run {i + 1}: {el:.2f} s")
            out[kind].append(r)
    sql("TRUNCATE outbox")
    return out


class OldSnapshot:
    """Another session holding a REPEATABLE READ snapshot open (xmin held back: vacuum can remove nothing
    deleted since), until close() or the end of a `with` block."""

    def __init__(self):
        self.conn = psycopg2.connect(URL)
        cur = self.conn.cursor()
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT count(*) FROM orders")   # takes the snapshot

    def close(self):
        if self.conn:
            self.conn.rollback()
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def degradation(cfg, rep):
    """Poll-mode drain while another session holds a REPEATABLE READ snapshot open."""
    n = cfg["degrade_backlog"]
    out = {}
    for snap in (False, True):
        reset_tables()
        sql_fill(n, 200)
        holder = OldSnapshot() if snap else None
        topic = new_topic("degrade")
        try:
            out["snapshot" if snap else "baseline"] = drain(
                relay_argv("poll", topic, exit_when_idle=True), f"degrade-{snap}-{rep}", n, cfg["drain_cap"],
                topic=topic)
        finally:
            if holder:
                holder.close()
    return out


BATCH_LINE = re.compile(r"^\[?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+)(?:\+00:00)?\]? \[?debug\]? "
                        r"batch of (\d+): fetched in ([\d.]+) ms")


def batch_timings(path):
    """(unix time, events, claim ms) of every batch in a relay's debug log (its clock is this host's)."""
    out = []
    with open(path) as f:
        for line in f:
            m = BATCH_LINE.match(line)
            if m:
                stamp = m.group(1).replace("T", " ")
                t = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(
                    tzinfo=datetime.timezone.utc if "+00:00" in line[:40] else None).timestamp()
                out.append((t, int(m.group(2)), float(m.group(3))))
    return out


def snapshot_age(cfg):
    """Poll mode under steady writes while another session holds a REPEATABLE READ snapshot open for
    `snapshot_age_s`: the claim time (the relay's "fetched in" timing: claim statement plus row mapping)
    in each minute of snapshot age, beside the same load before the snapshot; then a backlog drained
    behind the aged snapshot, beside the same drain after it closed."""
    age, rate, n = cfg["snapshot_age_s"], cfg["snapshot_rate"], cfg["snapshot_backlog"]
    reset_tables()
    topic = new_topic("snapshot")
    path = logpath("snapshot-relay")
    relay = Proc(relay_argv("poll", topic, extra=["--log-level", "debug"]), path, stdout=subprocess.DEVNULL)
    marks = {}
    per_txn, conns = txn_shape(rate)

    def load(seconds):
        r = run_json([T.loadgen, "--db-url", URL, "--rate", str(rate), "--duration", str(seconds), "--per-txn",
                      str(per_txn), "--connections", str(conns), "--payload", "200"], seconds + 120)
        if "error" in r:
            raise RuntimeError("load generator: " + r["error"])

    def drain_backlog(tag):
        marks[tag + "_fill"] = time.time()
        sql_fill(n, 200)
        marks[tag + "_filled"] = time.time()
        deadline = time.time() + cfg["drain_cap"] * 3
        while time.time() < deadline and sql("SELECT count(*) FROM outbox", fetch=True)[0][0] > 0:
            time.sleep(0.2)
        marks[tag + "_drained"] = time.time()
    try:
        marks["baseline"] = time.time()
        load(cfg["snapshot_base_s"])
        with OldSnapshot():
            marks["snapshot"] = time.time()
            load(age)
            marks["aged"] = time.time()
            drain_backlog("old")
        marks["closed"] = time.time()
        sql("VACUUM outbox")
        drain_backlog("new")
    finally:
        relay.stop()
    rows = batch_timings(path)

    def claims(t0, t1):
        ms = [c for t, _, c in rows if t0 <= t < t1]
        return {"batches": len(ms), "p50": pct(ms, 50), "p99": pct(ms, 99), "max": max(ms) if ms else None}
    out = {"rate": rate, "age_s": age, "backlog": n, "marks": marks,
           "baseline": claims(marks["baseline"], marks["snapshot"]), "minutes": []}
    t = marks["snapshot"]
    while t < marks["aged"] - 1:
        out["minutes"].append(claims(t, min(t + 60, marks["aged"])))
        t += 60
    for tag in ("old", "new"):
        out[f"drain_{tag}"] = {"rate": n / max(1e-3, marks[f"{tag}_drained"] - marks[f"{tag}_filled"]),
                               "claims": claims(marks[f"{tag}_fill"], marks[f"{tag}_drained"] + 1)}
    return out


def idle_to_first(cfg, mode):
    """Single events 0.5 s apart into an idle relay: LISTEN/NOTIFY wake-up (poll) or WAL streaming."""
    r = steady_load(relay_daemon(mode), f"idle-{mode}", [2], cfg["idle_events"], cfg["grace_s"])
    return r[0] if r else {"error": "no result"}


def dbz_compare(cfg, wal_ok, rep):
    """Relay (poll, wal) and Debezium Server (default, tuned) on the same Debezium-style table and
    broker: drain a backlog, then steady load at each rate with the same probe."""
    out = {}
    variants = [("relay-poll", None), ("relay-wal", None) if wal_ok else None]
    dbz_err = dbz_available()
    if dbz_err is None:
        variants.append(("debezium-default", False))
        if cfg["dbz_tuned"]:
            variants.append(("debezium-tuned", True))
    for v in [v for v in variants if v]:
        name, tuned = v
        reset_tables()
        slot = create_slot("bench_dbzcmp") if name != "relay-poll" else None
        # Poll mode is woken by the NOTIFY trigger that `migrate` puts on its own table; give the
        # Debezium-style table the same trigger for that run only (no other variant needs it).
        sql("DROP TRIGGER IF EXISTS outbox_notify ON dbz_outbox")
        if name == "relay-poll":
            sql("CREATE TRIGGER outbox_notify AFTER INSERT ON dbz_outbox FOR EACH STATEMENT "
                "EXECUTE FUNCTION outbox_notify()")
        fill(cfg["dbz_backlog"], 200, layout="debezium")
        topic = new_topic(name.replace("-", ""))
        if name.startswith("debezium"):
            start = dbz_start(tuned, slot=slot)
        else:
            mode = name.split("-")[1]

            def start(t, mode=mode, slot=slot):
                return Proc(relay_argv(mode, t, layout="debezium", slot=slot),
                            logpath(f"{name}-{rep}"), stdout=subprocess.DEVNULL)
        log(f"  {name}: drain {cfg['dbz_backlog']} then steady load")
        out[name] = dbz_lifetime(cfg, name, start, topic, rep)
        drop_bench_slots()
    if dbz_err:
        out["debezium_error"] = dbz_err
    return out


def dbz_lifetime(cfg, name, start, topic, rep):
    """One process: drain the backlog (measured by the watch), then steady load at each rate."""
    n = cfg["dbz_backlog"]
    watch = Proc([T.kafka, "watch", "--brokers", BROKERS, "--topic", topic, "--expect", str(n), "--timeout",
                  str(cfg["dbz_cap"] + 60), "--from-zero"], logpath(f"{name}-{rep}.watch"))
    watch.readline(60)
    proc = start(topic)
    t0 = proc.start_ns
    res = {"rates": []}
    try:
        if watch.wait(cfg["dbz_cap"] + 60) is None:
            watch.stop()
        w = json.loads([l for l in watch.stdout_rest().splitlines() if l.startswith("{")][-1])
        end = w["done_ns"] or now_ns()
        res["drain"] = {
            "events": w["count"], "capped": bool(w["timed_out"]),
            "startup_s": (w["first_ns"] - t0) / 1e9 if w["first_ns"] else None,
            "rate_stream": w["count"] / ((end - w["first_ns"]) / 1e9) if w["first_ns"] and end > w["first_ns"] else 0,
            "rate_wall": w["count"] / ((end - t0) / 1e9), "cpu_s": proc.cpu_s,
            "cpu_per_100k": proc.cpu_s / w["count"] * 1e5 if w["count"] else None,
        }
        if proc.rc is not None:
            raise RuntimeError(f"{name} exited {proc.rc}: {last_error(proc.log_path)}")
        seen = w["count"]
        if seen < n:
            raise RuntimeError(f"{name} drained only {seen}/{n} events ({last_error(proc.log_path)})")
        for rate in cfg["dbz_rates"]:
            r = one_rate(proc, topic, f"{name}-{rep}", rate, cfg.get("dbz_steady_s", cfg["steady_s"]), cfg["grace_s"],
                         200, "debezium", seen)
            seen += r.get("generated", 0)
            res["rates"].append(r)
    except Exception as e:
        res["error"] = str(e)
    finally:
        proc.stop(grace=20)
    res["rss_mb"] = proc.hwm_kb / 1024
    res["cpu_s_total"] = proc.cpu_s
    return res


def dbz_tuning(cfg, wal_ok):
    """Debezium Server over the same backlog with each DBZ_STEPS step (cumulative), and the relay in both
    modes over it, cfg["dbz_tune_reps"] rounds. One process per drain: start -> last record (wall) and
    first -> last record (stream, without the JVM's start)."""
    err = dbz_available()
    if err:
        return {"error": err}
    n = cfg["dbz_tune_backlog"]
    steps = DBZ_STEPS if not DBZ_VERSION.startswith("2.") else DBZ_STEPS[:3]
    out = {"events": n, "version": DBZ_VERSION, "java": DBZ_JAVA, "steps": [], "relay": {}}
    runs = {name: [] for name, _ in steps}
    relay_runs = {m: [] for m in (["poll", "wal"] if wal_ok else ["poll"])}
    for rep in range(cfg["dbz_tune_reps"]):
        for i, (name, _) in enumerate(steps):
            reset_tables()
            slot = create_slot("bench_dbztune")
            fill(n, 200, layout="debezium")
            topic = new_topic("dbztune")
            props = dbz_step_props(i)
            r = dbz_lifetime(dict(cfg, dbz_backlog=n, dbz_rates=[]), f"dbztune-{i}", dbz_start(props, slot=slot),
                             topic, rep)
            drop_bench_slots()
            d = r.get("drain", {})
            log(f"  debezium {name}: {d.get('rate_stream', 0):.0f} ev/s stream, {d.get('rate_wall', 0):.0f} wall"
                + (f" ({r['error']})" if r.get("error") else ""))
            runs[name].append({**d, "rss_mb": r.get("rss_mb"), "error": r.get("error")})
        for mode in relay_runs:
            reset_tables()
            slot = create_slot("bench_dbztune_relay") if mode == "wal" else None
            fill(n, 200, layout="debezium")
            topic = new_topic("dbztunerelay")
            argv = relay_argv(mode, topic, layout="debezium", slot=slot, exit_when_idle=True)
            r = drain(argv, f"dbztune-relay-{mode}-{rep}", n, cfg["drain_cap"] * 4, topic=topic)
            drop_bench_slots()
            log(f"  relay {mode}: {r.get('rate_stream', 0):.0f} ev/s stream, {r.get('rate_wall', 0):.0f} wall")
            relay_runs[mode].append(r)
    for i, (name, _) in enumerate(steps):
        out["steps"].append({"name": name, "settings": dbz_step_props(i), "runs": runs[name]})
    out["relay"] = relay_runs
    return out


def tuning(cfg, wal_ok):
    """Drain rate and latency at a steady rate for --batch-size and linger.ms / batch.size choices.
    Repetitions go round all variants in turn, so slow spells of this shared host spread over them."""
    out = []
    variants = [("batch-size", str(b), ["--batch-size", str(b)]) for b in cfg["tune_batch"]]
    variants += [("linger.ms", str(l), ["-X", f"linger.ms={l}"]) for l in cfg["tune_linger"]]
    variants += [("batch.size", str(b), ["-X", f"batch.size={b}"]) for b in cfg["tune_bsize"]]
    rows = {}
    for rep in range(cfg.get("tune_reps", 1)):
        for mode in cfg["tune_modes"]:
            if mode == "wal" and not wal_ok:
                continue
            for knob, value, extra in variants:
                reset_tables()
                slot = create_slot("bench_tune") if mode == "wal" else None
                fill(cfg["tune_backlog"], 200)
                topic = new_topic("tune")
                d = drain(relay_argv(mode, topic, slot=slot, extra=extra, exit_when_idle=True),
                          f"tune-{mode}-{knob}-{value}-{rep}", cfg["tune_backlog"], cfg["drain_cap"], topic=topic)
                drop_bench_slots()
                s_ = steady_load(relay_daemon(mode, extra=extra), f"tune-{mode}-{knob}-{value}-{rep}",
                                 [cfg["tune_rate"]], cfg["steady_s"], cfg["grace_s"])
                row = rows.setdefault((mode, knob, value), {"mode": mode, "knob": knob, "value": value, "runs": []})
                row["runs"].append({"drain": d, "steady": s_[0] if s_ else {}})
                log(f"  tune {mode} {knob}={value} run {rep + 1}: {d.get('rate_wall', 0):.0f} ev/s, "
                    f"p99 {fmt(s_[0].get('p99_ms') if s_ else None)} ms")
    for row in rows.values():
        runs = row["runs"]
        row["drain"] = {k: median_of([r["drain"] for r in runs], k) for k in ("rate_wall", "cpu_per_100k", "rss_mb")}
        row["steady"] = {k: median_of([r["steady"] for r in runs], k)
                         for k in ("p50_ms", "p99_ms", "p999_ms", "rss_mb", "cpu_s")}
        row["drain_runs"] = [r["drain"].get("rate_wall") for r in runs]
        row["p99_runs"] = [r["steady"].get("p99_ms") for r in runs]
        out.append(row)
    return out


# ---- report ----------------------------------------------------------------------------------------

def fmt(v, digits=1, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float) and abs(v) >= 1000:
        return f"{v:,.0f}{unit}"
    return f"{v:.{digits}f}{unit}"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


def environment(relay_info):
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:
            return "?"
    cpu = cmd(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{os.cpu_count()} CPUs ({cpu}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
                f"{platform.system()} {platform.release()}",
        "loadavg_before": open("/proc/loadavg").read().split()[:3],
        "postgres": sql("SHOW server_version", fetch=True)[0][0],
        "librdkafka": cmd(["sh", "-c", "dpkg-query -W -f='${Version}' librdkafka1"]),
        "kafka": os.environ.get("KAFKA_VERSION", "3.9.1"),
        "java": cmd(["sh", "-c", "java -version 2>&1 | head -1"]),
        "relay": relay_info,
    }


def main():
    global T, RAW
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one run of each, smaller sizes (~3 min)")
    ap.add_argument("--relay", required=True, help="outbox-relay binary to measure")
    ap.add_argument("--relay-info", default="", help="how the binary was built (for the report)")
    ap.add_argument("--build", required=True, help="build dir holding bench/bench_*")
    ap.add_argument("--only", default="", help="comma-separated subset: writer,throughput,memory,latency,"
                    "latency-runs,exactly-once,new-topic,idle,degrade,snapshot,dbz-tune,dbz,tune (default: all but "
                    "latency-runs and exactly-once)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep-services", action="store_true", help="leave the bench PostgreSQL/Kafka running")
    ap.add_argument("--tag", default="", help="suffix for the results files (<date>[-quick][-TAG])")
    ap.add_argument("--tune-reps", type=int, default=0, help="repetitions of each tuning variant")
    ap.add_argument("--relay-flag", action="append", default=[],
                    help="extra flag for every relay run, e.g. --relay-flag=--exactly-once (repeatable)")
    args = ap.parse_args()
    profile = "quick" if args.quick else "full"
    cfg = PROFILES[profile]
    only = set(filter(None, args.only.split(","))) or {"writer", "throughput", "memory", "new-topic", "latency",
                                                        "idle", "degrade", "snapshot", "dbz-tune", "dbz",
                                                        "tune"}
    T = Tools(args.build, args.relay)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    stem = stamp + ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
    if args.tune_reps:
        cfg = dict(cfg, tune_reps=args.tune_reps)
    RAW = os.path.join(RUN_DIR, "raw-" + stem)
    shutil.rmtree(RAW, ignore_errors=True)
    os.makedirs(RAW)
    t_start = time.monotonic()

    start_services()
    if not args.keep_services:
        atexit.register(stop_services)
    prepare_db()
    results = {"profile": profile, "config": cfg, "env": environment(args.relay_info), "sections": sorted(only)}

    help_text = subprocess.run([T.relay, "--help"], capture_output=True, text=True, timeout=30).stdout
    if "--http-addr" in help_text:
        RELAY_EXTRA.extend(["--http-addr", f"127.0.0.1:{int(KAFKA_PORT) + 95}"])
    RELAY_EXTRA.extend(args.relay_flag)
    results["relay_flags"] = args.relay_flag
    wal_err = check_wal()
    wal_ok = wal_err is None
    results["wal_error"] = wal_err
    log(f"WAL mode: {'available' if wal_ok else wal_err}")

    def section(name, fn):
        if name not in only:
            return
        log(f"== {name}")
        t = time.monotonic()
        try:
            results[name] = fn()
        except Exception as e:
            log(f"{name} failed: {e}")
            results[name] = {"error": str(e)}
        results.setdefault("timings", {})[name] = round(time.monotonic() - t, 1)
        results.setdefault("loadavg_after", {})[name] = open("/proc/loadavg").read().split()[0]
        save(results, args.out, stem)   # partial results survive an interrupted run

    section("writer", lambda: writer_ceiling(cfg))
    section("throughput", lambda: {str(p): [throughput(cfg, wal_ok, i, p) for i in range(cfg["reps"])]
                                   for p in cfg["payloads"]})
    section("memory", lambda: memory(cfg, wal_ok))
    section("new-topic", lambda: new_topic_start(cfg))

    def latency():
        out = {}
        for mode in (["poll", "wal"] if wal_ok else ["poll"]):
            runs = []
            for i in range(cfg["reps"]):
                log(f"  {mode} steady load, run {i + 1}")
                # the rising rates past the latency points run once, in the first repetition
                rates = cfg["lat_rates"] + (cfg["sweep_rates"] if i == 0 else [])
                runs.append(steady_load(relay_daemon(mode), f"lat-{mode}", rates, cfg["steady_s"], cfg["grace_s"]))
            out[mode] = runs
        return out
    section("latency", latency)
    section("latency-runs", lambda: latency_runs(cfg, wal_ok))
    section("exactly-once", lambda: eos_pairs(cfg, wal_ok))
    section("idle", lambda: {m: [idle_to_first(cfg, m) for _ in range(cfg["reps"])]
                             for m in (["poll", "wal"] if wal_ok else ["poll"])})
    section("degrade", lambda: [degradation(cfg, i) for i in range(cfg["reps"])])
    section("snapshot", lambda: snapshot_age(cfg))
    section("dbz-tune", lambda: dbz_tuning(cfg, wal_ok))
    section("dbz", lambda: [dbz_compare(cfg, wal_ok, i) for i in range(cfg["reps"])])
    section("tune", lambda: tuning(cfg, wal_ok))
    results["total_s"] = round(time.monotonic() - t_start, 1)
    save(results, args.out, stem)
    import report
    with open(os.path.join(args.out, stem + ".json")) as f:
        report.write(json.load(f), args.out, stem)   # the same view a later re-render gets
    log(f"done in {results['total_s']:.0f} s: {os.path.join(args.out, stem)}.md")


def save(results, out, stem):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, stem + ".json"), "w") as f:
        json.dump(results, f, indent=1, default=str)


def scripts_env():
    return dict(os.environ, OUTBOX_RELAY_RUN=RUN_DIR, PG_PORT=PG_PORT, KAFKA_BASE_PORT=KAFKA_PORT)


def start_services():
    log(f"starting the bench's own PostgreSQL (:{PG_PORT}) and Kafka (:{KAFKA_PORT}) under {RUN_DIR}")
    subprocess.run([os.path.join(ROOT, "scripts", "pg.sh"), "start"], env=scripts_env(), check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    # pg_stat_activity keeps 1 kB of each query by default: too short for the relay's claim statement,
    # which the claim ceiling replays. This is the bench's own server, so it may restart.
    if int(sql("SHOW track_activity_query_size", url=ADMIN_URL, fetch=True)[0][0].rstrip("kB")) < 16:
        sql("ALTER SYSTEM SET track_activity_query_size = 16384", url=ADMIN_URL)
        subprocess.run([os.path.join(ROOT, "scripts", "pg.sh"), "restart"], env=scripts_env(), check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    # a fresh broker each run: topics from earlier runs would only slow metadata down
    subprocess.run([os.path.join(ROOT, "scripts", "kafka.sh"), "destroy"], env=scripts_env(), check=False,
                   stdout=subprocess.DEVNULL, timeout=300)
    subprocess.run([os.path.join(ROOT, "scripts", "kafka.sh"), "start", "1"], env=scripts_env(), check=True,
                   stdout=subprocess.DEVNULL, timeout=300)


def stop_services():
    _cleanup()
    log("stopping the bench's PostgreSQL and Kafka")
    for s in ("kafka.sh", "pg.sh"):
        subprocess.run([os.path.join(ROOT, "scripts", s), "stop"], env=scripts_env(), check=False,
                       stdout=subprocess.DEVNULL, timeout=300)


def prepare_db():
    """A fresh `bench` database: the relay's schema (migrate), an orders table, a Debezium-style outbox
    table, and the publications the relay and Debezium read."""
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s", (DB,))
        cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB}")
    conn.close()
    r = subprocess.run([T.relay, "migrate", "--db-url", URL], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"migrate failed: {r.stderr.strip()}")
    sql("CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric(12,2) NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now())")
    sql("CREATE TABLE dbz_outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, "
        "aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb)")
    sql(f"CREATE PUBLICATION {PUB} FOR TABLE outbox WITH (publish = 'insert', publish_via_partition_root = true)")
    sql(f"CREATE PUBLICATION {DBZ_RELAY_PUB} FOR TABLE dbz_outbox WITH (publish = 'insert')")
    sql(f"CREATE PUBLICATION {DBZ_PUB} FOR TABLE dbz_outbox")


if __name__ == "__main__":
    main()
