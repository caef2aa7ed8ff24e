"""Turns the harness's results (bench/results/<stem>.json) into <stem>.md and <stem>.png.

    /usr/bin/python3 bench/report.py bench/results/<stem>.json     re-renders an existing result
"""

import json
import os
import statistics
import sys

TARGETS = {"ceiling": 0.80, "p99_ms_at_5k": 15.0, "rss_mb": 50.0, "dbz_tput": 5.0, "dbz_p99": 20.0}


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def f(v, digits=1):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def worst(runs, k, hi=False):
    """The worst of the runs' values of `k`: the highest when `hi` (RSS), else the lowest (a rate)."""
    vals = [x.get(k) for x in runs if x.get(k) is not None]
    return (max(vals) if hi else min(vals)) if vals else None


def r(a, b, invert=False):
    if not a or not b:
        return "n/a"
    return f"{(b / a if invert else a / b):.2f}"


def ok(cond):
    return "n/a" if cond is None else ("**holds**" if cond else "**fails**")


class View:
    """Medians over the repetitions, with the shapes the tables need."""

    def __init__(self, res):
        self.res = res
        self.tp = res.get("throughput") if isinstance(res.get("throughput"), dict) else {}
        if "error" in self.tp:
            self.tp = {}

    def drain(self, payload, key, field="rate_wall"):
        runs = self.tp.get(str(payload), [])
        return med([x.get(key, {}).get(field) for x in runs if isinstance(x.get(key), dict)
                    and "error" not in x.get(key, {})])

    def drain_flag(self, payload, key, flag):
        return any(x.get(key, {}).get(flag) for x in self.tp.get(str(payload), []))

    def ceiling(self, payload, key):
        return self.drain(payload, key, "rate")

    def lat(self, mode, rate, field):
        runs = (self.res.get("latency") or {}).get(mode, []) if isinstance(self.res.get("latency"), dict) else []
        vals = []
        for run in runs:
            for x in run:
                if x.get("rate") == rate and "error" not in x:
                    vals.append(x.get(field))
        return med(vals)

    def lat_rates(self, mode):
        runs = (self.res.get("latency") or {}).get(mode, []) if isinstance(self.res.get("latency"), dict) else []
        return sorted({x["rate"] for run in runs for x in run if "rate" in x and "error" not in x})

    def lat_behind(self, mode, rate):
        runs = (self.res.get("latency") or {}).get(mode, []) if isinstance(self.res.get("latency"), dict) else []
        flags = [x.get("behind") for run in runs for x in run if x.get("rate") == rate]
        return any(flags) if flags else None

    def lat_errors(self, mode):
        runs = (self.res.get("latency") or {}).get(mode, []) if isinstance(self.res.get("latency"), dict) else []
        return [x["error"] for run in runs for x in run if "error" in x]

    def rss_max(self, mode):
        vals = []
        for runs in self.tp.values():
            for x in runs:
                if isinstance(x.get(mode), dict):
                    vals.append(x[mode].get("rss_mb"))
        lat = self.res.get("latency") if isinstance(self.res.get("latency"), dict) else {}
        for run in lat.get(mode, []):
            for x in run:
                vals.append(x.get("rss_mb"))
        vals = [v for v in vals if v]
        return max(vals) if vals else None

    def idle(self, mode, field):
        runs = (self.res.get("idle") or {}).get(mode, []) if isinstance(self.res.get("idle"), dict) else []
        return med([x.get(field) for x in runs if "error" not in x])

    def dbz(self, variant, what, rate=None, field=None):
        reps = self.res.get("dbz") if isinstance(self.res.get("dbz"), list) else []
        vals = []
        for rep in reps:
            v = rep.get(variant)
            if not isinstance(v, dict):
                continue
            if what == "drain":
                vals.append((v.get("drain") or {}).get(field))
            elif what == "rate":
                for x in v.get("rates", []):
                    if x.get("rate") == rate and "error" not in x:
                        vals.append(x.get(field))
            elif what == "rss":
                vals.append(v.get("rss_mb"))
        return med(vals)

    def dbz_behind(self, variant, rate):
        reps = self.res.get("dbz") if isinstance(self.res.get("dbz"), list) else []
        flags = [x.get("behind") for rep in reps if isinstance(rep.get(variant), dict)
                 for x in rep[variant].get("rates", []) if x.get("rate") == rate]
        return f" (fell behind in {sum(map(bool, flags))}/{len(flags)})" if any(flags) else ""

    def dbz_errors(self):
        reps = self.res.get("dbz") if isinstance(self.res.get("dbz"), list) else []
        errs = []
        for rep in reps:
            if rep.get("debezium_error"):
                errs.append(rep["debezium_error"])
            for k, v in rep.items():
                if isinstance(v, dict) and v.get("error"):
                    errs.append(f"{k}: {v['error']}")
        return sorted(set(errs))


