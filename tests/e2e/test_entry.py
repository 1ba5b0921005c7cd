"""End-to-end tests of the entrypoint-script replacement (issue 10) on a real
Docker engine, with the API image test_images.py built:

  1. a late dependency: the app's container waits (--wait-for) for a port that a
     second container, sharing only its network namespace (--network
     container:...), opens seconds later; meanwhile `kai-init check` says what it
     waits for and /livez passes; the app starts after the dependency, with no
     restart in between;
  2. a failing pre step: the container exits with the step's status, the steps
     after it and the app never ran;
  3. a root-only secret (0400, root-owned, bind-mounted like a Kubernetes secret
     volume) reaches the app, which runs as `node`, as a variable
     (KAI_INIT_FILE_ENV=DB_PASSWORD: only the listed name);
  4. an image with no shell at all (FROM scratch: kai-init, node, its libraries,
     the app) runs with a wait, a pre step, --file-env and --expand-env, and passes
     `kai-init check`.

Run through tests/e2e/run (KAI_E2E_ONLY=Entry runs only these and the builds).
Containers use --network none or another container's namespace; nothing here
creates a network.
"""
import hashlib
import json
import os
import shutil
import tempfile
import time
import unittest

import harness as h
from test_images import image

APP_STARTED = '"msg":"listening"'
SECRET = "e2e-Kai-Secret-9f3b"


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def wait_exit(name, timeout):
    """The container's exit code once it has stopped (docker wait, bounded)."""
    p = h.docker("wait", name, timeout=timeout)
    return int(p.stdout.strip())


def run(name, img, args=(), env=None, extra=(), user=None, network="none"):
    """docker run -d, labelled, read-only root with a /tmp tmpfs like the image tests."""
    cmd = ["run", "-d", "--name", name, "--label", h.LABEL, "--network", network,
           "--read-only", "--tmpfs", "/tmp"]
    if user:
        cmd += ["--user", user]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    cmd += list(extra)
    cmd.append(img)
    cmd += list(args)
    h.docker(*cmd, timeout=60)
    return name


def check(name, *args):
    """`kai-init check ARGS` run in the container: (exit code, its line)."""
    p = h.exec_(name, "/sbin/kai-init", "check", *args, check=False)
    return p.returncode, (p.stdout + p.stderr).strip()


class EntryTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.api = image("api")
        cls.names = []
        cls.tmp = tempfile.mkdtemp(prefix="kai-e2e-entry-")
        # A root-only secret, as a Kubernetes secret volume or a Docker secret holds it.
        cls.secret = os.path.join(cls.tmp, "secret")
        with open(cls.secret, "w") as f:
            f.write(SECRET + "\n")
        os.chown(cls.secret, 0, 0)
        os.chmod(cls.secret, 0o400)

    @classmethod
    def tearDownClass(cls):
        for name in cls.names:
            h.docker("rm", "-f", name, check=False, timeout=60)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def name(self, tag):
        n = f"kai-e2e-{h.RUN_ID}-entry-{tag}"
        self.names.append(n)
        return n

    def logs_without_secret(self, name):
        out = h.logs(name)
        self.assertNotIn(SECRET, out, "the secret is in the container's output")
        return out

    # ---- 1: a dependency that comes up late, in a container that shares loopback
    def test_1_waits_for_a_late_dependency(self):
        app = self.name("late-app")
        run(app, self.api, env={"KAI_INIT_WAIT_FOR": "tcp://localhost:7777", "KAI_INIT_WAIT_TIMEOUT": "60s"},
            extra=["--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "2",
                   "--health-start-period", "60s"])
        h.wait_for("kai-init to wait", lambda: "waiting target=tcp://localhost:7777" in h.logs(app), 30)
        started_at = h.inspect(app)["State"]["StartedAt"]

        # While it waits: /healthz (what HEALTHCHECK runs) names the target, /livez passes.
        code, line = 0, ""

        def says_refused():
            nonlocal code, line
            code, line = check(app)
            return "connection refused" in line
        # The dependency's refusal on 127.0.0.1, not ::1's "address not available".
        h.wait_for("check to name the last error", says_refused, 15)
        self.assertEqual(code, 1, line)
        self.assertIn("503 [-]starting failed: waiting for tcp://localhost:7777", line)
        code, live = check(app, "--path", "/livez")
        self.assertEqual(code, 0, live)
        self.assertEqual(h.find_proc(app, r"^node dist/server\.js"), [], "the app started before its dependency")
        self.assertNotEqual(h.health_status(app), "unhealthy")

        # Three seconds later the dependency comes up, in its own container.
        time.sleep(3)
        dep = self.name("late-dep")
        script = ("require('net').createServer((s) => s.end())"
                  ".listen(7777, '127.0.0.1', () => console.log('dependency listening'))")
        run(dep, self.api, args=["-e", script], extra=["--entrypoint", "node"], network=f"container:{app}")
        h.wait_for("the dependency to listen", lambda: "dependency listening" in h.logs(dep), 30)
        dep_up = h.inspect(dep)["State"]["StartedAt"]

        h.wait_for("the app to start", lambda: APP_STARTED in h.logs(app), 30)
        h.wait_for(f"{app} to become healthy", lambda: h.health_status(app) == "healthy", 45)
        state = h.inspect(app)
        self.assertTrue(state["State"]["Running"])
        self.assertEqual(state["RestartCount"], 0)
        self.assertEqual(state["State"]["StartedAt"], started_at, "the container was restarted")
        out = h.logs(app)
        listening = json.loads(next(l for l in out.splitlines() if APP_STARTED in l))
        # Both are RFC 3339 UTC; Docker's has nanoseconds, the app's milliseconds.
        self.assertGreaterEqual(listening["t"][:23], dep_up[:23], "the app started before the dependency")
        self.assertIn("up target=tcp://localhost:7777", out)
        code, line = check(app)
        self.assertEqual(code, 0, line)
        print(f"\n    waited {dep_up[11:23]} -> app listening {listening['t'][11:23]}", end=" ")

    # ---- 2: a failing pre step is the container's exit status; nothing after it runs
    def test_2_failing_pre_step_stops_the_start(self):
        c = self.name("pre-fail")
        steps = ("node -e \"console.log('pre: migrating')\";"
                 " node -e 'process.exit(3)';"
                 " node -e \"console.log('pre: after the failure')\"")
        run(c, self.api, env={"KAI_INIT_PRE": steps})
        self.assertEqual(wait_exit(c, 60), 3, h.logs(c))
        out = h.logs(c)
        self.assertIn("pre: migrating", out)
        self.assertIn("pre step failed; not starting COMMAND", out)
        self.assertNotIn("pre: after the failure", out)
        self.assertNotIn(APP_STARTED, out, "the app ran")

    # ---- 3: a 0400 root-owned secret reaches the app running as node
    def test_3_root_only_secret_reaches_the_app(self):
        c = self.name("secret")
        js = ("const fs = require('fs'); let read = 'no';"
              "try { fs.readFileSync('/run/secrets/db_password'); read = 'yes'; } catch (e) {}"
              "const v = process.env.DB_PASSWORD || '';"
              "console.log(JSON.stringify({uid: process.getuid(), user: process.env.USER,"
              " sha: require('crypto').createHash('sha256').update(v).digest('hex'),"
              " fileVar: 'DB_PASSWORD_FILE' in process.env, appCanRead: read,"
              " sslCertFile: process.env.SSL_CERT_FILE || null, sslCert: 'SSL_CERT' in process.env}));")
        # The allow-list names the one secret: any other *_FILE variable of the image (the
        # stand-in base sets SSL_CERT_FILE, its builds go through a TLS proxy) reaches the
        # app as the path it is.
        run(c, self.api, args=["node", "-e", js], user="0:0",
            env={"KAI_INIT_USER": "node", "KAI_INIT_FILE_ENV": "DB_PASSWORD",
                 "DB_PASSWORD_FILE": "/run/secrets/db_password"},
            extra=["-v", f"{self.secret}:/run/secrets/db_password:ro"])
        self.assertEqual(wait_exit(c, 60), 0, h.logs(c))
        out = self.logs_without_secret(c)
        self.assertIn("--file-env: filled DB_PASSWORD from files", out)
        seen = json.loads(next(l for l in out.splitlines() if l.startswith("{")))
        image_env = dict(e.split("=", 1) for e in
                         json.loads(h.docker("image", "inspect", self.api).stdout)[0]["Config"]["Env"])
        self.assertEqual(seen, {"uid": 1000, "user": "node", "sha": sha256(SECRET), "fileVar": False,
                                "appCanRead": "no", "sslCertFile": image_env.get("SSL_CERT_FILE"),
                                "sslCert": False})

    # ---- 4: no shell in the image at all
    def test_4_shell_less_image(self):
        tag = f"kai-e2e/entry-noshell:{h.RUN_ID}"
        ctx = os.path.join(self.tmp, "noshell")
        os.makedirs(ctx)
        # node, the ELF loader and the libraries the loader lists for node, the app and
        # kai-init: nothing else (no /bin at all).
        dockerfile = f"""
FROM {self.api} AS full
USER root
RUN set -e; node=$(command -v node); \\
    ld=$(ls /lib64/ld-linux-x86-64.so.2 /lib/ld-musl-x86_64.so.1 2>/dev/null | head -n 1); \\
    for f in "$node" "$ld" $("$ld" --list "$node" | awk '$2 == "=>" {{print $3}} $1 ~ /^\\// {{print $1}}'); do \\
      mkdir -p "/out$(dirname "$f")"; cp -L "$f" "/out$f"; \\
    done; \\
    mkdir -p /out/etc /out/run/secrets; cp /etc/passwd /etc/group /out/etc/
FROM scratch
COPY --from=full /out/ /
COPY --from=full /sbin/kai-init /sbin/kai-init
COPY --from=full /app /app
WORKDIR /app
ENV NODE_ENV=production PORT=3000 KAI_INIT_PROBE=http://127.0.0.1:3000/health KAI_INIT_NO_NEW_PRIVS=true
USER 1000:1000
ENTRYPOINT ["/sbin/kai-init", "--"]
CMD ["node", "dist/server.js"]
"""
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(dockerfile)
        h.docker("build", "--network", "host", "--label", h.LABEL, "-t", tag, ctx, timeout=300)
        listing = h.docker("run", "--rm", "--network", "none", "--label", h.LABEL, "--entrypoint", "node", tag,
                           "-e", "const fs = require('fs');"
                           "console.log(['/bin', '/usr/bin', '/bin/sh', '/usr/bin/env'].filter(fs.existsSync)"
                           ".join(',') || 'none')").stdout.strip()
        self.assertEqual(listing, "none", "the image has a shell or a /bin")

        c = self.name("noshell")
        pre = ("node -e \"require('fs').writeFileSync('/tmp/pre', "
               "process.argv[1] === process.env.API_TOKEN ? 'expanded:' + process.argv[2] : 'not expanded')\""
               " ${API_TOKEN} ${PORT}")
        run(c, tag, args=["node", "dist/server.js", "--port=${PORT}", "$$"], user="0:0",
            env={"KAI_INIT_USER": "1000:1000", "KAI_INIT_WAIT_FOR": "file:/run/secrets/api_token",
                 "KAI_INIT_PRE": pre, "KAI_INIT_FILE_ENV": "1", "KAI_INIT_EXPAND_ENV": "1",
                 "API_TOKEN_FILE": "/run/secrets/api_token", "KAI_INIT_PROBE_INTERVAL": "1s"},
            extra=["-v", f"{self.secret}:/run/secrets/api_token:ro"])

        def healthy():
            if not h.inspect(c)["State"]["Running"]:
                raise AssertionError(f"{c} exited:\n{h.logs(c)}")
            return check(c)[0] == 0
        h.wait_for("kai-init check to pass", healthy, 45)
        code, line = check(c)
        self.assertEqual(code, 0, line)
        self.assertIn("/healthz 200 ok", line)
        out = self.logs_without_secret(c)
        self.assertIn(APP_STARTED, out)
        self.assertIn("up target=file:/run/secrets/api_token", out)
        # What the pre step wrote, and COMMAND's expanded arguments, read with node.
        seen = h.exec_(c, "node", "-e",
                       "const fs = require('fs');"
                       "const app = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).map((p) =>"
                       " { try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\\0') } catch (e)"
                       " { return [] } }).find((a) => a[1] === 'dist/server.js');"
                       "console.log(JSON.stringify({pre: fs.readFileSync('/tmp/pre', 'utf8'), app: app.slice(0, 4)}))"
                       ).stdout
        self.assertEqual(json.loads(seen), {"pre": "expanded:3000",
                                            "app": ["node", "dist/server.js", "--port=3000", "$"]})
        p = h.exec_(c, "sh", "-c", "true", check=False)
        self.assertNotEqual(p.returncode, 0, "a shell ran")
        h.docker("stop", "-t", "10", c, timeout=40)
        self.assertEqual(h.inspect(c)["State"]["ExitCode"], 0, h.logs(c))


def suite():
    return unittest.TestLoader().loadTestsFromTestCase(EntryTests)
