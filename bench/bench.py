# bench.py: measures kai-init against tini-static, tini, dumb-init and catatonit
# (and `kai-init check` against curl and busybox wget) and writes the raw
# figures as JSON for report.py. Called by bench/run, which installs the tools,
# builds kai-init and compiles the C helpers in bench/helpers/ first.
#
# Every loop is bounded and every process it starts is stopped by PID; traffic
# is loopback only. Nothing here prints a number it did not measure: a feature
# kai-init lacks yet is recorded as {"na": "reason"}.
import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, ".build")
HELPERS = {n: os.path.join(BUILD, n) for n in ("spawntime", "sigrt", "zombies")}
REPO = os.path.dirname(HERE)
DEFAULT_KAI = os.path.join(REPO, "target/x86_64-unknown-linux-musl/release/kai-init")

REFERENCE = "tini-static"
INITS = ["kai-init", "tini-static", "tini", "dumb-init", "catatonit"]
PATHS = {
    "tini-static": "/usr/bin/tini-static",
    "tini": "/usr/bin/tini",
    "dumb-init": "/usr/bin/dumb-init",
    "catatonit": "/usr/bin/catatonit",
}
# Runs as PID 1 of a fresh PID namespace, as in a container (no network
# namespace: tearing one down keeps a kernel worker busy during the next run).
# --kill-child: if unshare dies, the namespace's PID 1 gets SIGKILL.
PID1 = ["unshare", "--pid", "--mount-proc", "--kill-child"]

FULL = dict(startup_rounds=1000, startup_warmup=20, hyperfine_runs=500,
            sig_chunks=10, sig_per_chunk=1000, zombie_reps=5, zombies=10000,
            idle_seconds=10, health_rounds=300, wrk_seconds=10,
            wrk_connections=[8, 32, 128])
QUICK = dict(startup_rounds=100, startup_warmup=5, hyperfine_runs=0,
             sig_chunks=2, sig_per_chunk=500, zombie_reps=1, zombies=1000,
             idle_seconds=2, health_rounds=30, wrk_seconds=2,
             wrk_connections=[32])

STARTED = []  # every Popen we started, for the final clean-up
LOGS = []  # log files handed to them, closed at the end


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def children_of(pid):
    """PIDs whose parent is pid (from /proc/PID/task/*/children)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(proc, grace=5.0):
    """Stop a process we started (and the workload it started): SIGTERM, which
    every init forwards to its child, then SIGKILL to exactly those PIDs."""
    if proc.poll() is not None:
        return
    kids = children_of(proc.pid)
    # Under `unshare` the init is its child: signal the init; otherwise proc itself.
    target = kids[0] if "unshare" in proc.args and kids else proc.pid
    kill_pid(target, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        pass
    # Still there: SIGKILL the workload first (read afresh, so no PID can have been
    # reused), then proc. SIGKILL to a namespace's PID 1 ends the whole namespace.
    kids = children_of(proc.pid)
    for pid in [g for k in kids for g in children_of(k)] + kids + [proc.pid]:
        kill_pid(pid)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log(f"warning: PID {proc.pid} did not exit after SIGKILL")


def logfile(path, mode):
    f = open(path, mode)
    LOGS.append(f)
    return f


def start(argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, **kw)
    STARTED.append(p)
    return p


def run_bounded(argv, timeout, **kw):
    """Run to completion, or stop it after timeout seconds. Returns exit code or None."""
    p = start(argv, **kw)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p, grace=2.0)
        return None


def cleanup():
    for p in STARTED:
        if p.poll() is None:
            stop(p, grace=2.0)
    for f in LOGS:
        f.close()


def status_fields(pid):
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            d[k] = v.strip()
    return d


def exact_rss_kib(pid):
    """Rss from smaps_rollup, which walks the page tables. VmRSS in /proc/PID/status is
    the kernel's per-CPU counter sum, which can lag by megabytes right after a burst
    (seen here: VmRSS 2,544 KiB while smaps_rollup said 1,060 KiB, at the same moment)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Rss line in /proc/{pid}/smaps_rollup")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def ctx_switches(pid):
    """Voluntary + involuntary context switches summed over all threads."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def wait_for(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


# ---------------------------------------------------------------- binaries

def elf_is_static(path):
    """True when the ELF file has no PT_INTERP program header (x86-64 only)."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
            return None
        phoff = int.from_bytes(hdr[32:40], "little")
        phentsize = int.from_bytes(hdr[54:56], "little")
        phnum = int.from_bytes(hdr[56:58], "little")
        f.seek(phoff)
        for _ in range(phnum):
            ph = f.read(phentsize)
            if int.from_bytes(ph[0:4], "little") == 3:  # PT_INTERP
                return False
    return True


