"""Services, the relay as a black box, network faults, and an independent Kafka client (kcat).

Everything here waits on conditions with deadlines (wait_until); nothing sleeps to synchronise.
The only deliberate delays are fault durations (how long a broker stays down), chosen by the cases.
"""
import json
import os
import random
import re
import shlex
import signal
import subprocess
import threading
import time

import psycopg2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUN = os.environ.get("OUTBOX_RELAY_RUN", "/tmp/outbox-relay-e2e")
PG_PORT = int(os.environ.get("PG_PORT", "54359"))
KAFKA_BASE_PORT = int(os.environ.get("KAFKA_BASE_PORT", "39092"))
KAFKA_NODES = 3
BINARY = os.environ.get("OUTBOX_RELAY_BINARY", os.path.join(ROOT, "build-e2e", "outbox-relay"))
RELAY_USER = os.environ.get("E2E_RELAY_USER", "outbox-e2e")  # the relay runs as this user: nft matches it
LOG_DIR = os.path.join(RUN, "logs")
KAFKA_LIBS = os.path.join(os.environ.get("OUTBOX_RELAY_CACHE", os.path.expanduser("~/.cache/outbox-relay")),
                          "kafka-" + os.environ.get("KAFKA_VERSION", "3.9.1"), "libs")
NFT_TABLE = "outbox_relay_e2e"

SCRIPT_ENV = dict(os.environ, OUTBOX_RELAY_RUN=RUN, PG_PORT=str(PG_PORT), KAFKA_BASE_PORT=str(KAFKA_BASE_PORT))


