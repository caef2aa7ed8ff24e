"""The fault cases. Each runs the real relay against the e2e PostgreSQL and three-broker Kafka under a load of
concurrent writers, injects one kind of fault, then drains, stops the relays and verifies every committed
event exactly (verify.py). A case returns a Result row for the table."""
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import threading
import time

import psycopg2

import harness as H
from harness import E2EError, log, wait_until
from load import Load, ground_truth
from verify import verify

# Server-side bound on a dead, paused or partitioned relay's session: the default --session-timeout (poll:
# the session timeouts and TCP keepalives; WAL: the replication connection's wal_sender_timeout).
LEASE = 60.0
# The error lines with which --exactly-once ends a relay by design, for systemd to restart it: fenced by a
# newer producer of its transactional id (the standby that took over), or a commit whose outcome stayed
# unknown past the transaction timeout (a relay paused that long); the restart learns it from the checkpoint.
# Or a producer librdkafka declared dead that was not fenced (its abort of a transaction whose partitions
# were being added when the cluster went away fails for good): the restart fences and aborts what it left.
# Each is a note in the case's output, counted; the suite prints them.
EOS_EXIT = re.compile(r"(fenced|same transactional id took over|outcome of a kafka transaction stayed unknown|"
                      r"a restart fences the transactional id)",
                      re.I)


class Result:
    def __init__(self, case, mode):
        self.case, self.mode = case, mode
        self.verdict = None
        self.failures = []  # failed checks (promise violations or case assertions)
        self.notes = []
        self.recovery = []  # seconds from heal to publishing resumed
        self.stalls = []  # longest publishing gap around each fault
        self.takeovers = []  # HA: seconds from leader loss to a new leader
        self.faults = 0
        self.seconds = 0.0
        self.extra = {}

    @property
    def passed(self):
        return not self.failures and self.verdict is not None and self.verdict.ok()

    def fail(self, msg):
        self.failures.append(msg)
        log("  CHECK FAILED: " + msg)

    def note(self, msg):
        self.notes.append(msg)
        log("  note: " + msg)