def mode_table(v, mode, res):
    cfg = res["config"]
    db_key = "claim" if mode == "poll" else "recvlogical"
    db_name = "claim+mark loop, relay's SQL" if mode == "poll" else "pg_recvlogical, pgoutput"
    best_dbz = "debezium-tuned" if v.dbz("debezium-tuned", "drain", field="rate_stream") else "debezium-default"
    rows = []
    hdr = ("| Metric | Relay | DB ceiling | Relay ÷ DB | Producer ceiling | Relay ÷ producer | Debezium "
           f"({best_dbz.split('-')[1]}) | Relay vs Debezium |")
    rows.append(hdr)
    rows.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for p in cfg["payloads"]:
        relay = v.drain(p, mode)
        db = v.ceiling(p, db_key)
        prod = v.ceiling(p, "producer")
        cap = " (capped)" if v.drain_flag(p, mode, "capped") else ""
        dbz_cells = "| | "
        if p == 200:
            d = v.dbz(best_dbz, "drain", field="rate_stream")
            rel = v.dbz(f"relay-{mode}", "drain", field="rate_stream")
            dbz_cells = f"| {f(d)} | {r(rel, d)}× |"
        rows.append(f"| Drain {cfg['backlog'][str(p)]:,} × {p} B, events/s{cap} | {f(relay)} | {f(db)} | {r(relay, db)} | "
                    f"{f(prod)} | {r(relay, prod)} {dbz_cells}")
    for p in cfg["payloads"]:
        relay = v.drain(p, mode, "cpu_per_100k")
        prod = med([x.get("producer", {}).get("cpu_s", 0) / max(1, x.get("producer", {}).get("events", 1)) * 1e5
                    for x in v.tp.get(str(p), []) if "error" not in x.get("producer", {})])
        dcpu = v.dbz(best_dbz, "drain", field="cpu_per_100k") if p == 200 else None
        dcell = f"| {f(dcpu, 2)} | |" if p == 200 else "| | |"
        rows.append(f"| CPU s per 100k events, {p} B drain | {f(relay, 2)} | | | {f(prod, 2)} | {dcell}")
    for p in cfg["payloads"]:
        rows.append(f"| Peak RSS MB, {p} B drain | {f(v.drain(p, mode, 'rss_mb'))} | | | | | | |")
    for rate in v.lat_rates(mode):
        p50, p99, p999 = (v.lat(mode, rate, k) for k in ("p50_ms", "p99_ms", "p999_ms"))
        behind = " (fell behind)" if v.lat_behind(mode, rate) else ""
        gl = " (generator short of rate)" if any(
            x.get("gen_limited") for run in (res.get("latency") or {}).get(mode, []) for x in run
            if x.get("rate") == rate) else ""
        dcell = "| | |"
        d99 = v.dbz(best_dbz, "rate", rate, "p99_ms")
        if d99 is not None:
            rel99 = v.dbz(f"relay-{mode}", "rate", rate, "p99_ms")
            dcell = f"| {f(v.dbz(best_dbz, 'rate', rate, 'p50_ms'))} / {f(d99)} / " \
                    f"{f(v.dbz(best_dbz, 'rate', rate, 'p999_ms'))}{v.dbz_behind(best_dbz, rate)} | " \
                    f"p99 {r(rel99, d99, invert=True)}× lower |"
        rows.append(f"| Latency p50 / p99 / p99.9 ms at {rate:,}/s{behind}{gl} | {f(p50)} / {f(p99)} / {f(p999)} "
                    f"| | | | {dcell}")
        rows.append(f"| Peak RSS MB up to the end of {rate:,}/s | {f(v.lat(mode, rate, 'rss_mb_so_far'))} | | | | | "
                    f"{f(v.dbz(best_dbz, 'rss')) if d99 is not None else ''} | |")
    rows.append(f"| Idle → first event ms, p50 / max | {f(v.idle(mode, 'p50_ms'))} / {f(v.idle(mode, 'max_ms'))} "
                f"| | | | | | |")
    return "\n".join(rows), db_name


def targets(v, res, wal_ok):
    out = ["| Target | Mode | Measured | Verdict |", "|---|---|---|---|"]
    cfg = res["config"]
    for mode in (["poll", "wal"] if wal_ok else ["poll"]):
        db_key = "claim" if mode == "poll" else "recvlogical"
        ratios = [(p, v.drain(p, mode), v.ceiling(p, db_key)) for p in cfg["payloads"]]
        vals = [a / b for _, a, b in ratios if a and b]
        txt = ", ".join(f"{p} B: {r(a, b)}" for p, a, b in ratios)
        out.append(f"| ≥ 80% of its DB ceiling | {mode} | {txt} | {ok(min(vals) >= TARGETS['ceiling'] if vals else None)} |")
        p99 = v.lat(mode, 5000, "p99_ms")
        out.append(f"| p99 ≤ 15 ms at 5k events/s | {mode} | {f(p99)} ms | {ok(p99 <= TARGETS['p99_ms_at_5k'] if p99 else None)} |")
        rss = v.rss_max(mode)
        out.append(f"| RSS ≤ 50 MB | {mode} | max {f(rss)} MB | {ok(rss <= TARGETS['rss_mb'] if rss else None)} |")
        for variant in ("debezium-default", "debezium-tuned"):
            d = v.dbz(variant, "drain", field="rate_stream")
            rel = v.dbz(f"relay-{mode}", "drain", field="rate_stream")
            out.append(f"| ≥ 5× Debezium throughput ({variant.split('-')[1]}) | {mode} | {r(rel, d)}× "
                       f"({f(rel)} vs {f(d)} events/s) | {ok(rel / d >= TARGETS['dbz_tput'] if rel and d else None)} |")
            for rate in cfg["dbz_rates"]:
                d99 = v.dbz(variant, "rate", rate, "p99_ms")
                r99 = v.dbz(f"relay-{mode}", "rate", rate, "p99_ms")
                out.append(f"| ≥ 20× lower p99 than Debezium ({variant.split('-')[1]}) at {rate:,}/s | {mode} | "
                           f"{r(r99, d99, invert=True)}× ({f(r99)} vs {f(d99)} ms) | "
                           f"{ok(d99 / r99 >= TARGETS['dbz_p99'] if d99 and r99 else None)} |")
    return "\n".join(out)