class E2EError(Exception):
    pass


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def wait_until(cond, timeout, what, interval=0.05):
    """Polls cond() until truthy or the deadline; returns its value or raises E2EError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise E2EError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def sh(cmd, check=True, timeout=300, env=None):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=timeout,
                       env=env or SCRIPT_ENV)
    if check and r.returncode != 0:
        raise E2EError("command failed (%d): %s\n%s%s" % (r.returncode, cmd, r.stdout[-2000:], r.stderr[-2000:]))
    return r


# ---------------------------------------------------------------- services

# While a failover case runs, every client (relays, writers, the verifier) connects through the pair's
# multi-host URL and follows whichever node accepts writes.
PG_MULTI_HOST = [False]


def pg_url(db="postgres"):
    if PG_MULTI_HOST[0]:
        return "postgresql://postgres:postgres@127.0.0.1:%d,127.0.0.1:%d/%s?target_session_attrs=read-write" % (
            PG_PORT, PG_PORT + 1, db)
    return "postgresql://postgres:postgres@127.0.0.1:%d/%s" % (PG_PORT, db)


def pg_node_q(node, sql):
    """One statement on node `node` of the pair (1: PG_PORT, 2: PG_PORT+1), whatever its role."""
    c = psycopg2.connect("postgresql://postgres:postgres@127.0.0.1:%d/postgres" % (PG_PORT + node - 1),
                         connect_timeout=5)
    c.autocommit = True
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        c.close()


def kafka_brokers():
    return ",".join("127.0.0.1:%d" % (KAFKA_BASE_PORT + i) for i in range(KAFKA_NODES))


def pg_script(*args):
    return sh([os.path.join(ROOT, "scripts", "pg.sh")] + list(args))


def kafka_script(*args, timeout=300):
    return sh([os.path.join(ROOT, "scripts", "kafka.sh")] + [str(a) for a in args], timeout=timeout)


def kafka_node_alive(node):
    """Whether broker `node`'s process (scripts/kafka.sh's pid file) is running."""
    try:
        with open(os.path.join(RUN, "kafka", "node%d" % node, "pid")) as f:
            os.kill(int(f.read().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def kafka_admin(main_class, *args):
    cp = os.path.join(KAFKA_LIBS, "*")
    return sh(["java", "-Xmx256m", "-cp", cp, "-Dlog4j.configuration=file:/dev/null", main_class] + list(args),
              timeout=120)


def services_start():
    os.makedirs(LOG_DIR, exist_ok=True)
    pg_script("start")
    try:
        kafka_script("start", KAFKA_NODES, timeout=400)
    except E2EError as e:  # seen once on a loaded machine: start it afresh, once
        log("kafka did not start (%s); node logs:" % str(e).splitlines()[-1])
        for node in range(1, KAFKA_NODES + 1):
            print(sh("tail -5 %s/kafka/node%d/stdout.log %s/kafka/node%d/broker.log" % (RUN, node, RUN, node),
                     check=False).stdout, flush=True)
        sh([os.path.join(ROOT, "scripts", "kafka.sh"), "destroy"], check=False, timeout=400)
        kafka_script("start", KAFKA_NODES, timeout=400)
    # Record timestamps = the broker's append time, so the verifier can time publishing (gaps, recovery,
    # latency) without a clock inside the relay. Dynamic cluster-wide default: no restart needed.
    kafka_admin("kafka.admin.ConfigCommand", "--bootstrap-server", kafka_brokers(), "--entity-type", "brokers",
                "--entity-default", "--alter", "--add-config", "log.message.timestamp.type=LogAppendTime")


def services_stop(destroy=True):
    for node in range(1, KAFKA_NODES + 1):  # a paused node would never stop
        sh([os.path.join(ROOT, "scripts", "kafka.sh"), "resume-node", str(node)], check=False)
    sh([os.path.join(ROOT, "scripts", "kafka.sh"), "destroy" if destroy else "stop"], check=False, timeout=400)
    sh([os.path.join(ROOT, "scripts", "pg.sh"), "destroy" if destroy else "stop"], check=False)


def kafka_cluster_ready():
    r = sh(["kcat", "-b", kafka_brokers(), "-L", "-m", "3"], check=False, timeout=30)
    return r.returncode == 0 and r.stdout.count(" at 127.0.0.1") >= KAFKA_NODES


def topic_ready(topic, insync=3):
    """Every partition of the topic has a leader and `insync` in-sync replicas."""
    md = topic_metadata(topic)
    if not md or not md.get("partitions"):
        return False
    return all(p.get("leader", -1) > 0 and len(p.get("isrs", [])) >= insync for p in md["partitions"])


def topic_metadata(topic):
    r = sh(["kcat", "-b", kafka_brokers(), "-L", "-J", "-t", topic, "-m", "5"], check=False, timeout=30)
    if r.returncode != 0:
        return None
    try:
        md = json.loads(r.stdout)
    except ValueError:
        return None
    for t in md.get("topics", []):
        if t.get("topic") == topic and not t.get("error"):
            return t
    return None


def partition_leaders(topic):
    md = topic_metadata(topic) or {}
    return sorted({p["leader"] for p in md.get("partitions", []) if p.get("leader", -1) > 0})


def wait_cluster_healthy(topics=(), timeout=180):
    wait_until(kafka_cluster_ready, timeout, "all %d kafka brokers" % KAFKA_NODES, interval=0.5)
    for t in topics:
        wait_until(lambda: topic_ready(t), timeout, "topic %s fully in sync" % t, interval=0.5)


def create_topic(topic, insync=3):
    """Auto-creates `topic` with one marker record (ignored by the verifier) and waits until it is in sync."""
    p = subprocess.run(["kcat", "-b", kafka_brokers(), "-P", "-t", topic, "-k", "__e2e", "-H", "e2e-marker=1"],
                       input="marker", text=True, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise E2EError("could not create topic %s: %s" % (topic, p.stderr))
    wait_until(lambda: topic_ready(topic, insync), 60, "topic %s" % topic, interval=0.3)


# ---------------------------------------------------------------- database

def connect(db, autocommit=True, app="e2e"):
    c = psycopg2.connect(pg_url(db), application_name=app, connect_timeout=10)
    c.autocommit = autocommit
    return c


def q(db, sql, args=None):
    """One statement on its own autocommit connection; returns rows (or [] for no result)."""
    c = connect(db)
    try:
        with c.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        c.close()


BUSINESS_SCHEMA = """
CREATE TABLE aggregates (id text PRIMARY KEY, version int NOT NULL DEFAULT 0);
CREATE TABLE orders (
  id bigserial PRIMARY KEY, aggregate_id text NOT NULL, version int NOT NULL, outbox_id bigint UNIQUE,
  expect text NOT NULL DEFAULT 'publish', committed_at double precision);