class Case:
    """Shared setup: a fresh database, a unique topic, relay slots supervised like systemd would (an
    unexpected exit is recorded as a failure and the relay restarted), and the drain-and-verify finish."""

    def __init__(self, ctx, name, mode, label=None, eos=False):
        self.ctx = ctx
        self.name, self.mode = name, mode
        self.label = label or name
        tag = ("%s_%s" % (self.label, mode)).replace("-", "_")
        self.db = "e2e_" + tag
        ctx.case_seq += 1  # soak rounds repeat a case: every instance gets its own topic
        self.topic = "e2e.%s.%s.%s.%d" % (self.label, mode, ctx.run_id, ctx.case_seq)
        self.slot = "e2e_" + tag
        # --exactly-once: every batch one Kafka transaction with a checkpoint; the verifier reads with
        # read_committed and must find no duplicate at all. The checkpoint topic is the case instance's own
        # (soak rounds reuse the database name and with it the relay's identity, the checkpoint's key).
        self.eos = eos
        self.checkpoint_topic = "e2e.checkpoints.%s.%d" % (ctx.run_id, ctx.case_seq)
        self.result = Result(self.label, mode)
        self.relays = {}  # slot name -> Relay
        self.started = []  # every relay of the case, in start order (their logs are shown on a failure)
        self.intended = set()  # relays whose exit we caused
        self.rng = random.Random(ctx.seed + hash(tag) % 1000)
        self.load = None
        self.t_start = time.time()
        self._watch_stop = threading.Event()
        self._watch = None
        self.extra_relay_args = []
        self.faults = []  # (kind, start, end) of each fault injected (Case.fault)

    # ---------------------------------------------------------- setup
    def setup(self, create_topic=True):
        H.fresh_database(self.db)
        if create_topic:
            H.create_topic(self.topic)
        if self.eos:
            # Created here like the case's topic: a relay that creates it itself cannot read it back at
            # once (unknown topic until the metadata spreads), gives up the lead for a backoff, and the
            # standby started meanwhile leads instead, which the takeover cases would misread.
            H.create_topic(self.checkpoint_topic)
            H.kafka_admin("kafka.admin.ConfigCommand", "--bootstrap-server", H.kafka_brokers(), "--entity-type",
                          "topics", "--entity-name", self.checkpoint_topic, "--alter", "--add-config",
                          "cleanup.policy=compact")
        self._watch = threading.Thread(target=self._watcher, daemon=True)
        self._watch.start()

    def relay_args(self, extra=()):
        a = ["--topic-template", self.topic, "--drain-timeout", "5s"] + self.extra_relay_args
        if self.eos:
            a += ["--exactly-once", "--checkpoint-topic", self.checkpoint_topic]
        if self.mode == "wal":
            a += ["--slot", self.slot, "--heartbeat-interval", "1s"]
        return a + list(extra)

    def start_relay(self, slot="r1", extra=(), wait_leading=True, timeout=60, user=None):
        r = H.Relay("%s-%s-%s" % (self.label, self.mode, slot), self.db, self.relay_args(extra), mode=self.mode,
                    user=user)
        self.users = getattr(self, "users", {})
        self.users[slot] = user
        self.relays[slot] = r
        self.started.append(r)
        if wait_leading:
            wait_until(lambda: r.is_leading() or not r.running(), timeout, "relay %s to lead" % slot)
            if not r.running():
                raise E2EError("relay %s exited at start (%s):\n%s" % (slot, r.proc.returncode, r.output()[-3000:]))
        return r

    def kill_relay(self, slot, sig=signal.SIGKILL):
        r = self.relays[slot]
        self.intended.add(r)
        if sig == signal.SIGKILL:
            r.kill()
        else:
            r.signal(sig)

    def _watcher(self):
        while not self._watch_stop.wait(0.2):
            for slot, r in list(self.relays.items()):
                if r in self.intended or r.running():
                    continue
                code = r.proc.returncode
                lines = [ln for ln in r.output().splitlines() if " error " in ln or "fatal" in ln]
                last = lines[-1][-300:] if lines else "(no error line)"
                if self.eos and EOS_EXIT.search(last):
                    # Exactly-once: see EOS_EXIT; systemd restarts it, here the watcher does.
                    self.result.note("relay %s exited %s (exactly-once, by design): %s" % (slot, code, last))
                else:
                    self.result.fail("relay %s exited by itself with code %s: %s" % (slot, code, last))
                self.intended.add(r)
                nr = H.Relay(r.name + "-restarted", self.db, self.relay_args(self._extra_of(slot)), mode=self.mode,
                             user=getattr(self, "users", {}).get(slot))
                self.relays[slot] = nr
                self.started.append(nr)

    def _extra_of(self, slot):
        return getattr(self, "slot_extra", {}).get(slot, ())

    def start_load(self, **kw):
        opts = dict(writers=self.ctx.writers, rate=self.ctx.rate, seed=self.rng.random())
        opts.update(kw)
        self.load = Load(self.db, **opts).start()
        return self.load

    def consume(self, topic=None):
        """Every record of the case's topic (or `topic`) as kcat reads it: exactly-once cases say
        isolation.level=read_committed explicitly (kcat's default anyway), the others keep kcat's defaults."""
        return H.consume_all(topic or self.topic, isolation="read_committed" if self.eos else None)

    def wait_published(self, n, timeout=60):
        """Waits until at least n records are in the topic (progress under load, before a fault)."""
        wait_until(lambda: len(self.consume()) >= n, timeout, "%d records in %s" % (n, self.topic),
                   interval=0.5)

    # ---------------------------------------------------------- finish
    def finish(self, drain_timeout=180, expect_exit_zero=True):
        if self.load:
            self.load.stop()
        truth = ground_truth(self.db)
        wanted = sum(1 for t in truth.values() if t[2] in ("publish", "tombstone"))
        log("  load stopped: %d committed events to see (%d rolled back, %d commits in doubt); draining" % (
            wanted, self.load.rolled_back if self.load else 0, self.load.in_doubt if self.load else 0))
        rb = self.load.rolled_back_ids if self.load else set()
        deadline = time.monotonic() + drain_timeout
        v = None
        while True:
            v = verify(truth, self.consume(), rb)
            if v.lost == 0 or time.monotonic() >= deadline:
                break
            time.sleep(1.0)  # polling interval of a condition wait with a deadline
        self._watch_stop.set()
        if self._watch:
            self._watch.join(5)
        for slot, r in list(self.relays.items()):
            if r in self.intended:
                continue
            code = r.stop()
            if expect_exit_zero and code not in (0, None):
                self.result.fail("relay %s exited %s on SIGTERM%s" % (
                    slot, code, " (did not stop within 40s; stacks in %s)" % r.stacks_path
                    if getattr(r, "stacks_path", None) else ""))
        # Final read after every relay is gone: a paused or slow one can no longer add anything.
        v = verify(truth, self.consume(), rb)
        self.result.verdict = v
        self.result.seconds = time.time() - self.t_start
        for kind, t0, t1 in self.faults:
            self.result.stalls.append(v.max_gap(t0, t1 + 30))
            rs = v.resumed_after(t1)
            if rs is not None:
                self.result.recovery.append(rs)
        if not v.ok():
            self.result.fail("promises 1-2: " + v.summary())
        if self.eos and v.duplicates:
            self.result.fail("exactly-once: %d duplicates seen by a read_committed consumer" % v.duplicates)
        # Duplicates only as a re-send of the tail that was unconfirmed when a fault struck: the first copy
        # of every duplicate was published shortly before (or during) some fault.
        odd = [t for t in v.dup_first_ts if not any(t0 - 70 <= t <= t1 + 10 for _, t0, t1 in self.faults)]
        if odd:
            self.result.fail("promise 2: %d duplicates not explained by a fault (first copies at %s)" % (
                len(odd), ", ".join(time.strftime("%H:%M:%S", time.localtime(t)) for t in odd[:5])))
        return v

    def start_under_load(self):
        """The relay (slot r1) leading, the writers running, and the first 50 records published."""
        self.start_relay()
        self.start_load()
        self.wait_published(50)

    @contextlib.contextmanager
    def fault(self, kind):
        """Records the block as a fault of `kind`, from its start to its end (the verifier puts duplicates and
        stalls around it down to it); yields the start time."""
        t0 = time.time()
        yield t0
        self.faults.append((kind, t0, time.time()))
        self.result.faults += 1

    def cleanup(self):
        self._watch_stop.set()
        if self.load:
            self.load.stop()
        for r in self.relays.values():
            if r.running():
                r.kill()
        try:
            H.drop_database(self.db)
        except Exception as e:  # noqa: BLE001
            log("  could not drop %s: %s" % (self.db, e))