def dbz_table(v, res):
    cfg = res["config"]
    names = ["relay-poll", "relay-wal", "debezium-default", "debezium-tuned"]
    rows = ["| Metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    rows.append(f"| Drain {cfg['dbz_backlog']:,} × 200 B, events/s (first → last record) | " +
                " | ".join(f(v.dbz(n, "drain", field="rate_stream")) for n in names) + " |")
    rows.append("| Drain, events/s (process start → last record) | " +
                " | ".join(f(v.dbz(n, "drain", field="rate_wall")) for n in names) + " |")
    rows.append("| Start → first record, s | " +
                " | ".join(f(v.dbz(n, "drain", field="startup_s"), 2) for n in names) + " |")
    rows.append("| CPU s per 100k events (drain, incl. start-up) | " +
                " | ".join(f(v.dbz(n, "drain", field="cpu_per_100k"), 2) for n in names) + " |")
    for rate in cfg["dbz_rates"]:
        rows.append(f"| p50 / p99 / p99.9 ms at {rate:,}/s | " + " | ".join(
            f"{f(v.dbz(n, 'rate', rate, 'p50_ms'))} / {f(v.dbz(n, 'rate', rate, 'p99_ms'))} / "
            f"{f(v.dbz(n, 'rate', rate, 'p999_ms'))}{v.dbz_behind(n, rate)}" for n in names) + " |")
        rows.append(f"| delivered events/s at {rate:,}/s | " +
                    " | ".join(f(v.dbz(n, "rate", rate, "delivered_rate")) for n in names) + " |")
    rows.append("| Peak RSS MB | " + " | ".join(f(v.dbz(n, "rss")) for n in names) + " |")
    return "\n".join(rows)


def tuning_table(res):
    t = res.get("tune")
    if not isinstance(t, list) or not t:
        return None
    multi = any(len(x.get("runs", [])) > 1 for x in t)
    rows = ["| Mode | Setting | Drain events/s | CPU s/100k | p50 / p99 / p99.9 ms at steady rate | RSS MB |" +
            (" drain runs | p99 runs |" if multi else ""),
            "|---|---|---:|---:|---:|---:|" + ("---|---|" if multi else "")]
    for x in t:
        d, s_ = x.get("drain", {}), x.get("steady", {})
        line = (f"| {x['mode']} | {x['knob']}={x['value']} | {f(d.get('rate_wall'))} | "
                f"{f(d.get('cpu_per_100k'), 2)} | {f(s_.get('p50_ms'))} / {f(s_.get('p99_ms'))} / "
                f"{f(s_.get('p999_ms'))} | {f(max(d.get('rss_mb') or 0, s_.get('rss_mb') or 0))} |")
        if multi:
            line += (" " + ", ".join(f(v) for v in x.get("drain_runs", [])) + " | " +
                     ", ".join(f(v) for v in x.get("p99_runs", [])) + " |")
        rows.append(line)
    return "\n".join(rows)