"""


def fresh_database(name):
    drop_database(name)
    q("postgres", "CREATE DATABASE %s" % name)
    r = subprocess.run([BINARY, "migrate", "--db-url", pg_url(name)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise E2EError("migrate failed: " + r.stdout + r.stderr)
    q(name, BUSINESS_SCHEMA)
    return name


def drop_database(name):
    # A slot pins the database (DROP DATABASE refuses it): drop the case's slots first.
    for _ in range(50):
        try:
            q("postgres", "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                          "WHERE database = %s AND active_pid IS NOT NULL", (name,))
            q("postgres", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                          "WHERE database = %s", (name,))
            q("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
            return
        except psycopg2.Error:
            time.sleep(0.1)  # a slot still active for a moment after its walsender was ended
    q("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


# ---------------------------------------------------------------- network faults (nft, loopback only)

class Net:
    """Blackholes the relay's own packets (it runs as RELAY_USER) to Kafka or PostgreSQL ports on loopback:
    established connections hang, as in a real partition; everything else on the machine is untouched."""

    def __init__(self):
        self.rules = {}

    def _ensure_table(self):
        sh("nft list table inet %s >/dev/null 2>&1 || (nft add table inet %s && "
           "nft add chain inet %s out '{ type filter hook output priority 0; policy accept; }')"
           % (NFT_TABLE, NFT_TABLE, NFT_TABLE))

    def cut(self, what):
        self._ensure_table()
        ports = ("%d-%d" % (KAFKA_BASE_PORT, KAFKA_BASE_PORT + KAFKA_NODES - 1)) if what == "kafka" else str(PG_PORT)
        sh("nft add rule inet %s out meta skuid %s ip daddr 127.0.0.0/8 tcp dport %s counter drop comment \"%s\""
           % (NFT_TABLE, RELAY_USER, ports, what))
        self.rules[what] = ports

    def restore(self, what):
        out = sh("nft -a list chain inet %s out" % NFT_TABLE, check=False).stdout
        for line in out.splitlines():
            m = re.search(r'comment "%s" # handle (\d+)' % what, line)
            if m:
                sh("nft delete rule inet %s out handle %s" % (NFT_TABLE, m.group(1)))
        self.rules.pop(what, None)

    @staticmethod
    def clear():
        sh("nft delete table inet %s" % NFT_TABLE, check=False)


# ---------------------------------------------------------------- the relay

def _allow_core():
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


_relay_seq = [0]
_live_relays = set()


class Relay:
    """outbox-relay as a child process (as RELAY_USER), stdout+stderr to a log file."""

    def __init__(self, name, db, extra, mode="poll", user=None):
        _relay_seq[0] += 1
        self.name = name
        self.log_path = os.path.join(LOG_DIR, "%s-%d.log" % (name, _relay_seq[0]))
        self.args = [BINARY, "--db-url", pg_url(db), "--kafka-brokers", kafka_brokers(), "--mode", mode,
                     "--log-level", "info", "--http-addr", "off"] + extra
        logf = open(self.log_path, "w")
        kw = {}
        if RELAY_USER and os.geteuid() == 0:
            kw["user"] = user or RELAY_USER
        os.chmod(LOG_DIR, 0o1777)  # the relay's working directory: a crash leaves its core file here
        self.proc = subprocess.Popen(self.args, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=LOG_DIR, preexec_fn=_allow_core, **kw)
        logf.close()
        self.started = time.time()
        self.stopped_at = None
        _live_relays.add(self)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def kill(self):
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        self.proc.wait(30)
        _live_relays.discard(self)

    def stop(self, timeout=40):
        """SIGTERM (drain), then SIGKILL past the deadline. Returns the exit code."""
        if self.running():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.dump_stacks()
                self.kill()
        _live_relays.discard(self)
        return self.proc.returncode

    def dump_stacks(self):
        """Every thread's backtrace (gdb) into <log>.stacks: why a relay would not stop."""
        self.stacks_path = self.log_path + ".stacks"
        try:
            r = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "thread apply all bt"],
                               capture_output=True, text=True, timeout=60)
            with open(self.stacks_path, "w") as f:
                f.write(r.stdout + r.stderr)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def has(self, pattern, since=0):
        """First match of regex `pattern` in the log at or after byte offset `since`."""
        return re.search(pattern, self.output()[since:])

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def is_leading(self, since=0):
        return bool(self.has(r"(leading poll source|streaming slot)", since))


