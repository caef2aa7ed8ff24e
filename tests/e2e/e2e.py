#!/usr/bin/python3
"""outbox-relay end-to-end delivery-under-faults suite (see tests/e2e/README.md).

  e2e.py --quick                 the CI subset (a few minutes)
  e2e.py --soak 30m              every fault x mode, then more rounds of the fault cases until the time is up
  e2e.py --only sigkill,ha       cases whose label starts with one of these
  e2e.py --keep-services         leave PostgreSQL/Kafka running (and reuse them) for iterating

Starts its own PostgreSQL (port 54359) and three-broker Kafka (39092-39094) under /tmp/outbox-relay-e2e and
removes them on exit (also on SIGINT/SIGTERM). Exit 1 on any promise violation; last line `N passed, N failed`.
"""
import argparse
import atexit
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases as C  # noqa: E402
import harness as H  # noqa: E402
from harness import log  # noqa: E402


class Ctx:
    def __init__(self, seed, writers, rate):
        self.seed = seed
        self.writers = writers
        self.rate = rate
        self.run_id = "%x" % (int(time.time()) % 0xFFFFFF)
        self.case_seq = 0


PG_VERSION = int(os.environ.get("PG_VERSION", "15"))


def plan(quick, soak_seconds):
    P = []  # (label, fn, mode, kwargs, estimated seconds)

    def add(label, fn, modes, est, **kw):
        for m in modes:
            P.append((label, fn, m, dict(kw), est))

    def add_eos(label, fn, modes, est, **kw):
        """The case with the relay in --exactly-once mode (label eos-<label>): a read_committed consumer
        must see no duplicate either."""
        add("eos-" + label, fn, modes, est, eos=True, **kw)
    if quick:
        add("sigkill", C.case_sigkill, ["poll", "wal"], 30, kills=4)
        add("dbz-sigkill", C.case_debezium_sigkill, ["poll"], 30, kills=4)
        add("pg-terminate", C.case_pg_terminate, ["poll", "wal"], 20, rounds=3)
        add("broker-kill", C.case_broker_kill, ["poll"], 40, rounds=1, down=6.0)
        add("disk-full", C.case_disk_full, ["wal"], 50, hold=6.0)
        add("net-kafka", C.case_net_cut, ["poll"], 30, target="kafka", down=6.0)
        add("net-pg", C.case_net_cut, ["wal"], 30, target="pg", down=6.0)
        add("poison-park", C.case_poison, ["poll", "wal"], 25, policy="park")
        add("poison-dlq", C.case_poison, ["poll"], 25, policy="dlq")
        add("poison-block", C.case_poison, ["poll"], 30, policy="block")
        add("ha", C.case_ha, ["poll", "wal"], 40, kills=2)
        add("sigstop-short", C.case_sigstop_short, ["poll"], 20, pause=4.0)
        add("late-commit", C.case_late_commit, ["poll"], 40, old=15.0, baseline=5.0)
        add("sigstop-idle", C.case_sigstop_lease, ["poll"], 30, idle=True, lease=10)
        add("net-pg-ha", C.case_net_pg_ha, ["poll", "wal"], 30, lease=10)
        if PG_VERSION >= 17:  # failover slots: WAL mode follows a promoted standby
            add("pg-failover", C.case_pg_failover, ["poll", "wal"], 60, replication="sync")
        add_eos("sigkill", C.case_sigkill, ["poll", "wal"], 30, kills=4)
        add_eos("broker-kill", C.case_broker_kill, ["poll"], 40, rounds=1, down=6.0)
        return P, []
    old = 300.0 if soak_seconds >= 45 * 60 else 120.0
    # Most telling first: with --soak shorter than a full pass (~70 min, the eos- cases last) the cases that no longer fit are
    # skipped (and named in the output).
    add("sigkill", C.case_sigkill, ["poll", "wal"], 90, kills=20)
    add("ha", C.case_ha, ["poll", "wal"], 90, kills=6)
    add("dbz-sigkill", C.case_debezium_sigkill, ["poll"], 90, kills=20)
    add("broker-kill", C.case_broker_kill, ["poll", "wal"], 120, rounds=3, down=15.0)
    add("pg-restart", C.case_pg_restart, ["poll", "wal"], 45, rounds=3)
    add("pg-terminate", C.case_pg_terminate, ["poll", "wal"], 40, rounds=6)
    add("net-kafka", C.case_net_cut, ["poll", "wal"], 80, target="kafka", rounds=2, down=20.0)
    add("net-pg", C.case_net_cut, ["poll", "wal"], 80, target="pg", rounds=2, down=20.0)
    add("cluster-stop", C.case_cluster_stop, ["poll", "wal"], 110, down=30.0)
    add("disk-full", C.case_disk_full, ["poll", "wal"], 70, hold=15.0)
    add("poison-park", C.case_poison, ["poll", "wal"], 30, policy="park")
    add("poison-dlq", C.case_poison, ["poll", "wal"], 30, policy="dlq")
    add("poison-block", C.case_poison, ["poll"], 35, policy="block")
    add("sigstop-idle", C.case_sigstop_lease, ["poll", "wal"], 110, idle=True)
    add("late-commit", C.case_late_commit, ["poll", "wal"], old + 40, old=old, baseline=20.0)
    add("ha-shard", C.case_ha, ["poll"], 90, kills=6, shards=2)
    add("sigstop-busy", C.case_sigstop_lease, ["poll", "wal"], 110, idle=False)
    add("net-pg-ha", C.case_net_pg_ha, ["poll", "wal"], 110)
    add("pg-failover", C.case_pg_failover, ["poll"] + (["wal"] if PG_VERSION >= 17 else []), 70,
        replication="sync")
    add("pg-failover-async", C.case_pg_failover, ["poll"] + (["wal"] if PG_VERSION >= 17 else []), 70,
        replication="async", allow_phantom=True)
    # The same faults with --exactly-once: no duplicates at all for a read_committed consumer.
    add_eos("sigkill", C.case_sigkill, ["poll", "wal"], 90, kills=20)
    add_eos("ha", C.case_ha, ["poll", "wal"], 90, kills=6)
    add_eos("broker-kill", C.case_broker_kill, ["poll", "wal"], 120, rounds=3, down=15.0)
    add_eos("pg-restart", C.case_pg_restart, ["poll", "wal"], 45, rounds=3)
    add_eos("pg-terminate", C.case_pg_terminate, ["poll", "wal"], 40, rounds=6)
    add_eos("net-kafka", C.case_net_cut, ["poll", "wal"], 80, target="kafka", rounds=2, down=20.0)
    add_eos("cluster-stop", C.case_cluster_stop, ["poll", "wal"], 110, down=30.0)
    add_eos("sigstop-busy", C.case_sigstop_lease, ["poll", "wal"], 110, idle=False)
    # Rounds after the first pass: the fault cases again, for more events and kills.
    again = [p for p in P if p[0] in ("sigkill", "broker-kill", "pg-restart", "pg-terminate", "net-kafka",
                                      "net-pg", "ha", "ha-shard", "eos-sigkill", "eos-ha", "eos-broker-kill")]
    return P, again