def plot(res, v, path, wal_ok):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    has_tune = isinstance(res.get("tune"), list) and res["tune"]
    if has_tune:
        fig = plt.figure(figsize=(14, 11))
        grid = fig.add_gridspec(2, 2, height_ratios=[1, 0.8])
        axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])]
    else:
        fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    ax = axes[0]
    styles = {"p50_ms": ":", "p99_ms": "-", "p999_ms": "--"}
    colors = {"poll": "tab:blue", "wal": "tab:green", "debezium-default": "tab:red", "debezium-tuned": "tab:orange"}
    for mode in (["poll", "wal"] if wal_ok else ["poll"]):
        rates = v.lat_rates(mode)
        for k, ls in styles.items():
            ys = [v.lat(mode, r_, k) for r_ in rates]
            pts = [(r_, y) for r_, y in zip(rates, ys) if y]
            if pts:
                ax.plot(*zip(*pts), ls, marker="o", color=colors[mode], label=f"relay {mode} {k[:-3]}")
    for name in ("debezium-default", "debezium-tuned"):
        for k, ls in styles.items():
            pts = [(r_, v.dbz(name, "rate", r_, k)) for r_ in res["config"]["dbz_rates"]]
            pts = [(a, b) for a, b in pts if b]
            if pts:
                ax.plot(*zip(*pts), ls, marker="s", color=colors[name], label=f"{name} {k[:-3]}")
    ax.axhline(15, color="grey", lw=0.8)
    ax.text(ax.get_xlim()[0] if False else 900, 16, "15 ms target", color="grey", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("target rate, events/s")
    ax.set_ylabel("commit → visible to consumer, ms")
    ax.set_title("End-to-end latency")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)

    ax = axes[1]
    payloads = res["config"]["payloads"]
    bars = [("poll relay", "poll", "rate_wall"), ("claim loop (relay SQL)", "claim", "rate"),
            ("claim loop (0262e23 SQL)", "claim_old", "rate")]
    if wal_ok:
        bars += [("wal relay", "wal", "rate_wall")]
    bars += [("pg_recvlogical", "recvlogical", "rate"), ("raw producer", "producer", "rate")]
    width = 0.8 / len(payloads)
    for i, p in enumerate(payloads):
        ys = [v.drain(p, key, field) or 0 for _, key, field in bars]
        xs = [j + i * width for j in range(len(bars))]
        b = ax.bar(xs, ys, width, label=f"{p} B")
        for x, y in zip(xs, ys):
            ax.text(x, y, f"{y / 1000:.1f}k", ha="center", va="bottom", fontsize=7)
    ax.set_xticks([j + width * (len(payloads) - 1) / 2 for j in range(len(bars))])
    ax.set_xticklabels([b[0] for b in bars], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("events/s")
    ax.set_title("Draining a backlog (" + ", ".join(f"{n:,} × {p} B" for p, n in res['config']['backlog'].items()) + ")")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)

    if has_tune:
        ax = axes[2]
        labels, ys, p99s = [], [], []
        for x in res["tune"]:
            labels.append(f"{x['mode']} {x['knob']}={x['value']}")
            ys.append(x.get("drain", {}).get("rate_wall") or 0)
            p99s.append(x.get("steady", {}).get("p99_ms") or 0)
        pos = range(len(labels))
        ax.barh(list(pos), ys, color="tab:blue", alpha=0.7, label="drain events/s")
        ax.set_yticks(list(pos))
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xlabel("drain events/s (bars)")
        ax2 = ax.twiny()
        ax2.plot(p99s, list(pos), "o", color="tab:red", label=f"p99 ms at {res['config']['tune_rate']:,}/s")
        ax2.set_xlabel(f"p99 ms at {res['config']['tune_rate']:,}/s (dots)", color="tab:red")
        ax.set_title("Tuning", pad=30)
        ax.invert_yaxis()
    fig.suptitle(f"outbox-relay bench, {res['profile']} run, {res['env']['date']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


ALO, EOS = "at-least-once", "exactly-once"


def eos_section(eo, cfg, wal_ok):
    """The exactly-once section: drains and latency, at-least-once beside exactly-once, pair by pair."""
    md = ["## Exactly-once against at-least-once, pair by pair", ""]
    runs = eo.get("drain", [])
    md.append(f"{len(runs)} runs on the same services; in each, one backlog drained by an at-least-once relay and "
              f"the same backlog by an `--exactly-once` relay (which goes first alternates by run; WAL: the same WAL, "
              f"one slot each), then each under steady load. A drain is events / (process start → exit with "
              f"`--exit-when-idle`: every record acknowledged, every transaction committed, every row marked or the "
              f"slot confirmed). Each cell: at-least-once / exactly-once events/s (their ratio).")
    first = eo.get("first_start") or {}
    if first:
        md.append("")
        md.append("Before the runs, the first `--exactly-once` start on this new cluster, which creates the checkpoint "
                  "topic and has the broker create its transaction log (once per cluster, so kept out of the runs): "
                  "relay start to exit with nothing to publish, " +
                  ", ".join(f"{m} {f(x.get('seconds'), 2)} s" for m, x in first.items()) + ".")
    md.append("")
    md.append("| drain | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) +
              " | worst ALO / worst EOS (ratio) | lowest pair ratio | peak RSS MB, ALO / EOS (worst) |")
    md.append("|---|" + "---|" * len(runs) + "---:|---:|---:|")
    modes = ["poll", "wal"] if wal_ok else ["poll"]
    for payload in cfg["payloads"]:
        for mode in modes:
            cells, ratios, a_all, e_all = [], [], [], []
            for run in runs:
                a, e = run.get(f"{mode} {payload} {ALO}"), run.get(f"{mode} {payload} {EOS}")
                if not a or not e:
                    cells.append("n/a")
                    continue
                a_all.append(a)
                e_all.append(e)
                bad = any(x.get("error") or (x.get("events") or 0) < x.get("expected") for x in (a, e))
                ra, re_ = a.get("rate_wall"), e.get("rate_wall")
                if ra and re_:
                    ratios.append(re_ / ra)
                cells.append(f"{f(ra, 0)} / {f(re_, 0)} ({r(re_, ra)})" + (" (incomplete)" if bad else ""))
            wa, we = worst(a_all, "rate_wall"), worst(e_all, "rate_wall")
            n = cfg["backlog"].get(payload, cfg["backlog"].get(str(payload)))  # JSON keys are strings
            md.append(f"| {mode}, {n:,} × {payload} B | " + " | ".join(cells) +
                      f" | {f(wa, 0)} / {f(we, 0)} ({r(we, wa)}) | {f(min(ratios), 2) if ratios else 'n/a'} | "
                      f"{f(worst(a_all, 'rss_mb', True))} / {f(worst(e_all, 'rss_mb', True))} |")
    md.append("")
    lat = eo.get("latency", [])
    md.append(f"Latency (COMMIT returned → visible to the probe, a `read_committed` consumer), {cfg['steady_s']} s per "
              f"rate, each relay started fresh per run. Each cell: p50 / p99 ms, at-least-once → exactly-once.")
    md.append("")
    md.append("| mode, rate/s | " + " | ".join(f"run {i + 1}" for i in range(len(lat))) +
              " | worst p99 ALO / EOS (ratio) | highest pair p99 ratio |")
    md.append("|---|" + "---|" * len(lat) + "---:|---:|")
    for mode in modes:
        for j, rate in enumerate((1000, 5000)):
            cells, ratios, pa, pe = [], [], [], []
            for run in lat:
                def at(v):
                    xs = run.get(f"{mode} {v}") or []
                    x = xs[j] if j < len(xs) else None
                    return x if x and not x.get("error") and x.get("rate") == rate else None
                a, e = at(ALO), at(EOS)
                if not a or not e:
                    cells.append("n/a")
                    continue
                pa.append(a["p99_ms"])
                pe.append(e["p99_ms"])
                ratios.append(e["p99_ms"] / a["p99_ms"] if a["p99_ms"] else None)
                cells.append(f"{f(a['p50_ms'])} / {f(a['p99_ms'])} → {f(e['p50_ms'])} / {f(e['p99_ms'])}")
            ratios = [x for x in ratios if x is not None]
            md.append(f"| {mode}, {rate:,} | " + " | ".join(cells) +
                      f" | {f(max(pa) if pa else None)} / {f(max(pe) if pe else None)} "
                      f"({r(max(pe) if pe else None, max(pa) if pa else None)}) | "
                      f"{f(max(ratios), 1) if ratios else 'n/a'} |")
    md.append("")
    return "\n".join(md)


def write(res, out_dir, stem):
    v = View(res)
    wal_ok = not res.get("wal_error")
    cfg = res["config"]
    env = res["env"]
    png = stem + ".png"
    try:
        plot(res, v, os.path.join(out_dir, png), wal_ok)
        plot_err = None
    except Exception as e:  # the numbers matter more than the picture
        plot_err = str(e)
    md = [f"# outbox-relay benchmark — {res['profile']} run, {env['date']}", ""]
    md.append(f"Host: {env['host']}; load average before the run {' '.join(env['loadavg_before'])}. "
              f"PostgreSQL {env['postgres']}, Kafka {env['kafka']} (1 KRaft broker, 3 partitions per topic), "
              f"librdkafka {env['librdkafka']}, {env['java']}.  ")
    md.append(f"Relay: {env['relay']}.  ")
    md.append(f"Own PostgreSQL and Kafka on loopback (not the test instances). "
              f"{'Median of ' + str(cfg['reps']) + ' runs' if cfg['reps'] > 1 else 'One run'} per figure; "
              f"total {res.get('total_s', 0) / 60:.1f} min. Raw numbers: `{stem}.json`.")
    md.append("")
    if not wal_ok:
        md.append(f"**WAL mode not measured**: {res.get('wal_error')}")
        md.append("")
    md.append(f"![plots]({png})" if not plot_err else f"(plot failed: {plot_err})")
    md.append("")
    md.append("## Targets")
    md.append("")
    md.append(targets(v, res, wal_ok))
    md.append("")
    for mode in (["poll", "wal"] if wal_ok else ["poll"]):
        table, db_name = mode_table(v, mode, res)
        md.append(f"## {mode} mode")
        md.append("")
        md.append(f"DB ceiling: {db_name}. Producer ceiling: librdkafka alone, same records and the relay's "
                  f"producer properties. Debezium columns: Debezium Server on the Debezium-style table; the ratio "
                  f"compares it with the relay on that same table.")
        md.append("")
        md.append(table)
        errs = v.lat_errors(mode)
        if errs:
            md.append("")
            md.append("Errors: " + "; ".join(sorted(set(errs))))
        md.append("")
    lr = res.get("latency-runs")
    if isinstance(lr, dict) and "error" not in lr:
        md.append("## Latency, run by run")
        md.append("")
        md.append(f"{len(lr.get('floor', []))} consecutive runs; in each, the producer alone (librdkafka with the "
                  f"relay's properties, linger.ms=2 included, paced, send -> visible to the probe; the relay "
                  f"flushes once a batch is sent, so its last records do not linger and it can be below this floor) and then a relay per mode under steady "
                  f"load (COMMIT returned -> visible to the probe), {cfg['steady_s']} s per rate. Milliseconds.")
        md.append("")
        md.append("| run | rate/s | producer p50 / p99 / p99.9 / max | poll p50 / p99 / p99.9 / max | "
                  "wal p50 / p99 / p99.9 / max |")
        md.append("|---:|---:|---|---|---|")
        def cell(x):
            if not x or x.get("error"):
                return (x or {}).get("error", "n/a")
            return " / ".join(f(x.get(k)) for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms"))
        for i, floor in enumerate(lr.get("floor", [])):
            for j, fl in enumerate(floor):
                modes = []
                for mode in ("poll", "wal"):
                    runs = lr.get(mode, [])
                    x = runs[i][j] if i < len(runs) and j < len(runs[i]) else None
                    modes.append(cell(x))
                md.append(f"| {i + 1} | {fl['rate']} | {cell(fl)} | {modes[0]} | {modes[1]} |")
        md.append("")
        if any((x or {}).get("stages_ms") for mode in ("poll", "wal") for run in lr.get(mode, []) for x in run):
            md.append("Each batch's stages in the same runs, from the relay's own histograms (`/metrics`, "
                      "`outbox_relay_batch_{fetch,publish,settle}_seconds`, mean per batch in ms): fetch = the claim "
                      "(poll) or the take from the stream (WAL: it includes waiting for the next transaction, so "
                      "it is mostly idle time at these rates); publish = fetched → every record acknowledged "
                      "(librdkafka's linger and the broker's acks=all round trip, and any wait behind the batch "
                      "before it); settle = acknowledged → marked / confirmed (after the records are visible: it "
                      "delays the next batch only when pipelining cannot hide it).")
            md.append("")
            md.append("| run | rate/s | poll: batches, events/batch, fetch / publish / settle | "
                      "wal: batches, events/batch, fetch / publish / settle |")
            md.append("|---:|---:|---|---|")

            def stages(x):
                st = (x or {}).get("stages_ms")
                if not st or not st.get("batches"):
                    return "n/a"
                per = (x.get("matched") or 0) / st["batches"]
                return (f"{st['batches']:,}, {per:.1f}, " +
                        " / ".join(f(st.get(k), 2) for k in ("fetch", "publish", "settle")))
            for i, floor in enumerate(lr.get("floor", [])):
                for j, fl in enumerate(floor):
                    cells = []
                    for mode in ("poll", "wal"):
                        runs = lr.get(mode, [])
                        cells.append(stages(runs[i][j] if i < len(runs) and j < len(runs[i]) else None))
                    md.append(f"| {i + 1} | {fl['rate']} | {cells[0]} | {cells[1]} |")
            md.append("")
    eo = res.get("exactly-once")
    if isinstance(eo, dict) and "error" not in eo:
        md.append(eos_section(eo, cfg, wal_ok))
    mem = res.get("memory")
    if isinstance(mem, dict) and "error" not in mem:
        md.append("## Memory: peak RSS by memory budget")
        md.append("")
        md.append(f"Each drain `--exit-when-idle` over the same backlog (WAL: the same WAL, one slot per run), at the "
                  f"default `--memory-budget` (8 MiB), at larger ones, and unbound (`--memory-budget 4GiB "
                  f"--batch-bytes 0B`: a 1 GiB read-ahead, batches bounded by `--batch-size` alone, no transaction "
                  f"chunked), in turn, {cfg.get('mem_reps')} runs of each. Worst run shown: highest peak RSS, "
                  f"lowest rate (events / process start to last event visible in Kafka).")
        md.append("")
        md.append("| Drain | budget | peak RSS, MB (worst) | events/s (worst) | ÷ unbound (worst ÷ worst) |")
        md.append("|---|---|---:|---:|---:|")
        for key, m in mem.items():
            ub = worst(m["runs"].get("unbound", []), "rate_wall", False)
            for name, runs in m["runs"].items():
                incomplete = any(x.get("events") != x.get("expected") for x in runs)
                rate = worst(runs, "rate_wall", False)
                md.append(f"| {key} | {name} | {f(worst(runs, 'rss_mb', True))} | {f(rate, 0)} | {r(rate, ub)} |" +
                          (" (incomplete run)" if incomplete else ""))
        md.append("")
    dt = res.get("dbz-tune")
    if isinstance(dt, dict) and "steps" in dt:
        md.append("## Debezium Server, tuned step by step")
        md.append("")
        md.append(f"Debezium Server {dt['version']} (java: `{dt['java']}`) with the Outbox Event Router, each drain one "
                  f"process over the same backlog of {dt['events']:,} × 200 B events on the Debezium-style table "
                  f"(pgoutput, its own slot), {len(dt['steps'][0]['runs'])} round(s); each step keeps the settings of the "
                  f"steps above it. Stream: first → last record in Kafka (without the JVM's start); wall: process "
                  f"start → last record. The relay over the same backlog and table below. Worst run shown.")
        md.append("")
        md.append("| step | stream events/s, each run | worst stream | worst wall | peak RSS MB |")
        md.append("|---|---|---:|---:|---:|")
        best = None
        for st in dt["steps"]:
            runs = st["runs"]
            ws = worst(runs, "rate_stream")
            best = ws if best is None or (ws or 0) > best else best
            errs = [x["error"] for x in runs if x.get("error")]
            rss = [x.get("rss_mb") for x in runs if x.get("rss_mb")]
            md.append(f"| {st['name']} | {' / '.join(f(x.get('rate_stream'), 0) for x in runs)} | {f(ws, 0)} | "
                      f"{f(worst(runs, 'rate_wall'), 0)} | {f(max(rss) if rss else None, 0)} |" +
                      (f" ({errs[0][:80]})" if errs else ""))
        for mode, runs in dt.get("relay", {}).items():
            ws = worst(runs, "rate_stream")
            rss = [x.get("rss_mb") for x in runs if x.get("rss_mb")]
            md.append(f"| **outbox-relay {mode}** (defaults) | {' / '.join(f(x.get('rate_stream'), 0) for x in runs)} | "
                      f"{f(ws, 0)} ({r(ws, best)} of the best Debezium step) | {f(worst(runs, 'rate_wall'), 0)} | "
                      f"{f(max(rss) if rss else None, 0)} |")
        md.append("")
        md.append("Settings of each step: " + "; ".join(
            f"{st['name']}: " + (", ".join(f"`{k}={v}`" for k, v in st["settings"].items()) or "none")
            for st in dt["steps"][-1:]) + " (the last step, all settings).")
        md.append("")
    nt = res.get("new-topic")
    if isinstance(nt, dict) and "error" not in nt:
        md.append("## Into a topic that does not exist yet")
        md.append("")
        md.append(f"Poll-mode drains of {nt['events']:,} × 200 B events, `--exit-when-idle`, process start to exit "
                  f"(every record acknowledged), into a topic created beforehand and into one the broker "
                  f"auto-creates on the relay's first request, alternating, {len(nt['existing'])} runs each.")
        md.append("")
        md.append("| topic | seconds, each run | worst |")
        md.append("|---|---|---:|")
        for kind in ("existing", "auto-created"):
            runs = nt.get(kind, [])
            secs = [x["elapsed_s"] for x in runs]
            bad = any(x.get("error") for x in runs)
            md.append(f"| {kind} | {' / '.join(f(x, 2) for x in secs)} | {f(max(secs), 2) if secs else 'n/a'} |" +
                      (" (a run failed)" if bad else ""))
        md.append("")
    if "throughput" in res and v.tp and any("claim_with_producer" in x for runs in v.tp.values() for x in runs):
        md.append("### Poll mode: both ceilings at once")
        md.append("")
        md.append("The claim+mark loop and the raw producer run at the same time for the same window (short enough "
                  "that neither runs out of data), each on its own data, sharing the host as the relay's drain shares "
                  "it with PostgreSQL and the broker. The slower of the two is about what any relay could reach here; "
                  "the relay's drain is given as a share of it.")
        md.append("")
        md.append("| Payload | claim loop alone | claim loop with the producer | producer alone | producer with the "
                  "claim loop | relay (poll) | relay ÷ slower of the pair |")
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        for p in cfg["payloads"]:
            c1, c2 = v.ceiling(p, "claim"), v.ceiling(p, "claim_with_producer")
            p1, p2 = v.ceiling(p, "producer"), v.ceiling(p, "producer_with_claim")
            relay = v.drain(p, "poll")
            both = min(c2, p2) if c2 and p2 else None
            md.append(f"| {p} B | {f(c1)} | {f(c2)} | {f(p1)} | {f(p2)} | {f(relay)} | {r(relay, both)} |")
        md.append("")
    if "throughput" in res and v.tp:
        md.append("### Poll claim loop: the relay's SQL now vs commit 0262e23's")
        md.append("")
        md.append("0262e23 ordered the claim by `id`, which PostgreSQL resolves to the output column `id::text AS id`:"
                  " every claim sorted all pending rows as text (and in text order). The tree now orders by `o.id`.")
        md.append("")
        md.append("| Payload | relay SQL now, events/s | 0262e23 SQL, events/s (first run only) | speed-up |")
        md.append("|---|---:|---:|---:|")
        for p in cfg["payloads"]:
            a, b = v.ceiling(p, "claim"), v.ceiling(p, "claim_old")
            capped = any(x.get("claim_old", {}).get("timed_out") for x in v.tp.get(str(p), []))
            md.append(f"| {p} B | {f(a)} | {f(b)}{' (capped at ' + str(cfg['claim_cap']) + ' s)' if capped else ''} | "
                      f"{r(a, b)}× |")
        sqls = [x.get("poll", {}).get("claim_sql") for runs in v.tp.values() for x in runs]
        sqls = [s for s in sqls if s]
        md.append("")
        md.append("Claim statement captured from the relay (pg_stat_activity): " +
                  (f"`{sqls[0]}`" if sqls else "not captured; bench_claim rebuilt it from core::Layout"))
        md.append("")
    w = res.get("writer")
    if isinstance(w, dict) and "on" in w:
        md.append("## Writer ceiling (the application side)")
        md.append("")
        md.append(f"One event per transaction, 8 connections, {cfg['writer_s']} s: "
                  f"**{f(w['on'].get('rate'))} commits/s** with the `outbox_notify` trigger (commit p50 "
                  f"{f(w['on'].get('commit_ms_p50'))} ms), **{f(w['off'].get('rate'))} commits/s** without it "
                  f"(p50 {f(w['off'].get('commit_ms_p50'))} ms). PostgreSQL serializes the commits of every "
                  f"transaction that ran NOTIFY (a database-wide lock held through the WAL flush), so the trigger "
                  f"disables group commit. The steady-load runs therefore write "
                  f"{', '.join(f'{r_:,}/s as {max(1, round(r_ / 200))} events per transaction' for r_ in cfg['lat_rates'])} "
                  f"from 4 connections.")
        md.append("")
    deg = res.get("degrade")
    if isinstance(deg, list) and deg and "error" not in deg[0]:
        b = med([x.get("baseline", {}).get("rate_wall") for x in deg])
        s = med([x.get("snapshot", {}).get("rate_wall") for x in deg])
        capped = any(x.get("snapshot", {}).get("capped") or x.get("baseline", {}).get("capped") for x in deg)
        md.append("## Degradation: an open REPEATABLE READ snapshot")
        md.append("")
        md.append(f"Poll mode draining {cfg['degrade_backlog']:,} × 200 B: {f(b)} events/s without, "
                  f"{f(s)} events/s while another session holds a REPEATABLE READ snapshot "
                  f"({r(s, b)}×{'; runs capped at ' + str(cfg['drain_cap']) + ' s' if capped else ''}).")
        md.append("")
    snap = res.get("snapshot")
    if isinstance(snap, dict) and "error" not in snap:
        md.append(f"## Claim latency behind an old snapshot (poll mode)")
        md.append("")
        md.append(f"Steady writes at {snap['rate']:,} events/s into a running relay; another session opens a "
                  f"REPEATABLE READ snapshot and keeps it {snap['age_s'] // 60} min, so nothing deleted since "
                  f"can be vacuumed. Claim time = the relay's \"fetched in\" timing per batch (claim statement and "
                  f"row mapping). Then {snap['backlog']:,} events are added at once and drained, behind the aged "
                  f"snapshot and again after it closed (and a VACUUM).")
        md.append("")
        md.append("| Phase | batches | claim p50 ms | claim p99 ms | claim max ms |")
        md.append("|---|---:|---:|---:|---:|")

        def claim_row(name, c):
            md.append(f"| {name} | {c['batches']:,} | {f(c['p50'], 2)} | {f(c['p99'], 2)} | {f(c['max'], 2)} |")
        claim_row("no snapshot", snap["baseline"])
        for i, c in enumerate(snap["minutes"]):
            claim_row(f"snapshot age {i}-{i + 1} min", c)
        for tag, name in (("old", "drain behind the aged snapshot"), ("new", "drain after it closed")):
            d = snap[f"drain_{tag}"]
            claim_row(f"{name}: {f(d['rate'])} events/s", d["claims"])
        md.append("")
    if isinstance(res.get("dbz"), list):
        md.append("## Peer: Debezium Server on the same table and broker")
        md.append("")
        md.append(f"Debezium Server {os.environ.get('DEBEZIUM_VERSION', '2.7.3.Final')} (PostgreSQL connector, "
                  f"pgoutput, Outbox Event Router, Kafka sink with acks=all and idempotence), table "
                  f"`dbz_outbox (id uuid, aggregatetype, aggregateid, type, payload jsonb)`, JSON key/value without "
                  f"schemas. **default**: Debezium's defaults (poll.interval.ms 500, max.batch.size 2048, "
                  f"max.queue.size 8192, producer linger.ms 0 / batch.size 16384). **tuned**: "
                  f"poll.interval.ms 10, max.batch.size 4096, max.queue.size 16384; the sink's producer stays at "
                  f"linger.ms 0 (with linger.ms 5 it managed 160 events/s: the 2.7 Kafka sink waits for records one "
                  f"by one, so linger is paid per record). JVM heap left at its default. The relay runs with `--layout debezium`. Same probe for all.")
        md.append("")
        md.append(dbz_table(v, res))
        errs = v.dbz_errors()
        if errs:
            md.append("")
            md.append("Errors: " + "; ".join(errs))
        md.append("")
    tt = tuning_table(res)
    if tt:
        md.append("## Tuning")
        md.append("")
        reps = cfg.get("tune_reps", 1)
        md.append(f"Each row: drain of {cfg['tune_backlog']:,} × 200 B, then steady {cfg['tune_rate']:,} events/s for "
                  f"{cfg['steady_s']} s; {'median of ' + str(reps) + ' runs taken in turn' if reps > 1 else 'one run each'}. "
                  f"Defaults: --batch-size 2000 (and --batch-bytes 2MiB), --pipeline on, linger.ms 2, batch.size 1000000.")
        md.append("")
        md.append(tt)
        md.append("")
    md.append("## Method")
    md.append("")
    md.append(
        "- Backlog: `bench_loadgen` (C++, libpq) writes an `orders` row and an outbox row per event, 100 events per "
        "transaction, then ANALYZE and CHECKPOINT. Relay drains run with `--exit-when-idle`; events/s = events / "
        "(process start → last record visible in Kafka, from the partitions' high watermarks polled every 20 ms).\n"
        "- CPU: utime+stime of the process (/proc/<pid>/stat sampled every 50 ms, and wait4's rusage at exit). "
        "RSS: VmHWM (/proc/<pid>/status, sampled) — the process's peak; in a steady-load run one relay serves the "
        "rates in rising order, so its peak is given as of the end of each rate.\n"
        "- Latency: `bench_loadgen` records when each transaction's COMMIT returned (CLOCK_MONOTONIC); "
        "`bench_kafka consume` records when each record reached a consumer on the same host; joined on the event id "
        "in the record key. Each rate runs for the configured time after a warm-up event, against a fresh topic.\n"
        "- Falls behind: the last event is visible more than 1 s after the generator stopped, or p99 > 1 s.\n"
        "- Ceilings: `bench_claim` replays the relay's own claim and mark statements (captured from "
        "pg_stat_activity) with no Kafka; `pg_recvlogical` streams the same WAL with the relay's pgoutput "
        "options to /dev/null; `bench_kafka produce` sends the same records with `kafka::producer_properties`.\n"
        "- A run still going at its cap is stopped and counted as far as it got (marked capped).")
    md.append("")
    timings = res.get("timings", {})
    if timings:
        md.append("Section times (s): " + ", ".join(f"{k} {v_}" for k, v_ in timings.items()))
        md.append("")
        md.append("1-minute load average after each section (this 2-CPU host is shared with other work): " +
                  ", ".join(f"{k} {v_}" for k, v_ in res.get("loadavg_after", {}).items()))
        md.append("")
    with open(os.path.join(out_dir, stem + ".md"), "w") as fh:
        fh.write("\n".join(md))


if __name__ == "__main__":
    path = sys.argv[1]
    with open(path) as fh:
        data = json.load(fh)
    d, base = os.path.split(path)
    write(data, d or ".", base[:-5])
