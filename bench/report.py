# report.py: turns the JSON written by bench.py into the comparison table
# (printed, and written as Markdown), checks the targets from the core and
# health issues, and asks svg.py for the bar chart.
#
# usage: python3 report.py RESULTS.json OUT.md OUT.svg
import json
import sys

import svg

MiB = 1024 * 1024
NA = "n/a"


def fnum(x, digits=3):
    """Three significant digits, no exponent: 0.0123, 1.23, 123, 12345."""
    if x is None:
        return NA
    if x == 0:
        return "0"
    if isinstance(x, int):
        return f"{x:,}"
    ax = abs(x)
    if ax >= 10 ** digits:
        return f"{x:,.0f}"
    for d in range(digits):
        if ax >= 10 ** (digits - 1 - d):
            return f"{x:.{d}f}"
    return f"{x:.{digits}g}"


def ratio(v, ref):
    if v is None or ref in (None, 0):
        return None
    return v / ref


def cell(v, ref, fmt=fnum):
    if v is None:
        return NA
    r = ratio(v, ref)
    return f"{fmt(v)} ({r:.2f}×)" if r is not None else fmt(v)


class Report:
    def __init__(self, d):
        self.d = d
        self.inits = d["inits"]
        self.ref = d["reference"]
        self.notes = []  # footnotes for n/a cells

    def get(self, section, name, *keys):
        """A figure, or None (and a footnote) when it is n/a."""
        sec = self.d.get(section, {})
        if "na" in sec:
            self.note(name, section, sec["na"])
            return None
        e = sec.get(name)
        if e is None:
            kai_na = self.d["kai"].get("na") if name == "kai-init" else None
            self.note(name, section, kai_na or "not measured")
            return None
        for k in keys:
            if not isinstance(e, dict):
                return None
            if "na" in e:
                self.note(name, section, e["na"])
                return None
            e = e.get(k)
            if e is None:
                return None
        return e

    def note(self, name, section, why):
        line = f"{name}, {section}: {why}"
        if line not in self.notes:
            self.notes.append(line)

    # ---------------------------------------------------------------- tables

    def main_rows(self):
        """(label, {init: value}, unit formatter, ratio?) for the init comparison."""
        d = self.d
        rows = []

        def row(label, section, *keys, scale=1.0, use_ratio=True, only=None):
            vals = {}
            for n in self.inits:
                if only and not only(n):
                    vals[n] = None
                    continue
                v = self.get(section, n, *keys)
                vals[n] = v * scale if v is not None and scale != 1.0 else v
            rows.append((label, vals, use_ratio))

        runs = d.get("startup", {}).get("_runs")
        row(f"start-up overhead, µs (median of {runs}, interleaved)", "startup", "overhead_ns", scale=1e-3)
        if "na" not in d.get("hyperfine", {"na": 1}):
            row("start-up overhead, µs (hyperfine -N cross-check)", "hyperfine", "overhead_ns", scale=1e-3)
        secs = d["config"]["idle_seconds"]
        row("idle RSS, KiB", "idle", "rss_kib")
        row("threads", "idle", "threads", use_ratio=False)
        row(f"idle wake-ups in {secs} s (context switches)", "idle", "wakeups")
        static = lambda n: d["binaries"].get(n, {}).get("static") is True  # noqa: E731
        row("binary size, KiB (static builds only)", "binaries", "bytes", scale=1 / 1024, only=static)
        for mode, where in (("same_cpu", "init and child on one CPU"), ("cross_cpu", "on two CPUs")):
            if any(isinstance(v, dict) and mode in v for v in d.get("signals", {}).values()):
                row(f"signal round trip p50, µs ({where})", "signals", mode, "p50_ns", scale=1e-3)
                row(f"signal round trip p99, µs ({where})", "signals", mode, "p99_ns", scale=1e-3)
        nsig = next((v[m]["signals"] for v in d.get("signals", {}).values() if isinstance(v, dict)
                     for m in ("same_cpu",) if m in v), None)
        row(f"signals lost (of {nsig}, one CPU)", "signals", "same_cpu", "lost", use_ratio=False)
        if any(isinstance(v, dict) and "cross_cpu" in v for v in d.get("signals", {}).values()):
            row(f"signals lost (of {nsig}, two CPUs)", "signals", "cross_cpu", "lost", use_ratio=False)
        z = d["config"]["zombies"]
        reps = d["config"]["zombie_reps"]
        row(f"reap {z:,} orphaned zombies as PID 1, ms (median of {reps})", "reaping", "median_ns", scale=1e-6)
        return rows

    def load_note(self):
        m = self.d["meta"]
        busy, other = m.get("busy_before"), m.get("other_busy_during")
        if busy is None or other is None:
            return ""
        note = (f"Other work on the machine: {busy:.0%} of the CPUs busy in the 2 s before the run, "
                f"{other:.0%} during it (machine CPU time minus the benchmark's own).")
        if max(busy, other) > 0.10:
            note += " **Other work was running, so these figures are noisier than on a quiet machine.**"
        return note

    def main_table(self):
        kind = {True: " (static)", False: " (dynamic)"}
        head = ["metric"] + [n + kind.get(self.d["binaries"].get(n, {}).get("static"), "") for n in self.inits]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * len(self.inits)]
        for label, vals, use_ratio in self.main_rows():
            ref = vals.get(self.ref) if use_ratio else None
            cells = []
            for n in self.inits:
                if vals[n] is None and "binary size" in label and self.d["binaries"].get(n, {}).get("static") is False:
                    cells.append(f"dynamic, {fnum(self.d['binaries'][n]['bytes'] / 1024)} + libc")
                else:
                    cells.append(cell(vals[n], ref))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def health_table(self):
        h = self.d.get("health", {})
        if "na" in h:
            self.note("kai-init", "health check", h["na"])
            return f"_health check cost: n/a ({h['na']})_"
        clients = [k for k in h if k != "url"]
        curl = h.get("curl -fsS", {})
        path = "/" + h["url"].split("/", 3)[-1]
        lines = [f"| client (same request: GET {path}) | wall, ms (median) | CPU user+sys, ms (median) | curl ÷ client, wall | curl ÷ client, CPU |",
                 "|---|---:|---:|---:|---:|"]
        for c in clients:
            e = h[c]
            if "na" in e:
                self.note(c, "health check", e["na"])
                lines.append(f"| `{c}` | {NA} | {NA} | {NA} | {NA} |")
                continue
            w, cpu = e["wall_ns"] / 1e6, e["cpu_ns"] / 1e6
            rw = curl.get("wall_ns") / e["wall_ns"] if curl.get("wall_ns") else None
            rc = curl.get("cpu_ns") / e["cpu_ns"] if curl.get("cpu_ns") and e["cpu_ns"] else None
            fail = f" ({e['failed']} of {e['runs']} failed)" if e.get("failed") else ""
            lines.append(f"| `{c}`{fail} | {fnum(w)} | {fnum(cpu)} | "
                         f"{fnum(rw) + '×' if rw else NA} | {fnum(rc) + '×' if rc else NA} |")
        return "\n".join(lines)

    def endpoint_table(self):
        e = self.d.get("endpoint", {})
        if "na" in e:
            self.note("kai-init", "endpoint", e["na"])
            return f"_endpoint throughput: n/a ({e['na']})_"
        lines = ["| wrk against kai-init /healthz | value |", "|---|---:|"]
        for r in e["runs"]:
            lines.append(f"| requests/s, wrk -t1 -c{r['connections']} on CPU {e['client_cpu']}, {e['seconds']} s "
                         f"(kai-init on CPU {e['server_cpu']}; CPU busy: kai-init {r['server_cpu_busy']:.0%}, "
                         f"wrk {r.get('client_cpu_busy', 0):.0%}, other work {r.get('other_busy', 0):.0%} of the machine; non-2xx: "
                         f"{r['non2xx']}; socket errors: {r['socket_errors'] or 'none'}) | {r['rps']:,.0f} |")
        lines += [
            f"| kai-init RSS before, KiB | {e['rss_before_kib']:,} |",
            f"| kai-init RSS after all runs (smaps_rollup, once wrk's connections "
            f"{'were closed' if e.get('closed_after') else 'were NOT all closed within 5 s'}), KiB "
            f"(peak {e['hwm_after_kib']:,}) | {e['rss_after_kib']:,} |",
            f"| kai-init threads after | {e['threads_after']} |",
            f"| still answering after the runs | {'yes' if e['alive_after'] else 'NO'} |",
        ]
        return "\n".join(lines)

    def runs(self, key, what):
        """kai-init's list of runs under `key`, or None (and a footnote naming `what`) when
        the section is n/a or was not measured."""
        sec = self.d.get(key, {"na": "not measured"})
        if "na" in sec:
            self.note("kai-init", what, sec["na"])
            return None
        return sec

    def issue9_table(self):
        """Issue 9: time to ready after listen (bench/ready_after_listen.py) and the cost
        of one /metrics scrape (bench/scrape)."""
        lines = ["| issue 9 | value |", "|---|---:|"]
        ready = self.runs("ready_after_listen", "time to ready after listen")
        if ready is not None:
            for r in ready:
                lines.append(f"| time to ready after the app listens, {r['app']}, --probe-start-interval "
                             f"{r['start_interval']}, ms (median of {r['runs']}; max) | "
                             f"{fnum(r['median_ms'])} ({fnum(r['max_ms'])}) |")
            # Docker's HEALTHCHECK runs every --interval from the start: the app's listen
            # falls anywhere in one interval, so the wait is uniform over (0, interval].
            lines.append("| for reference, Docker's HEALTHCHECK alone (the API image's --interval=10s), "
                         "computed: median; max, ms | 5,000 (10,000) |")
        scrape = self.runs("scrape", "/metrics scrape")
        if scrape is not None:
            for r in scrape:
                lines.append(f"| one /metrics scrape, {r['processes']} processes in the container, ms "
                             f"(median of {r['runs']}; p90) | {fnum(r['median_ms'])} ({fnum(r['p90_ms'])}) |")
                lines.append(f"| kai-init CPU per /metrics scrape, {r['processes']} processes, ms | "
                             f"{fnum(r['kai_cpu_ms_per_scrape'])} |")
        return "\n".join(lines)

    def grpc_table(self):
        """Issue 20: CPU per gRPC health check (bench/grpc_check.py), one process per check
        against a grpcio server, beside `check tcp://` and Python's gRPC client."""
        sec = self.runs("grpc_check", "gRPC health check cost")
        if sec is None:
            return "not measured (see below)"
        lines = ["| client (grpc.health.v1.Health/Check, a grpcio server) | runs | CPU, ms (median) | wall, ms (median) |",
                 "|---|---:|---:|---:|"]
        for name, r in sec.items():
            if "na" in r:
                lines.append(f"| {name} | n/a: {r['na']} | | |")
            else:
                lines.append(f"| {name} | {r['runs']} | {fnum(r['cpu_ms'])} | {fnum(r['wall_ms'])} |")
        return "\n".join(lines)

    # ---------------------------------------------------------------- targets

    def targets(self):
        """[(target, verdict 'holds'|'MISSED'|'n/a', evidence)]"""
        d, ref, out = self.d, self.ref, []

        def add(name, ok, evidence):
            out.append((name, NA if ok is None else ("holds" if ok else "MISSED"), evidence))

        k = self.get("startup", "kai-init", "overhead_ns")
        t = self.get("startup", ref, "overhead_ns")
        add("start-up overhead no worse than tini-static's", None if k is None or t is None else k <= t,
            f"kai-init {fnum(k / 1e3)} µs vs tini-static {fnum(t / 1e3)} µs" if k is not None and t is not None
            else "kai-init not measured")
        rss = self.get("idle", "kai-init", "rss_kib")
        add("idle RSS ≤ 1.2 MiB", None if rss is None else rss * 1024 <= 1.2 * MiB,
            f"{rss} KiB (limit {1.2 * 1024:.0f} KiB)" if rss is not None else "kai-init not measured")
        b = d["binaries"].get("kai-init", {})
        size = b.get("bytes")
        add("static binary ≤ 1.2 MiB", None if size is None else (size <= 1.2 * MiB and b.get("static") is True),
            f"{size:,} bytes, {'static' if b.get('static') else 'NOT static'} (limit {int(1.2 * MiB):,})"
            if size is not None else "kai-init not built")
        p50 = self.get("signals", "kai-init", "same_cpu", "p50_ns")
        lost = self.get("signals", "kai-init", "same_cpu", "lost")
        x50 = self.get("signals", "kai-init", "cross_cpu", "p50_ns")
        xr = self.get("signals", ref, "cross_cpu", "p50_ns")
        ev = (f"p50 {fnum(p50 / 1e3)} µs with init and child on one CPU, {lost} lost" if p50 is not None
              else "kai-init not measured")
        if x50 is not None:
            ev += (f"; on two CPUs p50 {fnum(x50 / 1e3)} µs (tini-static {fnum(xr / 1e3)} µs: "
                   "the cross-CPU wake-up of this machine, not the init's work)")
        add("signal round trip p50 < 20 µs (and none lost)", None if p50 is None else (p50 < 20e3 and lost == 0), ev)
        w = self.get("idle", "kai-init", "wakeups")
        add("zero idle wake-ups", None if w is None else w == 0,
            f"{w} context switches in {d['config']['idle_seconds']} s" if w is not None else "kai-init not measured")
        h = d.get("health", {})
        kc, cc = h.get("kai-init check", {}), h.get("curl -fsS", {})
        if "na" in h or "cpu_ns" not in kc or "cpu_ns" not in cc:
            add("`kai-init check` ≥ 3× cheaper than curl", None, h.get("na") or kc.get("na") or "not measured")
        else:
            rc = cc["cpu_ns"] / kc["cpu_ns"] if kc["cpu_ns"] else float("inf")
            rw = cc["wall_ns"] / kc["wall_ns"]
            add("`kai-init check` ≥ 3× cheaper than curl (CPU per check)", rc >= 3,
                f"curl uses {fnum(rc)}× the CPU of kai-init check ({fnum(cc['cpu_ns'] / 1e6)} vs "
                f"{fnum(kc['cpu_ns'] / 1e6)} ms) and {fnum(rw)}× the wall time")
        e = d.get("endpoint", {})
        if "na" in e:
            add("endpoint ≥ 50,000 req/s on one core, RSS < 2 MiB after", None, e["na"])
        else:
            ok = e["rps"] >= 50000 and e["rss_after_kib"] < 2048 and e["alive_after"] and not e["non2xx"]
            add("endpoint ≥ 50,000 req/s on one core, RSS < 2 MiB after", ok,
                f"best {e['rps']:,.0f} req/s (wrk -c{e['best_connections']}), RSS after {e['rss_after_kib']} KiB, "
                f"{e['non2xx']} non-2xx")
        return out

    def targets_table(self, tg):
        lines = ["| target | verdict | measured |", "|---|---|---|"]
        lines += [f"| {t} | **{v}** | {ev} |" for t, v, ev in tg]
        return "\n".join(lines)

    # ---------------------------------------------------------------- output

    def markdown(self):
        m = self.d["meta"]
        main = self.main_table()
        health = self.health_table()
        endpoint = self.endpoint_table()
        issue9 = self.issue9_table()
        grpc = self.grpc_table()
        tg = self.targets()
        v = m["versions"]
        parts = [
            "# kai-init benchmarks",
            "",
            f"Taken {m['date']} by `bench/run{' --quick' if m['mode'] == 'quick' else ''}` "
            f"({m['mode']} mode, {m.get('seconds', '?')} s) on Linux {m['kernel']}, CPU {m['cpu']}, "
            f"{m['nproc']} CPUs (nproc). {m.get('kai_version') or 'kai-init (version unknown)'} "
            f"at commit {m['kai_commit']}, release build for x86_64-unknown-linux-musl; "
            f"Debian packages: tini {v.get('tini')}, dumb-init {v.get('dumb-init')}, catatonit {v.get('catatonit')}, "
            f"curl {v.get('curl')}, busybox-static {v.get('busybox-static')}, wrk {v.get('wrk')}, "
            f"hyperfine {v.get('hyperfine')}.",
            "",
            self.load_note(),
            "",
            f"Ratios in brackets are to **{self.ref}** (the static tini that `docker run --init` ships); "
            "lower is better everywhere except requests/s.",
            "",
            main,
            "",
            "## Health check cost",
            "",
            health,
            "",
            "## Health endpoint throughput",
            "",
            endpoint,
            "",
            "## Readiness and /metrics cost",
            "",
            issue9,
            "",
            "## gRPC health check cost",
            "",
            grpc,
            "",
            "## Targets",
            "",
            self.targets_table(tg),
            "",
        ]
        if self.notes:
            parts += ["## Not measured", ""] + [f"- {n}" for n in self.notes] + [""]
        parts += [
            "## How these were measured",
            "",
            "- **Start-up overhead**: `X -- /bin/true` minus bare `/bin/true`, medians, run by "
            "`bench/helpers/spawntime.c` (posix_spawn + wait4, stdio on /dev/null) round-robin with a rotating "
            "start, so drift hits every init alike. Not as PID 1 (creating a namespace would cost more than the init). The hyperfine -N row runs each command in "
            "its own block, as a cross-check.",
            "- **Idle RSS, threads, wake-ups**: every supervisor at the same time, each PID 1 of its own PID "
            "namespace (`unshare --pid --mount-proc`) with `/bin/sleep 600` as its child; "
            "VmRSS and Threads from /proc/PID/status after 1 s, wake-ups = voluntary + nonvoluntary context "
            "switches of all its threads over the window.",
            "- kai-init runs with its defaults except `--health-socket kai-bench-…`: it binds its abstract "
            "socket as usual, under a name no other kai-init on the machine uses.",
            "- **Binary size**: bytes on disk; only static builds are compared (dynamic ones also load libc).",
            "- **Signal round trip**: `bench/helpers/sigrt.c`, the init's child, sends SIGUSR1 to its parent "
            "(pidfd_send_signal) and waits with sigtimedwait for the forwarded SIGUSR1 (100 ms timeout = lost); "
            "init as PID 1 in a namespace, pinned with taskset, child pinned to the same CPU or the other one. "
            "The placement dominates the figure on this machine, so both are pinned rather than left to the "
            "scheduler. Rounds are interleaved across inits.",
            "- **Reaping**: `bench/helpers/zombies.c`, the child of the init running as PID 1 of a new PID "
            "namespace, has a middle process fork N children that exit at once, waits (WNOWAIT) until all are "
            "zombies, then the middle exits and the zombies pass to PID 1; the time runs until kill(pid, 0) "
            "reports every one gone.",
            "- **Health check cost**: a kai-init with `--health-listen 127.0.0.1:PORT` and a sleeping child; "
            "`kai-init check` (KAI_INIT_HEALTH_LISTEN set, as in an image), `curl -fsS URL` and "
            "`busybox wget -q -O- URL` fetch the same /healthz, interleaved; wall time and the process's "
            "user+sys CPU from wait4.",
            "- **Endpoint throughput**: the same kai-init pinned to one CPU with taskset, wrk on the other, "
            "keep-alive connections, loopback only; RSS read from /proc after the run.",
            "- **Time to ready after listen**: `bench/ready_after_listen.py`: a Node or Python app that "
            "listens after a random 0.2-0.6 s; from its `listening` line to kai-init's `first probe passed`.",
            "- **/metrics scrape**: `bench/scrape`: kai-init as PID 1 of a PID namespace in a memory cgroup "
            "of its own, its child starting `sleep`s up to N processes; one keep-alive client scrapes "
            "/metrics over loopback; wall time per scrape and kai-init's utime+stime per scrape.",
            "- **gRPC health check cost**: `bench/grpc_check.py`: a grpcio server (tests/fixtures/grpc_server.py) "
            "in its own process; each client makes the same Check, one process per check (in-process: a fresh "
            "channel per call in one Python), rounds interleaved; CPU is the process's utime+stime from wait4.",
            "",
        ]
        return "\n".join(parts), tg


def main():
    src, md_out, svg_out = sys.argv[1:4]
    with open(src) as f:
        d = json.load(f)
    r = Report(d)
    md, tg = r.markdown()
    with open(md_out, "w") as f:
        f.write(md)
    with open(svg_out, "w") as f:
        f.write(svg.chart(d, r))
    # terminal: the tables and the verdicts
    print()
    print(r.load_note())
    print()
    print(r.main_table())
    print()
    print(r.health_table())
    print()
    print(r.endpoint_table())
    print()
    print(r.issue9_table())
    print()
    print("Targets:")
    for t, v, ev in tg:
        print(f"  [{v:>6}] {t}: {ev}")
    if r.notes:
        print("\nNot measured:")
        for n in r.notes:
            print(f"  - {n}")
    print(f"\nwrote {md_out} and {svg_out}")


if __name__ == "__main__":
    main()