def fmt_secs(xs):
    if not xs:
        return "-"
    return "%.1f/%.1f" % (sum(xs) / len(xs), max(xs))


def print_table(results):
    # merge rows of the same case x mode (soak rounds)
    rows = {}
    for r in results:
        k = (r.case, r.mode)
        m = rows.setdefault(k, {"runs": 0, "pass": 0, "events": 0, "lost": 0, "phantom": 0, "dup": 0, "reord": 0,
                                "mism": 0, "faults": 0, "rec": [], "stall": [], "take": [], "fail": []})
        m["runs"] += 1
        m["pass"] += int(r.passed)
        v = r.verdict
        if v:
            m["events"] += v.expected
            m["lost"] += v.lost
            m["phantom"] += v.phantom
            m["dup"] += v.duplicates
            m["reord"] += v.reordered
            m["mism"] += v.mismatched
        m["faults"] += r.faults
        m["rec"] += r.recovery
        m["stall"] += r.stalls
        m["take"] += r.takeovers
        m["fail"] += r.failures
    hdr = "%-17s %-4s %5s %6s %7s %5s %7s %5s %6s %12s %12s %12s" % (
        "fault", "mode", "runs", "faults", "events", "lost", "phantom", "dup", "reord", "resume avg/max",
        "stall avg/max", "takeover avg/max")
    print("\n" + hdr)
    print("-" * len(hdr))
    for (case, mode), m in rows.items():
        print("%-17s %-4s %2d/%-2d %6d %7d %5d %7d %5d %6d %14s %13s %16s" % (
            case, mode, m["pass"], m["runs"], m["faults"], m["events"], m["lost"], m["phantom"], m["dup"],
            m["reord"] + m["mism"], fmt_secs(m["rec"]), fmt_secs(m["stall"]), fmt_secs(m["take"])))
    print("(seconds; resume = heal -> first record appended after it; stall = longest gap in appends around the "
          "fault; passes counted per run)")