def run_case(ctx, fn, name, mode, **kw):
    c = Case(ctx, name, mode, label=kw.pop("label", None), eos=kw.pop("eos", False))
    log("=== %s (%s) ===" % (c.label, mode))
    try:
        c.setup(create_topic=kw.pop("create_topic", True))
        fn(c, **kw)
    except Exception as e:  # noqa: BLE001 - a broken case is a failed case, the suite goes on
        import traceback
        c.result.fail("case error: %s" % e)
        traceback.print_exc()
    finally:
        c.cleanup()
    r = c.result
    log("  -> %s %s" % ("PASS" if r.passed else "FAIL", r.verdict.summary() if r.verdict else ""))
    if not r.passed:
        show_relay_logs(c)
    try:  # one JSON line per case, so a partial soak still has its numbers
        v = r.verdict
        with open(os.path.join(H.RUN, "results.jsonl"), "a") as f:
            f.write(json.dumps({"run": ctx.run_id, "case": r.case, "mode": r.mode, "passed": r.passed,
                                "faults": r.faults, "events": v.expected if v else 0, "lost": v.lost if v else 0,
                                "phantom": v.phantom if v else 0, "duplicates": v.duplicates if v else 0,
                                "reordered": v.reordered if v else 0, "mismatched": v.mismatched if v else 0,
                                "resume": r.recovery, "stall": r.stalls, "takeover": r.takeovers,
                                "failures": r.failures, "notes": r.notes, "seconds": r.seconds}) + "\n")
    except OSError:
        pass
    return r


def show_relay_logs(c, most=25):
    """A failed case's relay warnings and errors, on the suite's output (CI keeps no log files)."""
    for relay in c.started:
        try:
            lines = [ln for ln in relay.output().splitlines() if " warning " in ln or " error " in ln
                     or " critical " in ln]
        except OSError:
            continue
        log("  relay %s (%s): %d warnings/errors%s" % (relay.name, relay.log_path, len(lines),
                                                       ", the last %d:" % most if len(lines) > most else ""))
        for ln in lines[-most:]:
            print("    " + ln[:400])


def fault_pause(c, lo, hi):
    """How long to let the load run before the next fault: fault timing, not synchronisation."""
    time.sleep(H.jitter(lo, hi, c.rng))


# ================================================================== cases

def case_sigkill(c, kills=4):
    c.start_under_load()
    for k in range(kills):
        fault_pause(c, 0.3, 2.5)
        with c.fault("sigkill"):
            c.kill_relay("r1")
            c.start_relay(wait_leading=False)
        if c.rng.random() < 0.7:  # most kills at steady state, some while it is still starting
            wait_until(lambda: c.relays["r1"].is_leading(), 60, "relay to lead after restart")
    fault_pause(c, 1, 2)
    c.finish()


