"""Concurrent writers: each transaction bumps its aggregate's version (a row lock, so one aggregate's
transactions commit one after another), inserts the outbox row and an orders row, then commits or
(sometimes) rolls back. The orders table is the ground truth of what was committed: a commit whose outcome
was lost with the connection is settled by looking for its orders row, not guessed."""
import json
import random
import threading
import time

import psycopg2

from harness import connect


class Load:
    def __init__(self, db, writers=3, rate=40.0, aggregates=60, rollback=0.2, prefix="a", seed=None,
                 pad=64, table="outbox"):
        self.db = db
        # "outbox": the relay's own table; "dbz_outbox": Debezium's (uuid id, aggregatetype, aggregateid,
        # type, payload), created by the case.
        self.table = table
        self.writers = writers
        self.rate = rate  # transactions per second per writer
        self.aggregates = ["%s-%d" % (prefix, i) for i in range(aggregates)]
        self.rollback = rollback
        self.pad = "x" * pad
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.pause_event = threading.Event()
        self.threads = []
        self.lock = threading.Lock()
        self.committed = 0
        self.rolled_back = 0
        self.in_doubt = 0
        self.errors = 0
        self.rolled_back_ids = set()
        c = connect(db)
        with c.cursor() as cur:
            cur.executemany("INSERT INTO aggregates (id) VALUES (%s) ON CONFLICT DO NOTHING",
                            [(a,) for a in self.aggregates])
        c.close()

    def start(self):
        for i in range(self.writers):
            t = threading.Thread(target=self._writer, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)

    def pause(self, paused=True):
        (self.pause_event.set if paused else self.pause_event.clear)()

    def _writer(self, n):
        rng = random.Random(self.rng.random())
        conn = None
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            if self.pause_event.is_set():
                self.stop_event.wait(0.05)
                continue
            # pacing: a fixed rate, not synchronisation
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
            next_at = max(next_at + period, time.monotonic() - 1.0)
            try:
                if conn is None:
                    conn = connect(self.db, autocommit=False, app="e2e-writer")
                self.transaction(conn, rng.choice(self.aggregates), rollback=rng.random() < self.rollback)
            except (psycopg2.OperationalError, psycopg2.InterfaceError, psycopg2.errors.AdminShutdown):
                with self.lock:
                    self.errors += 1
                try:
                    if conn is not None:
                        conn.close()
                except psycopg2.Error:
                    pass
                conn = None
                self.stop_event.wait(0.2)  # reconnect backoff while PostgreSQL is away
        if conn is not None:
            conn.close()

    def transaction(self, conn, agg, rollback=False, payload=None, headers=None, topic=None, expect="publish",
                    null_payload=False, event_type="order-updated"):
        """One business transaction. Returns the outbox id (None if rolled back / lost)."""
        cur = conn.cursor()
        outbox_id = None
        try:
            cur.execute("UPDATE aggregates SET version = version + 1 WHERE id = %s RETURNING version", (agg,))
            version = cur.fetchone()[0]
            body = None if null_payload else (
                payload if payload is not None else json.dumps({"agg": agg, "v": version, "pad": self.pad}))
            if self.table == "dbz_outbox":
                cur.execute("INSERT INTO dbz_outbox (aggregatetype, aggregateid, type, payload) "
                            "VALUES ('order', %s, %s, %s::jsonb) RETURNING id::text", (agg, event_type, body))
            else:
                cur.execute("INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload, headers, topic) "
                            "VALUES ('order', %s, %s, %s::jsonb, %s::jsonb, %s) RETURNING id",
                            (agg, event_type, body, headers, topic))
            outbox_id = cur.fetchone()[0]
            cur.execute("INSERT INTO orders (aggregate_id, version, outbox_id, expect, committed_at) "
                        "VALUES (%s, %s, %s, %s, extract(epoch from clock_timestamp()))",
                        (agg, version, outbox_id, expect))
            if rollback:
                conn.rollback()
                with self.lock:
                    self.rolled_back += 1
                    self.rolled_back_ids.add(outbox_id)
                return None
        except Exception:
            try:
                conn.rollback()
            except psycopg2.Error:
                pass
            raise
        try:
            conn.commit()
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            with self.lock:
                self.in_doubt += 1  # settled by the orders table (the ground truth)
            raise
        with self.lock:
            self.committed += 1
        return outbox_id


def ground_truth(db):
    """Committed events: {outbox_id: (aggregate_id, version, expect, committed_at)}."""
    c = connect(db)
    with c.cursor() as cur:
        cur.execute("SELECT outbox_id, aggregate_id, version, expect, committed_at FROM orders")
        rows = cur.fetchall()
    c.close()
    return {str(r[0]): (r[1], r[2], r[3], r[4]) for r in rows}
