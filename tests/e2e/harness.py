"""Helpers for the end-to-end tests: the Docker engine, builds, containers.

Rules these tests keep (sandboxed CI machines):
  * no bridge network is ever created (dockerd runs with --bridge=none,
    scripts/docker-up), builds use --network host, containers --network none,
    so no container traffic leaves loopback;
  * every wait is bounded; every process we start is ended by its own id;
  * everything created is labelled/tagged with the run id and removed at the end.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY_REL = "target/x86_64-unknown-linux-musl/release/kai-init"
# The arm64 build (scripts/test-arm64 prepare makes it); the prebuilt stage's other binary.
BINARY_ARM64_REL = "target/aarch64-unknown-linux-musl/release/kai-init"

# Debian's docker.io client: BuildKit is built in and enabled with
# DOCKER_BUILDKIT=1. A newer client that may come first on PATH
# (/usr/local/bin/docker, 28.x here) has no buildx plugin installed, and since
# Docker 23 that client refuses BuildKit builds without buildx, so it is not used.
DOCKER = os.environ.get("KAI_E2E_DOCKER", "/usr/bin/docker")

RUN_ID = os.environ.get("KAI_E2E_RUN_ID") or uuid.uuid4().hex[:8]
LABEL = f"kai-e2e={RUN_ID}"

# Set by run(): tags of the stand-in base images.
STANDINS = {}


class CommandError(AssertionError):
    pass


def env():
    e = dict(os.environ)
    e["DOCKER_BUILDKIT"] = "1"
    return e


def docker(*args, timeout=60, check=True, input=None):
    """Run the docker client; returns CompletedProcess (text)."""
    try:
        p = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                           env=env(), input=input)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"docker {' '.join(args)}: timed out after {timeout}s") from exc
    if check and p.returncode != 0:
        raise CommandError(f"docker {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


def wait_for(what, predicate, timeout, interval=0.25):
    """Poll predicate() until it returns a truthy value or timeout expires."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- builds

RUNNING_BUILDS = set()  # Build objects whose client is still running


def stop_running_builds():
    """Ends the docker build clients still running (an interrupted run), by their Popen handles."""
    for b in list(RUNNING_BUILDS):
        b.wait(timeout=0)


class Build:
    """One `docker build` running in the background, output to a log file."""

    def __init__(self, dockerfile, tag, context=REPO, build_args=None, target=None):
        self.tag = tag
        fd, self.log_path = tempfile.mkstemp(prefix="kai-e2e-build-", suffix=".log")
        os.close(fd)
        cmd = [DOCKER, "build", "--network", "host", "--progress", "plain",
               "-f", os.path.join(context, dockerfile), "-t", tag,
               "--label", LABEL]
        for k, v in (build_args or {}).items():
            cmd += ["--build-arg", f"{k}={v}"]
        if target:
            cmd += ["--target", target]
        cmd.append(context)
        self.cmd = cmd
        self.started = time.monotonic()
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env())
        RUNNING_BUILDS.add(self)
        self.rc = None
        self.seconds = None

    def wait(self, timeout=900):
        try:
            # timeout=0 (stop_running_builds): a last look, then kill.
            left = timeout - (time.monotonic() - self.started)
            self.rc = self.proc.wait(timeout=max(1, left) if timeout else 0.1)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by its Popen handle
            self.proc.wait(timeout=30)
            self.rc = -1
        # Not in a `finally`: a run cancelled during this wait leaves the build in
        # RUNNING_BUILDS, for stop_running_builds to end.
        RUNNING_BUILDS.discard(self)
        self.seconds = time.monotonic() - self.started
        self._log.close()
        with open(self.log_path) as f:
            self.output = f.read()
        os.unlink(self.log_path)
        return self

    def steps(self):
        """{step number: (title, cached?)} from BuildKit's plain progress output."""
        titles, cached = {}, set()
        for line in self.output.splitlines():
            m = re.match(r"#(\d+) (\[.*)$", line)
            if m and m.group(1) not in titles:
                titles[m.group(1)] = m.group(2)
            m = re.match(r"#(\d+) CACHED$", line)
            if m:
                cached.add(m.group(1))
        return {n: (t, n in cached) for n, t in titles.items()}

    def step_status(self, needle):
        """[(title, cached)] of the steps whose title contains needle."""
        return [(t, c) for t, c in self.steps().values() if needle in t]


def revision():
    """The repository's commit, for the images' org.opencontainers.image.revision label."""
    p = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def build_args(kind):
    """The e2e builds' arguments: the stand-ins for the Dockerfiles' default bases
    (Node 22; every node stand-in is glibc, so one stands in for node:22-alpine and
    node:22-bookworm-slim alike), the prebuilt kai-init, and the label values."""
    args = {"KAI_INIT_FROM": "prebuilt", "VERSION": "0.0.0-e2e", "REVISION": revision()}
    if kind == "api":
        args["NODE_IMAGE"] = STANDINS["node22-alpine"]
    else:
        args["NODE_IMAGE"] = STANDINS["node22-glibc"]
        args["TF_IMAGE"] = STANDINS["tf"]
    return args