def case_debezium_sigkill(c, kills=4):
    """Debezium's outbox table (uuid id: no order of its own) in poll mode, with the ordering column that
    `outbox-relay migrate --layout debezium` adds (seq) and --order-by seq, under SIGKILLs: per-aggregate
    order must hold (without the column the relay refuses to start; --unordered reorders)."""
    H.q(c.db, "CREATE TABLE dbz_outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype "
              "varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb)")
    H.q(c.db, "ALTER TABLE orders ALTER COLUMN outbox_id TYPE text")
    r = subprocess.run([H.BINARY, "migrate", "--db-url", H.pg_url(c.db), "--layout", "debezium", "--table",
                        "dbz_outbox"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise E2EError("migrate --layout debezium failed: " + r.stdout + r.stderr)
    c.extra_relay_args = ["--layout", "debezium", "--table", "dbz_outbox", "--order-by", "seq",
                          "--poll-interval", "100ms"]
    c.start_relay()
    c.start_load(table="dbz_outbox")
    c.wait_published(50)
    for _ in range(kills):
        fault_pause(c, 0.3, 2.5)
        with c.fault("sigkill"):
            c.kill_relay("r1")
            c.start_relay(wait_leading=False)
        wait_until(lambda: c.relays["r1"].is_leading(), 60, "relay to lead after restart")
    fault_pause(c, 1, 2)
    c.finish()


def case_sigstop_short(c, pause=5.0):
    """Pause the leader for less than the lease, with a standby: no takeover, no split brain."""
    c.start_relay("a")
    c.start_relay("b", wait_leading=False)
    c.start_load()
    c.wait_published(50)
    fault_pause(c, 0.5, 2)
    with c.fault("sigstop"):
        b_off = c.relays["b"].log_size()
        c.relays["a"].signal(signal.SIGSTOP)
        time.sleep(pause)  # the fault: the leader stays paused this long
        took = c.relays["b"].is_leading(b_off)
        c.relays["a"].signal(signal.SIGCONT)
    if took:
        c.result.note("standby took over during a %.0fs pause (shorter than the %.0fs lease)" % (pause, LEASE))
    c.finish()


def _lease_args(c, lease):
    """A shorter lease through --session-timeout (poll: the session timeouts; WAL: wal_sender_timeout)."""
    if lease:
        c.extra_relay_args = ["--session-timeout", "%ds" % lease]
        return float(lease)
    return LEASE


def case_sigstop_lease(c, idle=False, extra_hold=15.0, lease=None):
    """Pause the leader past the lease (with a standby). Busy: at a random point under load. Idle: while it
    waits for NOTIFY with nothing to do, so its session is idle (not in a transaction)."""
    lease = _lease_args(c, lease)
    c.start_relay("a")
    c.start_relay("b", wait_leading=False)
    c.start_load()
    c.wait_published(50)
    if idle:
        c.load.pause(True)
        if c.mode == "poll":
            wait_until(lambda: H.q(c.db, "SELECT count(*) FROM outbox WHERE failed_at IS NULL")[0][0] == 0, 60,
                       "backlog to drain")
        else:
            n = len(ground_truth(c.db))
            c.wait_published(n)
        # idle: its claim has been committed and it waits for a NOTIFY
        wait_until(lambda: H.q(c.db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                     "'outbox-relay' AND state = 'idle in transaction'")[0][0] == 0, 10,
                   "the leader to be idle")
    else:
        fault_pause(c, 0.5, 3)
    a, b = c.relays["a"], c.relays["b"]
    b_off = b.log_size()
    took = None
    with c.fault("sigstop") as t0:
        a.signal(signal.SIGSTOP)
        if idle:
            c.load.pause(False)
        try:
            wait_until(lambda: b.is_leading(b_off), lease + extra_hold, "standby to take over")
            took = time.time() - t0
            c.result.takeovers.append(took)
        except E2EError:
            c.result.fail("promise 4: the standby did not take over within %.0fs of the leader being paused %s" % (
                lease + extra_hold, "while idle" if idle else "under load"))
        a_off = a.log_size()
        a.signal(signal.SIGCONT)
    # After waking, the old leader must notice it lost the lead and publish nothing new: it must not
    # lead again while the standby leads.
    if took is not None:
        wait_until(lambda: a.has(r"(retrying with backoff|another relay leads|in use by another relay)", a_off)
                   or not a.running(), 90, "the woken leader to notice it lost the lead")
        if a.has(r"(leading poll source|streaming slot)", a_off) and b.running():
            c.result.fail("split brain: the woken leader leads again while the standby leads")
        c.result.note("takeover after pause %s: %.1fs" % ("(idle)" if idle else "(busy)", took))
    c.finish()


def case_broker_kill(c, rounds=1, down=8.0):
    c.start_under_load()
    for _ in range(rounds):
        fault_pause(c, 1, 3)
        leaders = H.partition_leaders(c.topic)
        node = c.rng.choice(leaders) if leaders else 1
        with c.fault("broker-kill"):
            H.kafka_script("stop-node", node, "--kill")
            time.sleep(down)  # the fault: the broker stays down this long
            H.kafka_script("start-node", node)
        H.wait_cluster_healthy([c.topic])
    fault_pause(c, 1, 2)
    c.finish()


def _node_data(node):
    return os.path.join(H.RUN, "kafka", "node%d" % node, "data")


def _mount_small_disk(node, headroom_mb):
    """Moves the broker's log dir onto a tmpfs with `headroom_mb` free (broker stopped meanwhile)."""
    data = _node_data(node)
    H.kafka_script("stop-node", node)
    used_mb = int(H.sh(["du", "-sm", data]).stdout.split()[0])
    real = data + ".disk"
    os.rename(data, real)
    os.makedirs(data)
    H.sh(["mount", "-t", "tmpfs", "-o", "size=%dm" % (used_mb + headroom_mb), "tmpfs", data])
    H.sh("cp -a %s/. %s/" % (real, data))
    H.kafka_script("start-node", node)
    return real


def _unmount_small_disk(node, real):
    """Puts the broker's log dir back on the real disk, with what it wrote meanwhile."""
    data = _node_data(node)
    H.kafka_script("stop-node", node)
    H.sh(["rm", "-f", os.path.join(data, "filler")])
    H.sh("rm -rf %s && mkdir -p %s && cp -a %s/. %s/" % (real, real, data, real))
    H.sh(["umount", data])
    os.rmdir(data)
    os.rename(real, data)
    H.kafka_script("start-node", node)


def case_disk_full(c, hold=8.0):
    """A partition leader's disk fills up under load (its log dir on a small tmpfs, then a filler file):
    Kafka takes a broker whose only log dir fails offline, the others lead, the relay keeps publishing;
    then the disk is freed and the broker restarted."""
    if os.geteuid() != 0:
        c.result.note("skipped: mounting a small disk needs root")
        c.finish()
        return
    leaders = H.partition_leaders(c.topic)
    node = c.rng.choice(leaders) if leaders else 1
    real = _mount_small_disk(node, 64)
    try:
        H.wait_cluster_healthy([c.topic])
        c.start_under_load()
        fault_pause(c, 1, 3)
        with c.fault("disk-full") as t0:
            H.sh(["dd", "if=/dev/zero", "of=" + os.path.join(_node_data(node), "filler"), "bs=1M"], check=False)
            try:
                wait_until(lambda: not H.kafka_node_alive(node), 60,
                           "broker %d to go offline on a full disk" % node, interval=0.2)
                c.result.note("broker %d went offline %.1fs after its disk filled" % (node, time.time() - t0))
            except E2EError:
                c.result.note("broker %d still running with a full disk" % node)
            time.sleep(hold)  # the fault: the disk stays full this long
            H.sh(["rm", "-f", os.path.join(_node_data(node), "filler")])
            H.kafka_script("stop-node", node)
            H.kafka_script("start-node", node)
        H.wait_cluster_healthy([c.topic])
        fault_pause(c, 1, 2)
        c.finish()
    finally:
        _unmount_small_disk(node, real)
        H.wait_cluster_healthy([c.topic])


def case_cluster_stop(c, down=30.0):
    c.start_under_load()
    fault_pause(c, 1, 3)
    with c.fault("cluster-stop"):
        for node in range(1, H.KAFKA_NODES + 1):
            H.kafka_script("stop-node", node, "--kill")
        time.sleep(down)  # the fault: the whole cluster stays down this long
        H.kafka_script("start", H.KAFKA_NODES, timeout=400)
    H.wait_cluster_healthy([c.topic])
    fault_pause(c, 2, 3)
    c.finish(drain_timeout=300)


def case_pg_restart(c, rounds=1):
    c.start_under_load()
    for _ in range(rounds):
        fault_pause(c, 1, 3)
        with c.fault("pg-restart"):
            H.pg_script("restart")
    fault_pause(c, 2, 3)
    c.finish()


def _slot_synced_on(node, slot):
    """The slot has a persisted, valid synchronized copy on standby `node` (PostgreSQL 17+)."""
    try:
        rows = H.pg_node_q(node, "SELECT synced AND NOT temporary AND invalidation_reason IS NULL "
                                 "FROM pg_replication_slots WHERE slot_name = '%s'" % slot)
    except psycopg2.Error:
        return False
    return bool(rows and rows[0][0])


def _node_role(node):
    try:
        return "standby" if H.pg_node_q(node, "SELECT pg_is_in_recovery()")[0][0] else "primary"
    except psycopg2.Error:
        return "down"


def _promote_under_load(c, old, new, kind):
    """Stops primary `old` with -m immediate (a crash: nothing more is shipped) and promotes standby `new`;
    the fault ends when the promotion is done (resume = promotion -> first record appended after it)."""
    with c.fault(kind):
        H.pg_script("node", str(old), "kill")
        H.pg_script("node", str(new), "promote")
    log("  %s: node %d stopped (immediate), node %d promoted" % (kind, old, new))


def _restore_single_node():
    """Node 1 the primary again and alone, whatever state a failed case left the pair in."""
    try:
        if _node_role(1) == "standby":
            H.pg_script("node", "1", "promote")
        elif _node_role(1) == "down" and _node_role(2) == "primary":
            H.pg_script("node", "1", "follow", "2")
            H.pg_script("node", "2", "kill")
            H.pg_script("node", "1", "promote")
        elif _node_role(1) == "down":
            H.pg_script("node", "1", "start")
    finally:
        H.pg_script("unpair")


def case_pg_failover(c, replication="sync", allow_phantom=False):
    """A primary + streaming standby; writers and the relay on the multi-host URL (target_session_attrs=
    read-write). Under load the primary is stopped with -m immediate and the standby promoted; then the old
    primary is re-seeded as a standby of the new one (pg_basebackup) and the same is done back. WAL mode
    needs failover slots (17+): the slot's synchronized copy must exist on the standby before each failover,
    and synchronized_standby_slots keeps the relay from receiving what the standby lacks. `replication`:
    sync (synchronous_standby_names) or async; with async, poll mode may publish an event whose commit the
    new primary lost (a phantom): measured, allowed when `allow_phantom`."""
    H.pg_script("pair", replication)
    H.PG_MULTI_HOST[0] = True
    try:
        c.start_under_load()
        for old, new, kind in ((1, 2, "pg-failover"), (2, 1, "pg-failback")):
            if c.mode == "wal":
                wait_until(lambda: _slot_synced_on(new, c.slot), 90, "slot %s synchronized on node %d" % (c.slot, new),
                           interval=0.5)
            fault_pause(c, 2, 4)
            seen = len(H.consume_all(c.topic))
            _promote_under_load(c, old, new, kind)
            c.wait_published(seen + 100, timeout=120)
            if old == 1:
                H.pg_script("node", "1", "follow", "2", replication)  # the old primary, re-seeded as a standby
        fault_pause(c, 2, 3)
        v = c.finish(drain_timeout=180)
        followed = sum("following the new primary" in r.output() for r in c.relays.values())
        if c.mode == "wal" and followed == 0:
            c.result.fail("no relay logged that it followed the new primary")
        if allow_phantom and v.phantom and v.lost == 0 and v.reordered == 0 and v.mismatched == 0:
            c.result.failures = [f for f in c.result.failures if not f.startswith("promises 1-2")]
            c.result.note("asynchronous replication: %d published event(s) whose commit the new primary lost"
                          % v.phantom)
    finally:
        H.PG_MULTI_HOST[0] = False
        _restore_single_node()


def case_pg_terminate(c, rounds=3):
    c.start_under_load()
    for _ in range(rounds):
        fault_pause(c, 0.5, 2.5)
        with c.fault("pg-terminate"):
            n = H.q("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = 'outbox-relay'")[0][0]
        if n == 0:
            c.result.note("no outbox-relay backend to terminate")
    fault_pause(c, 1, 2)
    c.finish()


def case_net_cut(c, target="kafka", rounds=1, down=10.0):
    c.start_under_load()
    net = H.Net()
    try:
        for _ in range(rounds):
            fault_pause(c, 1, 3)
            with c.fault("net-" + target):
                net.cut(target)
                time.sleep(down)  # the fault: the link stays cut this long
                net.restore(target)
    finally:
        net.restore(target)
    fault_pause(c, 2, 3)
    c.finish(drain_timeout=300)


def case_ha(c, kills=3, relays=2, shards=1):
    """Two (or more) relays per shard; the leader is SIGKILLed repeatedly and restarted as a standby."""
    c.slot_extra = {}
    groups = {}
    for s in range(shards):
        for i in range(relays):
            slot = "s%d-%s" % (s, "abcdefg"[i])
            c.slot_extra[slot] = ["--shard", "%d/%d" % (s, shards)] if shards > 1 else []
            groups.setdefault(s, []).append(slot)
    for s, slots in groups.items():
        c.start_relay(slots[0], extra=c.slot_extra[slots[0]])
        for slot in slots[1:]:
            c.start_relay(slot, extra=c.slot_extra[slot], wait_leading=False)
    if c.mode == "wal":
        # a second WAL relay on the same slot is told the slot is in use and keeps retrying
        for s, slots in groups.items():
            for slot in slots[1:]:
                try:
                    wait_until(lambda: c.relays[slot].has(r"in use by another relay"), 20,
                               "standby %s to report the slot in use" % slot)
                except E2EError as e:
                    c.result.fail(str(e))
    c.start_load()
    c.wait_published(50)
    for k in range(kills):
        fault_pause(c, 1, 3)
        s = c.rng.choice(list(groups))
        lead = None
        try:
            lead = wait_until(lambda: _group_leader(c, groups[s]), 30, "a leader of shard %d" % s)
        except E2EError as e:
            c.result.fail(str(e))
            continue
        others = [sl for sl in groups[s] if sl != lead]
        offs = {sl: c.relays[sl].log_size() for sl in others}
        with c.fault("leader-kill") as t0:
            c.kill_relay(lead)
            try:
                wait_until(lambda: any(c.relays[sl].is_leading(offs[sl]) for sl in others), LEASE, "takeover")
                c.result.takeovers.append(time.time() - t0)
            except E2EError:
                c.result.fail("promise 4: no takeover within %.0fs after the leader of shard %d was killed" % (
                    LEASE, s))
        c.start_relay(lead, extra=c.slot_extra[lead], wait_leading=False)  # back as a standby
    fault_pause(c, 1, 2)
    c.finish()


def _leaders(c, slots):
    """Slots whose relay says it leads now (its last 'leading'/'streaming' line is after its last loss line)."""
    import re
    out = []
    for sl in slots:
        r = c.relays[sl]
        if not r.running() or r in c.intended:
            continue
        text = r.output()
        m = [x.start() for x in re.finditer(r"(leading poll source|streaming slot)", text)]
        lost = [x.start() for x in re.finditer(r"(retrying with backoff|in use by another relay|standing by)", text)]
        if m and (not lost or m[-1] > lost[-1]):
            out.append((m[-1], sl))
    return [sl for _, sl in sorted(out)]


def _group_leader(c, slots):
    ls = _leaders(c, slots)
    if len(ls) > 1:
        c.result.fail("promise 4: two relays of one shard lead at once: %s" % ls)
    return ls[-1] if ls else None


def case_net_pg_ha(c, extra_hold=15.0, lease=None):
    """Cut the leader off PostgreSQL past the lease (its standby, another user, keeps its link): the
    server must end the leader's session so the standby takes over; after the link is back the old leader
    stands by and publishes nothing new."""
    lease = _lease_args(c, lease)
    c.start_relay("a")
    c.start_relay("b", wait_leading=False, user="nobody")
    c.start_load()
    c.wait_published(50)
    fault_pause(c, 1, 3)
    a, b = c.relays["a"], c.relays["b"]
    b_off = b.log_size()
    net = H.Net()
    took = None
    with c.fault("net-pg-ha") as t0:
        net.cut("pg")
        try:
            wait_until(lambda: b.is_leading(b_off), lease + extra_hold, "standby to take over")
            took = time.time() - t0
            c.result.takeovers.append(took)
            c.result.note("takeover after the leader lost PostgreSQL: %.1fs" % took)
        except E2EError:
            c.result.fail("promise 4: the standby did not take over within %.0fs of the leader losing PostgreSQL"
                          % (lease + extra_hold))
            _diagnose_sessions(c)
        finally:
            a_off = a.log_size()
            net.restore("pg")
    if took is not None:
        try:
            wait_until(lambda: a.has(r"(retrying with backoff|another relay leads|in use by another relay)", a_off)
                       or not a.running(), 120, "the cut-off leader to notice it lost the lead")
        except E2EError as e:
            c.result.note(str(e))
        if _group_leader(c, ["a", "b"]) is None:
            c.result.note("no leader right after the link came back")
    fault_pause(c, 2, 3)
    c.finish()


def _diagnose_sessions(c):
    """What the server thinks of the relay sessions, and the TCP state of their sockets (into the notes)."""
    try:
        for row in H.q("postgres", "SELECT pid, backend_type, state, wait_event_type, wait_event, "
                                   "round(extract(epoch from now() - state_change)) FROM pg_stat_activity "
                                   "WHERE datname = %s AND (application_name = 'outbox-relay' OR "
                                   "backend_type = 'walsender')", (c.db,)):
            c.result.note("server session %s" % (row,))
        ss = H.sh("ss -tinoH state established '( sport = :%d )'" % H.PG_PORT, check=False).stdout
        c.result.note("server sockets: " + " | ".join(" ".join(l.split()) for l in ss.splitlines())[:1500])
    except Exception as e:  # noqa: BLE001 - diagnostics only
        c.result.note("no diagnostics: %s" % e)


def case_poison(c, policy="park"):
    small = "e2e.small.%s.%s" % (c.mode, c.ctx.run_id)
    H.create_topic(small)
    H.kafka_admin("kafka.admin.ConfigCommand", "--bootstrap-server", H.kafka_brokers(), "--entity-type", "topics",
                  "--entity-name", small, "--alter", "--add-config", "max.message.bytes=512")
    dlq = "e2e.dlq.%s.%s.%s" % (policy, c.mode, c.ctx.run_id)
    extra = ["--on-poison", policy] + (["--dlq-topic", dlq] if policy == "dlq" else [])
    c.start_relay(extra=extra)
    c.start_load()
    c.wait_published(30)
    conn = H.connect(c.db, autocommit=False, app="e2e-poison")
    held_expect = "held" if policy == "block" else "publish"
    kinds = {
        "too-large": dict(payload=json.dumps({"big": "y" * 1_500_000})),
        "topic-refuses": dict(payload=json.dumps({"mid": "z" * 2000}), topic=small),
        "bad-headers": dict(headers=json.dumps([1, 2, 3])),
        "bad-topic": dict(topic="bad topic!"),
    }
    poison_ids, held_ids = {}, []
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO aggregates (id) VALUES (%s)", [("p-" + k,) for k in kinds] + [("tomb-1",),
                                                                                                     ("trace-1",)])
    conn.commit()
    ld = c.load
    t_poison = time.time()
    for kind, kw in kinds.items():
        agg = "p-" + kind
        ld.transaction(conn, agg)
        poison_ids[kind] = ld.transaction(conn, agg, expect="park", **kw)
        held_ids.append(ld.transaction(conn, agg, expect=held_expect))
        held_ids.append(ld.transaction(conn, agg, expect=held_expect))
    # A tombstone (NULL payload) is a record with a null value, not poison.
    ld.transaction(conn, "tomb-1")
    tomb = ld.transaction(conn, "tomb-1", null_payload=True, expect="tombstone")
    ld.transaction(conn, "tomb-1")
    trace = ld.transaction(conn, "trace-1", headers=json.dumps(
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tenant": "acme"}))
    ids = list(poison_ids.values())

    def parked():
        if c.mode == "poll":
            return H.q(c.db, "SELECT id::text, error FROM outbox WHERE failed_at IS NOT NULL AND id = ANY(%s)",
                       (ids,))
        try:
            return H.q(c.db, "SELECT id, error FROM outbox_relay_parked WHERE id = ANY(%s)", ([str(i) for i in ids],))
        except psycopg2.Error:
            return []
    try:
        rows = wait_until(lambda: (lambda r: r if len(r) == len(ids) else None)(parked()), 30,
                          "every poison event to be parked")
        for rid, err in rows:
            if not err:
                c.result.fail("parked event %s has no error text" % rid)
        c.result.note("parked: " + "; ".join("%s: %s" % (k, dict(rows).get(str(i), "?")[:70])
                                            for k, i in poison_ids.items()))
    except E2EError:
        got = {r[0] for r in parked()}
        c.result.fail("not parked (poison vanished or blocks): %s" % [k for k, i in poison_ids.items()
                                                                       if str(i) not in got])
    if policy == "dlq":
        # every poison event that fits into the dead-letter topic is there (the too-large one cannot be:
        # it must be parked instead, checked above)
        dl_ids = {str(i) for k, i in poison_ids.items() if k != "too-large"}
        try:
            recs = wait_until(lambda: (lambda r: r if len({x["hdr"].get("id") for x in r} & dl_ids)
                                       == len(dl_ids) else None)(c.consume(dlq)), 30, "dead letters")
            for rec in recs:
                if "dlq.error" not in rec["hdr"]:
                    c.result.fail("dead letter %s without a dlq.error header" % rec["hdr"].get("id"))
        except E2EError:
            got = {x["hdr"].get("id") for x in c.consume(dlq)}
            c.result.fail("not dead-lettered: %s" % [k for k, i in poison_ids.items()
                                                     if str(i) not in got and str(i) in dl_ids])
    if policy == "block":
        # later events of a poisoned aggregate are held while the rest flows ...
        fault_pause(c, 3, 4)
        published = {r["hdr"].get("id") for r in c.consume()}
        leaked = [i for i in held_ids if str(i) in published]
        if leaked:
            c.result.fail("block: events behind a parked one were published: %s" % leaked)
        pending = H.q(c.db, "SELECT count(*) FROM outbox WHERE id = ANY(%s) AND failed_at IS NULL", (held_ids,))[0][0]
        if pending != len(held_ids):
            c.result.fail("block: %d of %d held events still pending" % (pending, len(held_ids)))
        # ... until the operator repairs the parked event: then it and the held ones go, in order.
        for kind, pid in poison_ids.items():
            agg = "p-" + kind
            v = H.q(c.db, "SELECT version FROM orders WHERE outbox_id = %s", (pid,))[0][0]
            H.q(c.db, "UPDATE outbox SET topic = NULL, headers = NULL, payload = %s::jsonb, failed_at = NULL, "
                      "error = NULL WHERE id = %s", (json.dumps({"agg": agg, "v": v}), pid))
        H.q(c.db, "UPDATE orders SET expect = 'publish' WHERE expect IN ('held', 'park')")
    conn.close()
    c.finish()
    v = c.result.verdict
    if v is not None:
        recs = {r["hdr"].get("id"): r for r in c.consume()}
        t = recs.get(str(tomb))
        if t is None or t.get("payload") is not None:
            c.result.fail("tombstone %s did not arrive as a record with a null value" % tomb)
        tr = recs.get(str(trace))
        if tr is None or tr["hdr"].get("traceparent", "").find("4bf92f35") < 0 or tr["hdr"].get("tenant") != "acme":
            c.result.fail("headers JSON entries did not arrive as record headers (id %s)" % trace)
        # promise 3: the other aggregates kept flowing while poison was around
        truth = ground_truth(c.db)
        lats = sorted(v.first_ts[i] - truth[i][3] for i in v.first_ts if i in truth and truth[i][3]
                      and truth[i][0].startswith("a-") and truth[i][3] >= t_poison)
        if lats:
            p99 = lats[int(0.99 * (len(lats) - 1))]
            c.result.note("other aggregates after the poison: publish latency p50 %.0fms p99 %.0fms max %.0fms" % (
                1000 * lats[len(lats) // 2], 1000 * p99, 1000 * lats[-1]))
            if p99 > 5.0:
                c.result.fail("promise 3: poison held back other aggregates (p99 publish latency %.1fs)" % p99)


def case_late_commit(c, old=30.0, baseline=10.0):
    """A transaction that inserted its event early and commits late (holding an old snapshot meanwhile) is
    never skipped; measures claim cost and publish latency while the old snapshot is open."""
    c.start_relay()
    H.q(c.db, "INSERT INTO aggregates (id) VALUES ('late-1')")
    c.start_load()
    c.wait_published(30)

    def probe():
        if c.mode != "poll":
            return None
        r = H.q(c.db, "EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM outbox WHERE sent_at IS NULL AND "
                      "failed_at IS NULL ORDER BY id LIMIT 1000")
        return r[0][0][0]["Execution Time"]
    sampler = H.Sampler(probe, 1.0)
    sampler.start()
    time.sleep(baseline)  # load-only phase for the baseline latency
    t_open = time.time()
    late2 = H.connect(c.db, autocommit=False, app="e2e-late")
    late2.set_session(isolation_level="REPEATABLE READ")
    cur2 = late2.cursor()
    cur2.execute("SELECT count(*) FROM orders")
    cur2.execute("UPDATE aggregates SET version = version + 1 WHERE id = 'late-1' RETURNING version")
    v2 = cur2.fetchone()[0]
    cur2.execute("INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload) VALUES ('order', 'late-1', "
                 "'order-updated', %s::jsonb) RETURNING id", (json.dumps({"agg": "late-1", "v": v2}),))
    held_id = cur2.fetchone()[0]
    time.sleep(old)  # the fault: the transaction stays open this long
    cur2.execute("INSERT INTO orders (aggregate_id, version, outbox_id, committed_at) VALUES ('late-1', %s, %s, "
                 "extract(epoch from clock_timestamp()))", (v2, held_id))
    late2.commit()
    t_commit = time.time()
    late2.close()
    fault_pause(c, 2, 3)
    sampler.stop()
    c.finish()
    v = c.result.verdict
    if str(held_id) not in v.first_ts:
        c.result.fail("the late-committed event %s was skipped" % held_id)
    else:
        c.result.note("late event id %s (inserted %.0fs before its commit, %d ids later were published first) "
                      "published %.2fs after its commit" % (held_id, old, sum(
                          1 for i in v.first_ts if int(i) > held_id and v.first_ts[i] < t_commit),
                          v.first_ts[str(held_id)] - t_commit))
    truth = ground_truth(c.db)

    def lat(t0, t1):
        xs = sorted(v.first_ts[i] - truth[i][3] for i in v.first_ts
                    if i in truth and truth[i][3] and t0 <= truth[i][3] < t1)
        if not xs:
            return "n/a"
        return "p50 %.0fms p99 %.0fms max %.0fms (n=%d)" % (
            1000 * xs[len(xs) // 2], 1000 * xs[int(0.99 * (len(xs) - 1))], 1000 * xs[-1], len(xs))
    c.result.note("publish latency, baseline: %s" % lat(c.t_start, t_open))
    c.result.note("publish latency, last 10s of the %.0fs-old snapshot: %s" % (old, lat(t_commit - 10, t_commit)))
    samples = [(t, x) for t, x in sampler.samples if x is not None]
    if samples:
        base = [x for t, x in samples if t < t_open]
        end = [x for t, x in samples if t_commit - 10 <= t < t_commit]
        c.result.note("claim scan (EXPLAIN ANALYZE of the claim, LIMIT 1000): baseline %.1fms, with %.0fs-old "
                      "snapshot %.1fms" % (sum(base) / max(1, len(base)), old, sum(end) / max(1, len(end))))
        c.result.extra["claim_ms_end"] = sum(end) / max(1, len(end))