def parse_duration(s):
    units = {"s": 1, "m": 60, "h": 3600}
    if s[-1] in units:
        return float(s[:-1]) * units[s[-1]]
    return float(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--soak", default=None, help="duration, e.g. 30m")
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="", help="labels (or label:mode) to leave out, e.g. a known bug")
    ap.add_argument("--keep-services", action="store_true")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--rate", type=float, default=40.0, help="transactions/s per writer")
    a = ap.parse_args()
    if not a.quick and not a.soak:
        a.quick = True
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    soak_seconds = parse_duration(a.soak) if a.soak else 0
    ctx = Ctx(seed, a.writers, a.rate)
    log("e2e %s, seed %d, relay %s" % ("quick" if a.quick else "soak " + a.soak, seed, H.BINARY))

    def cleanup():
        H.kill_all_relays()
        H.Net.clear()
        if not a.keep_services:
            log("stopping e2e services")
            H.services_stop(destroy=True)
    atexit.register(cleanup)

    def on_signal(signum, _frame):
        log("signal %d: cleaning up" % signum)
        sys.exit(130)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    os.makedirs(H.RUN, exist_ok=True)
    lock = open(os.path.join(H.RUN, "e2e.lock"), "w")
    try:
        import fcntl
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log("another e2e run holds %s/e2e.lock; not starting a second one on the same services" % H.RUN)
        atexit.unregister(cleanup)
        return 2
    started = time.time()
    H.Net.clear()
    H.services_start()
    log("services up in %.0fs: pg %s, kafka %s" % (time.time() - started, H.pg_url(), H.kafka_brokers()))
    first, again = plan(a.quick, soak_seconds)
    only = [x for x in a.only.split(",") if x]
    if only:
        first = [p for p in first if any(p[0].startswith(o) or (p[0] + ":" + p[2]).startswith(o) for o in only)]
        again = [p for p in again if any(p[0].startswith(o) for o in only)]
    skip = [x for x in a.skip.split(",") if x]
    if skip:
        first = [p for p in first if not any(p[0] == x or p[0] + ":" + p[2] == x for x in skip)]
        again = [p for p in again if not any(p[0] == x or p[0] + ":" + p[2] == x for x in skip)]
    results = []
    deadline = started + soak_seconds if soak_seconds else None
    queue = list(first)
    rnd = 0
    while queue:
        label, fn, mode, kw, est = queue.pop(0)
        if deadline and time.time() + est > deadline and results:
            log("skipping %s (%s): not enough soak time left" % (label, mode))
            continue
        kw = dict(kw)
        kw["label"] = label
        results.append(C.run_case(ctx, fn, label, mode, **kw))
        if not queue and deadline and again and time.time() + 60 < deadline:
            rnd += 1
            log("soak round %d" % (rnd + 1))
            queue = list(again)
            random.Random(seed + rnd).shuffle(queue)
    print_table(results)
    failed = [r for r in results if not r.passed]
    for r in results:
        for n in r.notes:
            print("note %s/%s: %s" % (r.case, r.mode, n))
    for r in failed:
        for f in r.failures:
            print("FAILED %s/%s: %s" % (r.case, r.mode, f))
    log("total %.0fs" % (time.time() - started))
    print("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
    sys.stdout.flush()
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
