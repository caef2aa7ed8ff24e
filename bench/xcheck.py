"""Independent cross-check of the rig's drain and latency figures (run through bench/xcheck).

Nothing here shares code with the relay or the rig's C++ tools: events are written with psycopg2 and
read back with kcat, reading committed records only (librdkafka's default), so exactly-once figures
are to visibility for a read_committed consumer.

- drain: N events of ~200 B are inserted first; the relay starts with --exit-when-idle and kcat counts
  records; events/s = N / (relay start -> the N-th record printed by kcat).
- latency: one psycopg2 session commits --per-txn events per transaction at --rate events/s for
  --seconds (open loop: each commit is due at start + i / rate); latency = the moment kcat printed the event's key minus
  the moment its COMMIT returned, both on this process's monotonic clock.
Each is repeated --runs times; every run is printed, then the worst.
"""

import argparse
import os
import subprocess
import sys
import threading
import time

import psycopg2

PAD = "x" * 150  # with the JSON around it, a payload of about 200 B


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


class Reader:
    """kcat reading a topic from its beginning; the monotonic time each key was first printed."""

    def __init__(self, brokers, topic):
        self.seen = {}
        self.count = 0
        self.last = 0  # when the latest record was printed
        self.cv = threading.Condition()
        self.proc = subprocess.Popen(
            ["kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-u", "-q", "-f", "%k\n",
             "-X", "isolation.level=read_committed", "-X", "fetch.wait.max.ms=5"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for line in self.proc.stdout:
            now = time.monotonic_ns()
            key = line.rstrip(b"\n").decode()
            with self.cv:
                self.seen.setdefault(key, now)
                self.count += 1
                self.last = now
                self.cv.notify_all()

    def wait_count(self, n, timeout_s):
        deadline = time.monotonic() + timeout_s
        with self.cv:
            while self.count < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(left)
        return True

    def wait_keys(self, keys, timeout_s):
        deadline = time.monotonic() + timeout_s
        with self.cv:
            while not all(k in self.seen for k in keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(left)
        return True

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def fresh_db(admin_url, name, relay):
    conn = psycopg2.connect(admin_url + "postgres")
    conn.autocommit = True
    with conn.cursor() as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    conn.close()
    url = admin_url + name
    subprocess.run([relay, "migrate", "--db-url", url], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return url


def create_topic(brokers, topic):
    """The broker creates it (auto-create) on this first record; kcat then reads it from the start."""
    subprocess.run(["kcat", "-b", brokers, "-P", "-t", topic, "-k", "warmup"], input=b"{}", check=True,
                   stderr=subprocess.DEVNULL, timeout=60)


def relay_log(args, name):
    os.makedirs(args.logs, exist_ok=True)
    return open(os.path.join(args.logs, name + ".log"), "ab")


def relay_argv(args, url, topic, mode, slot, exit_when_idle):
    argv = [args.relay, "--db-url", url, "--kafka-brokers", args.brokers, "--topic-template", topic,
            "--http-addr", "off", "--log-level", args.log_level]
    if mode == "wal":
        argv += ["--mode", "wal", "--slot", slot]
    if args.exactly_once:
        argv += ["--exactly-once"]
    if exit_when_idle:
        argv.append("--exit-when-idle")
    return argv


def drain(args, mode, run):
    name = f"xc_drain_{mode}_{run}"
    url = fresh_db(args.db, name, args.relay)
    topic = f"xcheck.{name}.{os.getpid()}"
    if mode == "wal":  # the slot exists before the rows are written, so the relay streams them
        with relay_log(args, name) as log:
            subprocess.run(relay_argv(args, url, topic, mode, name, True), check=True, timeout=120, stderr=log)
    conn = psycopg2.connect(url)
    with conn.cursor() as c:
        c.execute("INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) "
                  "SELECT 'order', 'a' || (g %% 1000), 'created', jsonb_build_object('n', g, 'pad', %s) "
                  "FROM generate_series(1, %s) g", (PAD, args.drain))
    conn.commit()
    conn.close()
    create_topic(args.brokers, topic)
    reader = Reader(args.brokers, topic)
    try:
        if not reader.wait_count(1, 30):
            return {"error": "kcat did not read the topic"}
        t0 = time.monotonic_ns()
        with relay_log(args, name) as log:
            relay = subprocess.Popen(relay_argv(args, url, topic, mode, name, True), stderr=log)
        ok = reader.wait_count(args.drain + 1, 600)
        t1 = reader.last
        relay.wait(120)
        if not ok:
            return {"error": f"kcat read {reader.count - 1} of {args.drain} events"}
        return {"events_per_s": args.drain / ((t1 - t0) / 1e9), "records": reader.count - 1}
    finally:
        reader.stop()


def latency(args, mode, run):
    name = f"xc_lat_{mode}_{run}"
    url = fresh_db(args.db, name, args.relay)
    topic = f"xcheck.{name}.{os.getpid()}"
    create_topic(args.brokers, topic)
    reader = Reader(args.brokers, topic)
    with relay_log(args, name) as log:
        relay = subprocess.Popen(relay_argv(args, url, topic, mode, name, False), stderr=log)
    try:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        cur = conn.cursor()
        if mode == "wal":  # a row committed before the relay made its slot would never be streamed
            deadline = time.monotonic() + 60
            while True:
                cur.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (name,))
                if cur.fetchone():
                    break
                if time.monotonic() > deadline:
                    return {"error": "the relay made no slot within 60 s"}
                time.sleep(0.05)
        conn.autocommit = False
        # One event through first: the relay is connected, leading and its producer warm.
        cur.execute("INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) "
                    "VALUES ('order', 'first', 'created', '{}')")
        conn.commit()
        if not reader.wait_keys(["first"], 60):
            return {"error": "the first event did not arrive within 60 s"}
        committed = {}
        k = args.per_txn
        n = int(args.rate * args.seconds) // k * k
        start = time.monotonic()
        for i in range(0, n, k):
            due = start + i / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            keys = [f"e{j}" for j in range(i, i + k)]
            for j, key in zip(range(i, i + k), keys):
                cur.execute("INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) "
                            "VALUES ('order', %s, 'created', jsonb_build_object('n', %s, 'pad', %s))",
                            (key, j, PAD))
            conn.commit()
            t = time.monotonic_ns()
            for key in keys:
                committed[key] = t
        behind = time.monotonic() - (start + n / args.rate)
        conn.close()
        if not reader.wait_keys(list(committed), 60):
            missing = sum(1 for k in committed if k not in reader.seen)
            return {"error": f"{missing} of {n} events not read within 60 s"}
        lat = [(reader.seen[k] - t) / 1e6 for k, t in committed.items()]
        return {"p50": pct(lat, 50), "p99": pct(lat, 99), "p999": pct(lat, 99.9), "max": max(lat),
                "writer_late_s": behind, "events": n}
    finally:
        relay.terminate()
        relay.wait(60)
        reader.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relay", required=True)
    ap.add_argument("--db", required=True, help="postgresql://user:pass@host:port/ (database appended)")
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--exactly-once", action="store_true")
    ap.add_argument("--mode", action="append", choices=["poll", "wal"], help="default: both")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--per-txn", type=int, default=5,
                    help="events per transaction in the latency runs (5: the rig's shape at 1,000/s)")
    ap.add_argument("--drain", type=int, default=100_000)
    ap.add_argument("--only", choices=["drain", "latency"], help="default: both")
    ap.add_argument("--log-level", default="warn", help="the relay's --log-level (debug: a line per batch)")
    ap.add_argument("--logs", default=os.path.join(os.environ.get("OUTBOX_RELAY_RUN", "/tmp"), "xcheck-logs"),
                    help="where each relay's log goes (one file per run)")
    args = ap.parse_args()
    modes = args.mode or ["poll", "wal"]
    label = "exactly-once" if args.exactly_once else "at-least-once"
    print(f"# bench/xcheck, {label}: psycopg2 writes, kcat reads (read_committed); "
          f"{args.runs} runs each; relay {args.relay}", flush=True)
    for mode in modes:
        if args.only in (None, "drain"):
            rates = []
            for run in range(args.runs):
                r = drain(args, mode, run)
                if "error" in r:
                    print(f"{mode} drain run {run + 1}: {r['error']}", flush=True)
                    continue
                rates.append(r["events_per_s"])
                print(f"{mode} drain run {run + 1}: {args.drain} x ~200 B, {r['events_per_s']:,.0f} events/s",
                      flush=True)
            if rates:
                print(f"{mode} drain, worst of {len(rates)}: {min(rates):,.0f} events/s "
                      f"(best {max(rates):,.0f})", flush=True)
        if args.only in (None, "latency"):
            worst = None
            p50s = []
            for run in range(args.runs):
                r = latency(args, mode, run)
                if "error" in r:
                    print(f"{mode} latency run {run + 1}: {r['error']}", flush=True)
                    continue
                p50s.append(r["p50"])
                worst = r["p99"] if worst is None else max(worst, r["p99"])
                late = f" (writer {r['writer_late_s']:.1f} s late)" if r["writer_late_s"] > 0.5 else ""
                print(f"{mode} latency run {run + 1} at {args.rate:.0f}/s, {args.per_txn} per commit: p50 {r['p50']:.1f} / p99 "
                      f"{r['p99']:.1f} / p99.9 {r['p999']:.1f} / max {r['max']:.1f} ms{late}", flush=True)
            if p50s:
                print(f"{mode} latency at {args.rate:.0f}/s over {len(p50s)} runs: p50 {min(p50s):.1f}-"
                      f"{max(p50s):.1f} ms, worst p99 {worst:.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
