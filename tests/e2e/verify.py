"""Checks promises 1-2 exactly on what an independent consumer (kcat) read:
lost (committed, never published), phantom (published, never committed: rolled back or unknown),
duplicates (an id seen again: must be the same record), reorderings (per aggregate, the first occurrences
of its events must follow its commit order = version order, all on one partition)."""
import bisect
import json


class Verdict:
    def __init__(self):
        self.expected = 0
        self.published = 0
        self.lost = 0
        self.phantom = 0
        self.duplicates = 0
        self.reordered = 0
        self.mismatched = 0
        self.examples = []
        self.first_ts = {}  # id -> append time (s) of its first occurrence
        self.append_times = []  # sorted append times (s) of every record
        self.latencies = []  # append - commit (s) of first occurrences
        self.dup_first_ts = []  # append time (s) of the first copy of each duplicate

    def example(self, s):
        if len(self.examples) < 8:
            self.examples.append(s)

    def ok(self):
        return self.lost == 0 and self.phantom == 0 and self.reordered == 0 and self.mismatched == 0

    def summary(self):
        s = "events=%d published=%d lost=%d phantom=%d duplicates=%d reordered=%d mismatched=%d" % (
            self.expected, self.published, self.lost, self.phantom, self.duplicates, self.reordered,
            self.mismatched)
        if self.examples:
            s += " (" + "; ".join(self.examples) + ")"
        return s

    # ---- timing from the broker's append timestamps
    def max_gap(self, t0, t1):
        """Longest time without any record appended that overlaps [t0, t1]."""
        ts = self.append_times
        i = max(0, bisect.bisect_left(ts, t0) - 1)
        j = min(len(ts), bisect.bisect_right(ts, t1) + 1)
        window = ts[i:j]
        if not window:
            return 0.0
        gap = 0.0
        if window[0] > t0:
            gap = window[0] - t0
        for a, b in zip(window, window[1:]):
            gap = max(gap, min(b, t1) - max(a, t0))
        return gap  # the end of the window does not count: the load may have stopped there

    def resumed_after(self, t):
        """Seconds from t to the first record appended after it (None if none)."""
        ts = self.append_times
        i = bisect.bisect_right(ts, t)
        return ts[i] - t if i < len(ts) else None

    def latency_pct(self, p, since=None, until=None, truth=None):
        vals = self.latencies if since is None else [
            lat for (c, lat) in self._lat_by_commit if since <= c <= (until or 1e18)]
        if not vals:
            return None
        vals = sorted(vals)
        return vals[min(len(vals) - 1, int(p / 100.0 * len(vals)))]


def verify(truth, records, rolled_back=(), check_payload=True):
    """truth: {id: (aggregate, version, expect, committed_at)}; records: kcat -J dicts of the main topic(s).
    Only truth entries with expect 'publish' or 'tombstone' must arrive; other expects must not."""
    v = Verdict()
    expected = {i: t for i, t in truth.items() if t[2] in ("publish", "tombstone")}
    v.expected = len(expected)
    records = sorted(records, key=lambda r: (r["topic"], r["partition"], r["offset"]))
    seen = {}
    last_version = {}  # aggregate -> highest version among first occurrences so far
    partition_of = {}
    v._lat_by_commit = []
    for r in records:
        rid = r["hdr"].get("id")
        v.append_times.append(r["ts"] / 1000.0)
        t = truth.get(rid)
        if t is None or t[2] not in ("publish", "tombstone"):
            v.phantom += 1
            why = "rolled back" if rid is not None and rid.isdigit() and int(rid) in rolled_back else (
                "expected %s" % t[2] if t else "unknown")
            v.example("phantom id %s (%s)" % (rid, why))
            continue
        agg, version, expect, committed_at = t
        if rid in seen:
            v.duplicates += 1
            first = seen[rid]
            v.dup_first_ts.append(first["ts"] / 1000.0)
            if first.get("key") != r.get("key") or first.get("payload") != r.get("payload"):
                v.mismatched += 1
                v.example("duplicate of id %s differs from its first copy" % rid)
            continue
        seen[rid] = r
        ts = r["ts"] / 1000.0
        v.first_ts[rid] = ts
        if committed_at:
            v.latencies.append(ts - committed_at)
            v._lat_by_commit.append((committed_at, ts - committed_at))
        if r.get("key") != agg:
            v.mismatched += 1
            v.example("id %s has key %r, expected %r" % (rid, r.get("key"), agg))
        if expect == "tombstone":
            if r.get("payload") is not None:
                v.mismatched += 1
                v.example("id %s should be a tombstone (null value)" % rid)
        elif check_payload:
            try:
                body = json.loads(r.get("payload") or "null")
                if body.get("agg") != agg or body.get("v") != version:
                    raise ValueError
            except (ValueError, AttributeError):
                v.mismatched += 1
                v.example("id %s carries a payload that is not its own" % rid)
        pk = (r["topic"], r["partition"])
        if partition_of.setdefault(agg, pk) != pk:
            v.reordered += 1
            v.example("aggregate %s on two partitions" % agg)
        lv = last_version.get(agg, 0)
        if version < lv:
            v.reordered += 1
            v.example("aggregate %s: version %d (id %s) after version %d" % (agg, version, rid, lv))
        last_version[agg] = max(lv, version)
    v.append_times.sort()
    v.published = len(seen)
    for rid in expected:
        if rid not in seen:
            v.lost += 1
            v.example("lost id %s (%s v%d)" % (rid, expected[rid][0], expected[rid][1]))
    return v