def kill_all_relays():
    for r in list(_live_relays):
        try:
            r.kill()
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


# ---------------------------------------------------------------- consuming (kcat, independent client)

def _isolation_args(isolation):
    """kcat -X isolation.level=... when given; None keeps kcat's default (librdkafka's: read_committed)."""
    return ["-X", "isolation.level=" + isolation] if isolation else []


def end_offsets(topic, isolation=None):
    """{partition: end offset} of `topic` now (kcat -Q with timestamp -1 = the end: the high watermark, or
    for read_committed the last stable offset)."""
    md = topic_metadata(topic)
    if not md:
        return {}
    args = ["kcat", "-b", kafka_brokers(), "-Q"] + _isolation_args(isolation)
    for p in md["partitions"]:
        args += ["-t", "%s:%d:-1" % (topic, p["partition"])]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r".* \[(\d+)\] offset (-?\d+)", line)
        if m:
            out[int(m.group(1))] = int(m.group(2))
    if len(out) != len(md["partitions"]):
        raise E2EError("could not read the end offsets of %s: %s" % (topic, r.stderr[-500:]))
    return out


def consume_all(topic, timeout=180, isolation=None):
    """Every record of `topic` from the beginning up to its end offsets as of the call, as dicts from
    kcat -J. (kcat -e alone may never see the end while a relay keeps producing.) `isolation`:
    read_committed (aborted transactions' records are skipped) or read_uncommitted; None: kcat's default."""
    try:
        ends = end_offsets(topic, isolation)
    except (E2EError, subprocess.TimeoutExpired):
        return []
    out = []
    for part, end in sorted(ends.items()):
        if end <= 0:
            continue
        r = subprocess.run(["kcat", "-b", kafka_brokers(), "-C", "-t", topic, "-p", str(part), "-o", "beginning",
                            "-c", str(end), "-e", "-q", "-J"] + _isolation_args(isolation),
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        for line in r.stdout.splitlines():
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("offset", 0) >= end:
                continue
            h = rec.get("headers") or []
            rec["hdr"] = {h[i]: h[i + 1] for i in range(0, len(h) - 1, 2)}
            if "e2e-marker" in rec["hdr"]:
                continue
            out.append(rec)
    return out


def shell_join(args):
    return " ".join(shlex.quote(a) for a in args)


def jitter(lo, hi, rng=random):
    return lo + (hi - lo) * rng.random()


class Sampler(threading.Thread):
    """Calls fn() every `interval` seconds on its own thread until stopped; keeps (time, value) samples."""

    def __init__(self, fn, interval=0.5):
        super().__init__(daemon=True)
        self.fn, self.interval = fn, interval
        self.samples = []
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.samples.append((time.time(), self.fn()))
            except Exception:  # noqa: BLE001 - a sample lost during a fault is fine
                pass
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join(10)