def copy_context(dest):
    """Copy what the Dockerfiles need into dest (a second, modifiable context)."""
    def ignore(_dir, names):
        return [n for n in names if n in ("node_modules", "dist", "__pycache__")]

    for name in ("Dockerfile.api", "Dockerfile.ml", ".dockerignore", "Cargo.toml", "Cargo.lock"):
        if os.path.exists(os.path.join(REPO, name)):
            shutil.copy2(os.path.join(REPO, name), os.path.join(dest, name))
    for d in ("src", ".cargo", "examples"):
        if os.path.isdir(os.path.join(REPO, d)):
            shutil.copytree(os.path.join(REPO, d), os.path.join(dest, d), ignore=ignore)
    os.makedirs(os.path.dirname(os.path.join(dest, BINARY_REL)))
    shutil.copy2(os.path.join(REPO, BINARY_REL), os.path.join(dest, BINARY_REL))


# ---------------------------------------------------------------- containers

def run_container(image, name, env_vars=None, health=True, extra=None):
    """docker run -d --network none with short health-check intervals."""
    args = ["run", "-d", "--name", name, "--label", LABEL, "--network", "none",
            # As in examples/k8s (readOnlyRootFilesystem, an emptyDir on /tmp).
            "--read-only", "--tmpfs", "/tmp",
            # The image's kai-init probe, sped up for the tests.
            "-e", "KAI_INIT_PROBE_INTERVAL=1s", "-e", "KAI_INIT_PROBE_TIMEOUT=500ms",
            "-e", "KAI_INIT_PROBE_FAILURES=2"]
    if health:
        # The image's HEALTHCHECK CMD (kai-init check), run every second.
        args += ["--health-interval", "1s", "--health-timeout", "5s",
                 "--health-retries", "2", "--health-start-period", "30s"]
    for k, v in (env_vars or {}).items():
        args += ["-e", f"{k}={v}"]
    args += list(extra or [])
    args.append(image)
    docker(*args, timeout=60)
    return name


def inspect(name):
    return json.loads(docker("inspect", name).stdout)[0]


def health_status(name):
    h = inspect(name)["State"].get("Health")
    return h["Status"] if h else None


def logs(name):
    p = docker("logs", name, check=False, timeout=30)
    return p.stdout + p.stderr


def exec_(name, *cmd, timeout=30, check=True, detach=False):
    args = ["exec"] + (["-d"] if detach else []) + [name, *cmd]
    return docker(*args, timeout=timeout, check=check)


PS_SCRIPT = r'''
for d in /proc/[0-9]*; do
  [ -r "$d/stat" ] || continue
  s=$(cat "$d/stat" 2>/dev/null) || continue
  u=$(grep '^Uid:' "$d/status" 2>/dev/null)
  c=$(tr '\0\n' '  ' < "$d/cmdline" 2>/dev/null)
  printf '%s ||| %s ||| %s\n' "$s" "$u" "$c"
done
'''


def processes(name):
    """The container's processes as seen in its own /proc (pid namespace):
    [{pid, comm, state, ppid, uid, cmdline}], without the scanning shell itself."""
    out = exec_(name, "sh", "-c", PS_SCRIPT).stdout
    procs = []
    for line in out.splitlines():
        parts = line.split(" ||| ")
        if len(parts) < 3 or not re.match(r"\d+ \(", parts[0]):
            continue
        stat, uid_line, cmdline = parts[0], parts[1], parts[2].strip()
        lp, rp = stat.find("("), stat.rfind(")")
        fields = stat[rp + 2:].split()
        uids = uid_line.split()
        procs.append({
            "pid": int(stat[:lp].strip()),
            "comm": stat[lp + 1:rp],
            "state": fields[0],
            "ppid": int(fields[1]),
            "uid": int(uids[1]) if len(uids) > 1 else None,
            "cmdline": cmdline,
        })
    # Drop the scanner: `sh -c <script>` and the cat/grep/tr it ran.
    return [p for p in procs if "[0-9]*" not in p["cmdline"] and p["comm"] not in ("cat", "grep", "tr")
            or p["state"] == "Z"]


def find_proc(name, pattern):
    rx = re.compile(pattern)
    return [p for p in processes(name) if rx.search(p["cmdline"])]


def remove_run_objects():
    """Remove every container and image labelled with this run's id."""
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False, timeout=120)
    imgs = docker("images", "-q", "--filter", f"label={LABEL}", check=False).stdout.split()
    if imgs:
        docker("rmi", "-f", *sorted(set(imgs)), check=False, timeout=120)