def probe_kai(kai):
    """What the kai-init binary can do today: {'core': bool|reason, 'health_socket', 'health_listen', ...}."""
    info = {"path": kai}
    if not os.path.exists(kai):
        info["na"] = "not built (release musl binary missing)"
        return info
    try:
        r = subprocess.run([kai, "--", "/bin/sh", "-c", "exit 42"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        if r.returncode != 42:
            info["na"] = f"not implemented: `kai-init -- sh -c 'exit 42'` exited {r.returncode}, not 42"
    except subprocess.TimeoutExpired:
        info["na"] = "not implemented: `kai-init -- sh -c 'exit 42'` did not finish in 10 s"
    try:
        h = subprocess.run([kai, "--help"], capture_output=True, text=True, timeout=10)
        helptext = h.stdout + h.stderr
    except subprocess.TimeoutExpired:
        helptext = ""
    info["help_health_socket"] = "--health-socket" in helptext
    info["help_health_listen"] = "--health-listen" in helptext
    try:
        v = subprocess.run([kai, "--version"], capture_output=True, text=True, timeout=10)
        info["version"] = (v.stdout or v.stderr).strip().splitlines()[0] if v.returncode == 0 else None
    except (subprocess.TimeoutExpired, IndexError):
        info["version"] = None
    return info


SOCKETS = iter(range(1, 1 << 30))


def init_prefix(name, kai_info):
    """argv prefix that runs a command under init `name` (ends with `--`)."""
    if name == "kai-init":
        argv = [kai_info["path"]]
        # kai-init binds its abstract socket (@kai-init by default) as usual, under a
        # name of its own, so that it never meets another kai-init on this machine.
        if kai_info.get("help_health_socket"):
            argv += ["--health-socket", f"kai-bench-{os.getpid()}-{next(SOCKETS)}"]
        return argv + ["--"]
    return [PATHS[name], "--"]


# ---------------------------------------------------------------- measurements

def read_spawntime(path, n):
    rows = [[] for _ in range(n)]
    with open(path) as f:
        for line in f:
            c, wall, cpu, st = (int(x) for x in line.split())
            rows[c].append((wall, cpu, st))
    return rows


def measure_startup(avail, kai_info, cfg, tmp):
    names = [n for n in INITS if n in avail]
    cmds = [["/bin/true"]] + [init_prefix(n, kai_info) + ["/bin/true"]
                              for n in names]
    out = os.path.join(tmp, "startup.txt")
    argv = [HELPERS["spawntime"], str(cfg["startup_rounds"]), str(cfg["startup_warmup"]), out]
    for i, c in enumerate(cmds):
        argv += ([":::"] if i else []) + c
    log(f"start-up: {cfg['startup_rounds']} interleaved rounds of {len(cmds)} commands")
    rc = run_bounded(argv, timeout=300)
    if rc != 0:
        return {n: {"na": f"spawntime failed ({rc})"} for n in names}
    rows = read_spawntime(out, len(cmds))
    base = statistics.median(w for w, _, _ in rows[0])
    res = {"_baseline_ns": base, "_runs": cfg["startup_rounds"]}
    for i, n in enumerate(names, start=1):
        bad = sum(1 for _, _, st in rows[i] if st != 0)
        med = statistics.median(w for w, _, _ in rows[i])
        r = {"median_ns": med, "overhead_ns": med - base, "runs": len(rows[i]),
             "cpu_median_ns": statistics.median(c for _, c, _ in rows[i])}
        if bad:
            r["na"] = f"{bad} of {len(rows[i])} runs exited non-zero"
        res[n] = r
    return res


def measure_hyperfine(avail, kai_info, cfg, tmp):
    """Cross-check of the start-up figure with hyperfine -N (not interleaved)."""
    if not cfg["hyperfine_runs"]:
        return {"na": "skipped in --quick"}
    names = ["/bin/true"] + [n for n in INITS if n in avail]
    out = os.path.join(tmp, "hyperfine.json")
    argv = ["hyperfine", "-N", "--style", "none", "--warmup", "20", "--runs", str(cfg["hyperfine_runs"]),
            "--export-json", out]
    for n in names:
        cmd = ["/bin/true"] if n == "/bin/true" else init_prefix(n, kai_info) + ["/bin/true"]
        argv += ["-n", n, " ".join(cmd)]
    log(f"start-up cross-check: hyperfine -N, {cfg['hyperfine_runs']} runs each")
    rc = run_bounded(argv, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if rc != 0:
        return {"na": f"hyperfine exited {rc}"}
    with open(out) as f:
        data = json.load(f)["results"]
    med = {r["command"]: r["median"] * 1e9 for r in data}
    base = med.pop("/bin/true")
    return {n: {"median_ns": m, "overhead_ns": m - base} for n, m in med.items()}


def init_pid_in(proc):
    """Host PID of the init that `unshare --fork` started."""
    kids = wait_for(lambda: children_of(proc.pid), 5)
    return kids[0] if kids else None


def measure_idle(avail, kai_info, cfg, tmp):
    """All supervisors at once, each PID 1 of its own namespace with a sleeping child."""
    names = [n for n in INITS if n in avail]
    procs, pids, res = {}, {}, {}
    log(f"idle: RSS, threads and wake-ups over {cfg['idle_seconds']} s, all supervisors side by side")
    try:
        for n in names:
            errlog = logfile(os.path.join(tmp, f"idle-{n}.log"), "w")
            procs[n] = start(PID1 + init_prefix(n, kai_info) + ["/bin/sleep", "600"],
                             stdout=errlog, stderr=errlog)
        for n in names:
            pid = init_pid_in(procs[n])
            # the supervisor is settled once its child exists
            if pid and wait_for(lambda: children_of(pid), 5):
                pids[n] = pid
            else:
                res[n] = {"na": "supervisor did not start its child"}
        time.sleep(1.0)
        before = {n: ctx_switches(p) for n, p in pids.items()}
        time.sleep(cfg["idle_seconds"])
        for n, p in pids.items():
            after = ctx_switches(p)
            st = status_fields(p)
            res[n] = {"rss_kib": int(st["VmRSS"].split()[0]), "hwm_kib": int(st["VmHWM"].split()[0]),
                      "threads": int(st["Threads"]), "wakeups": after - before[n],
                      "seconds": cfg["idle_seconds"]}
    finally:
        for p in procs.values():
            stop(p)
    return res


def signal_modes():
    """(mode, CPU of the init, CPU of the child): the kernel's cross-CPU wake-up
    costs far more than any init's own work, so both placements are pinned."""
    if (os.cpu_count() or 1) >= 2:
        return [("same_cpu", 0, 0), ("cross_cpu", 0, 1)]
    return [("same_cpu", 0, 0)]


def measure_signals(avail, kai_info, cfg, tmp):
    names = [n for n in INITS if n in avail]
    modes = signal_modes()
    samples = {(n, m): [] for n in names for m, _, _ in modes}
    errors = {}
    per = cfg["sig_per_chunk"]
    log(f"signals: {cfg['sig_chunks']} rounds x {per} round trips per init and CPU placement, as PID 1")
    for chunk in range(cfg["sig_chunks"]):
        for n in names:
            for m, init_cpu, child_cpu in modes:
                if n in errors:
                    continue
                out = os.path.join(tmp, f"sig-{n}-{m}-{chunk}.txt")
                errlog = logfile(os.path.join(tmp, f"sig-{n}.log"), "a")
                argv = ["taskset", "-c", str(init_cpu)] + PID1 + init_prefix(n, kai_info) + \
                    [HELPERS["sigrt"], str(per), "100", out, str(child_cpu)]
                rc = run_bounded(argv, timeout=60 + per * 0.01, stdout=errlog, stderr=errlog)
                if rc != 0 or not os.path.exists(out):
                    errors[n] = f"run failed (exit {rc}); see {errlog.name}"
                    continue
                with open(out) as f:
                    samples[(n, m)] += [int(x) for x in f]
    res = {}
    for n in names:
        if n in errors:
            res[n] = {"na": errors[n]}
            continue
        res[n] = {}
        for m, init_cpu, child_cpu in modes:
            v = samples[(n, m)]
            ok = sorted(x for x in v if x >= 0)
            r = {"signals": len(v), "lost": len(v) - len(ok), "init_cpu": init_cpu, "child_cpu": child_cpu,
                 "p50_ns": pct(ok, 0.50), "p99_ns": pct(ok, 0.99), "max_ns": ok[-1] if ok else None}
            if not ok:
                r["na"] = "no signal came back (not forwarded)"
            res[n][m] = r
    return res


def measure_reaping(avail, kai_info, cfg, tmp):
    names = [n for n in INITS if n in avail]
    runs = {n: [] for n in names}
    notes = {}
    z = cfg["zombies"]
    log(f"reaping: {cfg['zombie_reps']} rounds x {z} orphaned zombies per init, as PID 1")
    for rep in range(cfg["zombie_reps"]):
        for n in names:
            if n in notes:
                continue
            out = os.path.join(tmp, f"zombies-{n}-{rep}.txt")
            errlog = logfile(os.path.join(tmp, f"zombies-{n}.log"), "a")
            rc = run_bounded(PID1 + init_prefix(n, kai_info) + [HELPERS["zombies"], str(z), "30", out],
                             timeout=90, stdout=errlog, stderr=errlog)
            if rc != 0 or not os.path.exists(out):
                notes[n] = f"run failed (exit {rc}); see {errlog.name}"
                continue
            ns, made, left = (int(x) for x in open(out).read().split())
            if made != z:
                notes[n] = f"could only fork {made} of {z}"
            elif left:
                notes[n] = f"{left} of {z} zombies never reaped within 30 s"
            else:
                runs[n].append(ns)
    res = {}
    for n in names:
        if n in notes:
            res[n] = {"na": notes[n]}
        else:
            res[n] = {"zombies": z, "runs_ns": runs[n], "median_ns": statistics.median(runs[n])}
    return res


def http_ok(url):
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def start_kai_endpoint(kai_info, port, tmp, pin=None):
    """kai-init --health-listen 127.0.0.1:PORT -- sleep 600; returns (proc, None) or (None, reason)."""
    if "na" in kai_info:
        return None, kai_info["na"]
    if not kai_info.get("help_health_listen"):
        return None, "not implemented: --health-listen not in kai-init --help"
    argv = ([("taskset"), "-c", str(pin)] if pin is not None else []) + [kai_info["path"]]
    argv += ["--health-listen", f"127.0.0.1:{port}"]
    if kai_info.get("help_health_socket"):
        argv += ["--health-socket", f"kai-bench-{os.getpid()}-{port}"]  # see init_prefix
    argv += ["--", "/bin/sleep", "600"]
    errlog = logfile(os.path.join(tmp, f"endpoint-{port}.log"), "w")
    p = start(argv, stdout=errlog, stderr=errlog)
    if not wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/healthz") or p.poll() is not None, 5) \
            or p.poll() is not None:
        stop(p)
        return None, f"not implemented: no 200 from http://127.0.0.1:{port}/healthz (see {errlog.name})"
    return p, None


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("KAI_INIT_")}
    env.update(extra or {})
    return env


def measure_health(kai_info, cfg, tmp):
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    p, why = start_kai_endpoint(kai_info, port, tmp)
    if p is None:
        return {"na": why}
    env = clean_env()
    kai_tcp = {"KAI_INIT_HEALTH_LISTEN": f"127.0.0.1:{port}"}
    # (name, environment changes, argv); the first three make the same HTTP request
    clients = [
        ("kai-init check", kai_tcp, [kai_info["path"], "check"]),
        ("curl -fsS", {}, ["/usr/bin/curl", "-fsS", url]),
        ("busybox wget", {}, ["/bin/busybox", "wget", "-q", "-O-", url]),
    ]
    if kai_info.get("help_health_socket"):
        # the default HEALTHCHECK of an image without KAI_INIT_HEALTH_LISTEN: the abstract socket
        clients.append(("kai-init check (abstract socket)",
                        {"KAI_INIT_HEALTH_SOCKET": f"kai-bench-{os.getpid()}-{port}"},
                        [kai_info["path"], "check"]))
    res = {"url": url}
    try:
        usable = []
        for name, extra, argv in clients:
            r = subprocess.run(argv, env={**env, **extra}, capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                what = "not implemented: " if name.startswith("kai-init") else ""
                res[name] = {"na": f"{what}exit {r.returncode}: {(r.stdout + r.stderr).strip()[:120]}"}
            else:
                usable.append((name, [f"+{k}={v}" for k, v in extra.items()] + argv))
                res[name] = {"output": (r.stdout + r.stderr).strip()[:120]}
        if usable:
            out = os.path.join(tmp, "health.txt")
            argv = [HELPERS["spawntime"], str(cfg["health_rounds"]), "5", out]
            for i, (_, a) in enumerate(usable):
                argv += ([":::"] if i else []) + a
            log(f"health check cost: {cfg['health_rounds']} interleaved rounds of {len(usable)} clients")
            rc = run_bounded(argv, timeout=300, env=env)
            if rc != 0:
                return {"na": f"spawntime failed ({rc})"}
            rows = read_spawntime(out, len(usable))
            for i, (name, _) in enumerate(usable):
                bad = sum(1 for _, _, st in rows[i] if st != 0)
                res[name].update({"runs": len(rows[i]), "failed": bad,
                                  "wall_ns": statistics.median(w for w, _, _ in rows[i]),
                                  "cpu_ns": statistics.median(c for _, c, _ in rows[i])})
    finally:
        stop(p)
    return res


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure_endpoint(kai_info, cfg, tmp):
    """wrk against /healthz with a few connection counts (each shown); RSS after all of them."""
    ncpu = os.cpu_count() or 1
    server_cpu, client_cpu = (0, 1) if ncpu >= 2 else (0, 0)
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    p, why = start_kai_endpoint(kai_info, port, tmp, pin=server_cpu)
    if p is None:
        return {"na": why}
    hz = os.sysconf("SC_CLK_TCK")
    runs = []
    try:
        kai_pid = p.pid  # taskset execs kai-init in place
        before = status_fields(kai_pid)
        fds_before = open_fds(kai_pid)
        for conns in cfg["wrk_connections"]:
            log(f"endpoint: wrk -c{conns} {cfg['wrk_seconds']} s, kai-init on CPU {server_cpu}, wrk on CPU {client_cpu}")
            t0, c0, m0 = time.monotonic(), cpu_ticks(kai_pid), cpu_seconds()[0]
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run(["taskset", "-c", str(client_cpu), "wrk", "-t1", f"-c{conns}",
                                f"-d{cfg['wrk_seconds']}s", "--timeout", "2s", url],
                               capture_output=True, text=True, timeout=cfg["wrk_seconds"] + 30)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.monotonic() - t0
            busy = (cpu_ticks(kai_pid) - c0) / hz / wall
            wrk_busy = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall
            # anything else that ran meanwhile (other people's tests), as a share of all CPUs
            other = max(0.0, (cpu_seconds()[0] - m0) / wall - busy - wrk_busy) / ncpu
            m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
            if r.returncode != 0 or not m:
                return {"na": f"wrk failed: {r.stdout[-200:]} {r.stderr[-200:]}"}
            non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", r.stdout)
            errs = re.search(r"Socket errors:(.*)", r.stdout)
            total = re.search(r"(\d+) requests in", r.stdout)
            runs.append({"connections": conns, "rps": float(m.group(1)),
                         "requests": int(total.group(1)) if total else None,
                         "non2xx": int(non2xx.group(1)) if non2xx else 0,
                         "socket_errors": errs.group(1).strip() if errs else "",
                         "server_cpu_busy": round(busy, 3), "client_cpu_busy": round(wrk_busy, 3),
                         "other_busy": round(other, 3)})
        # "After" means once kai-init has seen wrk's connections close (bounded wait), not
        # while it is still tearing down the last run's 128 connections.
        settled = wait_for(lambda: open_fds(kai_pid) <= fds_before, 5) is not None
        after = status_fields(kai_pid)
        rss_after = exact_rss_kib(kai_pid)
        alive = p.poll() is None and http_ok(url)
    finally:
        stop(p)
    best = max(runs, key=lambda r: r["rps"])
    return {"runs": runs, "rps": best["rps"], "best_connections": best["connections"],
            "non2xx": sum(r["non2xx"] for r in runs), "seconds": cfg["wrk_seconds"],
            "server_cpu": server_cpu, "client_cpu": client_cpu,
            "rss_before_kib": int(before["VmRSS"].split()[0]),
            "rss_after_kib": rss_after, "closed_after": settled,
            "hwm_after_kib": int(after["VmHWM"].split()[0]),
            "threads_after": int(after["Threads"]),
            "alive_after": alive}


# ---------------------------------------------------------------- metadata

def machine_info(kai_info, quick):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("tini", "dumb-init", "catatonit", "curl", "busybox-static", "wrk", "hyperfine"):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        versions[pkg] = r.stdout.strip() if r.returncode == 0 else None
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True)
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg_before": loadavg(),
            "busy_before": machine_busy(),
            "kernel": platform.release(), "cpu": cpu,
            "nproc": os.cpu_count(), "mode": "quick" if quick else "full",
            "kai_version": kai_info.get("version"),
            "kai_commit": (commit.stdout.strip() or "none") + (" + uncommitted changes" if dirty.stdout.strip() else ""),
            "versions": versions}


def machine_busy(seconds=2.0):
    """Share of all CPUs busy (not idle/iowait) over a short window, from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return round(1 - (i1 - i0) / max(1, t1 - t0), 3)


def cpu_seconds():
    """(CPU seconds the whole machine was busy, CPU seconds of this process and its reaped children)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user + nice + system: interrupt and softirq time (loopback traffic) is charged to no process
    busy = (v[0] + v[1] + v[2]) / os.sysconf("SC_CLK_TCK")
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def wait_for_quiet(limit):
    """Give other work on the machine (builds, test suites) up to `limit` seconds to
    finish: start once under 10% of the CPUs are busy, or anyway (the report says so)."""
    end = time.monotonic() + limit
    while True:
        busy = machine_busy()
        if busy < 0.10 or time.monotonic() > end:
            return
        log(f"machine {busy:.0%} busy with other work; waiting (up to {limit} s in all) for it to calm down")


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def binaries(kai_info):
    res = {}
    for n in INITS:
        path = kai_info["path"] if n == "kai-init" else PATHS[n]
        if not os.path.exists(path):
            res[n] = {"na": f"{path} missing"}
            continue
        res[n] = {"path": path, "bytes": os.stat(path).st_size, "static": elf_is_static(path)}
    return res


def same_footing(avail, kai_info):
    """Runs every init from a fresh copy in BUILD/bins, written the same way (as `docker
    build` writes a layer's files). How a file landed in the page cache changes what each
    exec costs: the same kai-init bytes started 130 µs slower as the linker wrote them
    than as `cp` wrote them (interleaved medians of 3,000 runs each, 2026-11-30)."""
    bins = os.path.join(BUILD, "bins")
    shutil.rmtree(bins, ignore_errors=True)
    os.makedirs(bins)
    for n in avail:
        src = kai_info["path"] if n == "kai-init" else PATHS[n]
        dst = os.path.join(bins, n)
        shutil.copyfile(src, dst)
        shutil.copymode(src, dst)
        if n == "kai-init":
            kai_info["path"] = dst
        else:
            PATHS[n] = dst


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer runs: a smoke pass, not for publishing")
    ap.add_argument("--kai", default=DEFAULT_KAI, help="kai-init binary (default: release musl build)")
    ap.add_argument("--out", required=True, help="JSON file for the raw figures")
    args = ap.parse_args()
    cfg = QUICK if args.quick else FULL
    kai_info = probe_kai(args.kai)
    if "na" in kai_info:
        log(f"kai-init: {kai_info['na']}")
    avail = [n for n in INITS if (n != "kai-init" or "na" not in kai_info)
             and os.path.exists(kai_info["path"] if n == "kai-init" else PATHS[n])]
    same_footing(avail, kai_info)
    if not args.quick:
        wait_for_quiet(limit=90)
    results = {"meta": machine_info(kai_info, args.quick), "config": cfg, "reference": REFERENCE,
               "inits": INITS, "kai": kai_info, "binaries": binaries(kai_info)}
    t0, cpu0 = time.monotonic(), cpu_seconds()
    tmp = os.path.join(BUILD, "logs")  # raw samples and logs of this run, for a second look
    subprocess.run(["rm", "-rf", tmp], check=True)
    os.makedirs(tmp)
    try:
        results["startup"] = measure_startup(avail, kai_info, cfg, tmp)
        results["hyperfine"] = measure_hyperfine(avail, kai_info, cfg, tmp)
        results["idle"] = measure_idle(avail, kai_info, cfg, tmp)
        results["signals"] = measure_signals(avail, kai_info, cfg, tmp)
        results["reaping"] = measure_reaping(avail, kai_info, cfg, tmp)
        results["health"] = measure_health(kai_info, cfg, tmp)
        results["endpoint"] = measure_endpoint(kai_info, cfg, tmp)
    finally:
        cleanup()
    results["meta"]["seconds"] = round(time.monotonic() - t0, 1)
    results["meta"]["loadavg_after"] = loadavg()
    # CPU the machine spent on anything but this benchmark while it ran (other people's builds and tests)
    cpu1 = cpu_seconds()
    other = (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])
    results["meta"]["other_busy_during"] = round(max(0.0, other) / ((time.monotonic() - t0) * os.cpu_count()), 3)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    log(f"done in {results['meta']['seconds']} s; raw samples and logs in {tmp}")


if __name__ == "__main__":
    main()
