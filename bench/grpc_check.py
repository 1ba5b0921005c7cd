#!/usr/bin/env python3
"""bench/grpc_check.py: CPU and wall time of one gRPC health check (issue 20), kai-init's
client against the Python gRPC client making the same call, medians over many runs.

    bench/grpc_check.py [--runs N] [--kai 'CMD']

The server is tests/fixtures/grpc_server.py (grpcio from target/test-python-grpc, as
scripts/test installs it), in its own process: its CPU is not counted. Measured, in
interleaved rounds so that machine noise hits every client alike:

  kai-init                  CMD once per check, a process each time (what HEALTHCHECK and
                            kubelet's exec probes pay). CMD's `{port}` is the server's
                            port; leading VAR=value words go to its environment. Default:
                            `target/x86_64-unknown-linux-musl/release/kai-init check
                            grpc://127.0.0.1:{port}`.
  kai-init tcp:// (ref.)    `kai-init check tcp://127.0.0.1:{port}`: a connect and no more,
                            the cost of the process itself, for scale.
  python grpc, a process    `python3 -c ...`: import grpc, one Check, exit (what a Python
                            HEALTHCHECK script pays).
  python grpc, in-process   one long-lived Python: a fresh channel, one Check, close, per
                            call (the client's own cost, no interpreter start); its
                            process CPU (all threads) around each call.

CPU per process is the child's own utime+stime from wait4(2). Prints a table and a JSON
line (`json: {...}`) for bench/run. Loopback only; every process it starts is stopped by
its PID.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(REPO, "target", "test-python-grpc")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"

PY_ONE = """
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
with grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}") as ch:
    r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
sys.exit(0 if r.status == health_pb2.HealthCheckResponse.SERVING else 1)
"""

PY_LOOP = """
import json, sys, time, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
port, n = sys.argv[1], int(sys.argv[2])
out = []
for _ in range(n + 5):
    c0, w0 = time.process_time_ns(), time.perf_counter_ns()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert r.status == health_pb2.HealthCheckResponse.SERVING
    out.append((time.process_time_ns() - c0, time.perf_counter_ns() - w0))
print(json.dumps(out[5:]))
"""


def env_with_site():
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = SITE
    return env


def start_server():
    p = subprocess.Popen([PY, os.path.join(REPO, "tests", "fixtures", "grpc_server.py"), "serving"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env_with_site())
    line = p.stdout.readline().strip()
    if not line.startswith("ready port="):
        p.kill()
        p.wait()
        sys.exit(f"grpc_server.py did not start ({line!r}); is grpcio in {SITE}? (scripts/test)")
    return p, int(line.split("=", 1)[1])


def split_cmd(cmd, port):
    words = shlex.split(cmd.replace("{port}", str(port)))
    env = env_with_site()
    while words and "=" in words[0] and not words[0].startswith("/"):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    return words, env


def one_process(argv, env):
    """(cpu_ns, wall_ns, exit status) of one run of argv, from wait4."""
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter_ns() - t0
    return int((ru.ru_utime + ru.ru_stime) * 1e9), wall, p.returncode


def summary(rows):
    cpu = [c for c, _ in rows]
    wall = [w for _, w in rows]
    return {"runs": len(rows), "cpu_ms": statistics.median(cpu) / 1e6,
            "cpu_mean_ms": statistics.fmean(cpu) / 1e6, "wall_ms": statistics.median(wall) / 1e6}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    kai_bin = os.path.join(REPO, "target", "x86_64-unknown-linux-musl", "release", "kai-init")
    ap.add_argument("--kai", default=kai_bin + " check grpc://127.0.0.1:{port}")
    args = ap.parse_args()
    server, port = start_server()
    results = {}
    try:
        kai_argv, kai_env = split_cmd(args.kai, port)
        py_argv, py_env = [PY, "-c", PY_ONE, str(port)], env_with_site()
        tcp_argv = [kai_bin, "check", f"tcp://127.0.0.1:{port}"]
        clients = {"kai-init": (kai_argv, kai_env), "kai-init tcp:// (ref.)": (tcp_argv, py_env),
                   "python grpc, a process": (py_argv, py_env)}
        usable = {}
        for name, (argv, env) in clients.items():
            _, _, rc = one_process(argv, env)
            if rc == 0:
                usable[name] = []
            else:
                results[name] = {"na": f"exit {rc}: {shlex.join(argv)[:120]}"}
        for _ in range(args.runs):
            for name in usable:
                cpu, wall, rc = one_process(*clients[name])
                if rc == 0:
                    usable[name].append((cpu, wall))
        for name, rows in usable.items():
            results[name] = summary(rows)
        r = subprocess.run([PY, "-c", PY_LOOP, str(port), str(args.runs)], env=env_with_site(),
                           capture_output=True, text=True, timeout=600)
        if r.returncode == 0:
            results["python grpc, in-process"] = summary(json.loads(r.stdout))
        else:
            results["python grpc, in-process"] = {"na": r.stderr.strip()[-200:]}
    finally:
        server.stdin.close()
        server.kill()
        server.wait()
    print(f"{'client':28} {'runs':>5} {'CPU ms (median)':>16} {'CPU ms (mean)':>14} {'wall ms':>8}")
    for name, s in results.items():
        if "na" in s:
            print(f"{name:28} n/a: {s['na']}")
        else:
            print(f"{name:28} {s['runs']:5d} {s['cpu_ms']:16.3f} {s['cpu_mean_ms']:14.3f} {s['wall_ms']:8.3f}")
    print("json: " + json.dumps(results))


if __name__ == "__main__":
    main()
