# Dockerfile.ml: the ML service (examples/ml) with kai-init as PID 1.
#
#   process tree:  kai-init (PID 1) -> node front/server.js -> python3 worker/worker.py
#
#   DOCKER_BUILDKIT=1 docker build -f Dockerfile.ml -t kai-ml .       # kai-init built from source
#   DOCKER_BUILDKIT=1 docker build -f Dockerfile.ml --build-arg KAI_INIT_FROM=prebuilt -t kai-ml .
#   docker buildx bake ml                                             # see docker-bake.hcl
#
# Needs BuildKit (RUN --mount): Docker 23+ uses it by default; Docker 20.10
# needs DOCKER_BUILDKIT=1 (harmless on newer ones). No `# syntax=` image is needed.
#
# Stages: kai-init-source | kai-init-prebuilt-<arch> -> kai-init
#         tf-amd64 | tf-arm64 -> tf (the TF base of the image's architecture, below)
#         python-deps  (TF base, venv --system-site-packages, pip cache mount)
#         model        (TF base, examples/ml/model/build_model.py -> model.keras)
#         node-build   (glibc Node image, npm ci --omit=dev, npm cache mount)
#         runtime      (TF base + artifacts only: venv, model, node binary,
#                       node_modules, app code, kai-init)
#
# GPU: --build-arg TF_IMAGE=tensorflow/tensorflow:2.17.0-gpu is the one switch;
# run with `docker run --gpus all` (NVIDIA Container Toolkit); the worker logs the
# devices TensorFlow sees ("devices": ["CPU:...", "GPU:..."]).
#
# Architectures: linux/amd64 and linux/arm64 (`--platform`). kai-init is compiled on
# the build machine's platform for the image's (TARGETARCH). The TensorFlow base is
# chosen per architecture (stage tf-$TARGETARCH):
#   amd64  TF_IMAGE, the official tensorflow/tensorflow image (Ubuntu 22.04, Python 3.11).
#   arm64  tensorflow/tensorflow publishes linux/amd64 images only, so TF_ARM64_IMAGE
#          (python:3.11-slim-bookworm: Python 3.11, glibc 2.36, useradd) plus the
#          `tensorflow` wheel from PyPI, TF_ARM64_VERSION (keep it TF_IMAGE's version).
#          It must be `tensorflow`: PyPI has manylinux2014_aarch64 wheels of it (2.17.0:
#          cp39-cp312) but none of `tensorflow-cpu`, which is x86_64 and Windows only.
#          CPU only; an arm64 GPU image is not covered here.
#
# Why the Node stage is node:22-bookworm-slim and not node:22-alpine:
# tensorflow/tensorflow images are Ubuntu 22.04 (glibc 2.35). The node binary
# of the Alpine image is linked against musl and cannot run there (there is no
# /lib/ld-musl-x86_64.so.1), and neither could native addons built on Alpine.
# The official Debian node binary is built against an old glibc baseline
# (2.28), so it runs on Ubuntu 22.04 with only libc, libstdc++ and libgcc_s,
# which the TF image has. Native addons compiled in bookworm (glibc 2.36)
# could still need newer glibc symbols than Ubuntu 22.04's 2.35: the front's
# dependencies are pure JavaScript; if you add native ones, build them on a
# base with glibc <= the TF image's (e.g. node:22-bullseye-slim) or in the TF
# image itself.
#
# Node 22 (maintenance LTS) is the default: Node 20 left upstream support at the end
# of April 2026 (--build-arg NODE_IMAGE=node:20-bookworm-slim still builds).
#
# TensorFlow: the current release is 2.21.0 (PyPI, 2026-12-07). The default stays
# 2.17.0, the version the e2e tests run (their stand-in is tensorflow-cpu 2.17.0 from
# PyPI) and whose golden outputs they check; --build-arg
# TF_IMAGE=tensorflow/tensorflow:2.21.0 is the upgrade, untested here. Check that
# image's python3 version against the venv layout below before moving.

ARG TF_IMAGE=tensorflow/tensorflow:2.17.0
ARG TF_ARM64_IMAGE=python:3.11-slim-bookworm
ARG TF_ARM64_VERSION=2.17.0
ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUST_IMAGE=rust:1-alpine
ARG KAI_INIT_FROM=source

# ---- kai-init, built from this repository's source (static musl binary) ----
# Cross-compiled on the build machine's platform, as in Dockerfile.api.
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS kai-init-build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# .cargo/config.toml holds the musl targets' rustflags (static, non-PIE).
COPY .cargo ./.cargo
COPY src ./src
ARG TARGETARCH
ARG BUILDARCH
RUN --mount=type=cache,id=kai-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=kai-cargo-target,target=/src/target \
    case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-musl linker=CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER ;; \
      arm64) target=aarch64-unknown-linux-musl linker=CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER ;; \
      *) echo "kai-init builds for amd64 and arm64, not TARGETARCH=$TARGETARCH" >&2; exit 1 ;; \
    esac \
 && if [ "$BUILDARCH" != "$TARGETARCH" ]; then export "$linker=rust-lld"; fi \
 && rustup target add "$target" \
 && cargo build --release --locked --target "$target" \
 && cp "target/$target/release/kai-init" /kai-init

FROM scratch AS kai-init-source
COPY --from=kai-init-build /kai-init /kai-init

FROM scratch AS kai-init-prebuilt-amd64
COPY target/x86_64-unknown-linux-musl/release/kai-init /kai-init

FROM scratch AS kai-init-prebuilt-arm64
COPY target/aarch64-unknown-linux-musl/release/kai-init /kai-init

FROM kai-init-prebuilt-${TARGETARCH} AS kai-init-prebuilt

FROM kai-init-${KAI_INIT_FROM} AS kai-init

# ---- the TensorFlow base of the image's architecture (see the top of this file) ----
FROM ${TF_IMAGE} AS tf-amd64

FROM ${TF_ARM64_IMAGE} AS tf-arm64
ARG TF_ARM64_VERSION
# Into the base's own site-packages, as the official image has it (the venv below
# sees it through --system-site-packages).
RUN --mount=type=cache,id=kai-pip,target=/root/.cache/pip \
    PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
    python3 -m pip install "tensorflow==${TF_ARM64_VERSION}"

FROM tf-${TARGETARCH} AS tf

# ---- Python dependencies: a venv over the base's TensorFlow ----
FROM tf AS python-deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# A venv that sees the base's site-packages (TensorFlow, in the TF images'
# /usr/local/lib/python3.11/dist-packages) and holds only what requirements.txt
# adds. Unlike `pip --prefix` + PYTHONPATH it does not depend on where this
# python build puts --prefix installs (Ubuntu's: local/lib/python3.11/dist-packages),
# and its site-packages is a real site directory, so .pth files work.
# --without-pip: the base's pip (visible through --system-site-packages) installs
# into it; Ubuntu's python3.11-venv (ensurepip) is not needed.
# Compilers for packages without wheels would be installed here (apt-get install
# build-essential python3-dev): this stage is thrown away. The pins are all wheels.
COPY examples/ml/requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,id=kai-pip,target=/root/.cache/pip \
    python3 -m venv --without-pip --system-site-packages /opt/venv \
 && /opt/venv/bin/python3 -m pip install -r /tmp/requirements.txt \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# ---- the model: built deterministically (fixed weights), saved as .keras ----
FROM tf AS model
ENV TF_CPP_MIN_LOG_LEVEL=2
COPY examples/ml/model/build_model.py /tmp/build_model.py
RUN mkdir -p /opt/ml/model \
 && python3 /tmp/build_model.py /opt/ml/model/model.keras

# ---- Node front: production dependencies (glibc, see above) ----
FROM ${NODE_IMAGE} AS node-build
WORKDIR /app
COPY examples/ml/package.json examples/ml/package-lock.json ./
RUN --mount=type=cache,id=kai-npm,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund
COPY examples/ml/front ./front
COPY examples/ml/worker ./worker
RUN npm run build

# ---- runtime: the TF base plus artifacts only ----
FROM tf AS runtime
# First: never changes, so no ENV edit below rebuilds it.
# A fixed uid/gid so Kubernetes' runAsNonRoot can verify it (runAsUser: 10001).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # Anyone pip-installing on top of this image: no cache in the layer, no
    # version-check request.
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    # GPU images (TF_IMAGE=tensorflow/tensorflow:2.17.0-gpu): take GPU memory as
    # needed instead of all of it at start.
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    NODE_ENV=production \
    PORT=8080 \
    SHUTDOWN_GRACE_MS=5000 \
    ML_PYTHON=/opt/venv/bin/python3 \
    ML_MODEL=/opt/ml/model/model.keras \
    # Readiness: the front writes a newline on fd 3 once the worker has loaded the
    # model and the server listens (kai-init --notify fd:3).
    KAI_INIT_NOTIFY=fd:3 \
    # Liveness: the front's /health, which pings the worker, so a hung worker or a
    # stuck event loop fails it.
    KAI_INIT_PROBE=http://127.0.0.1:8080/health \
    KAI_INIT_PROBE_INTERVAL=5s \
    KAI_INIT_PROBE_TIMEOUT=2s \
    KAI_INIT_PROBE_FAILURES=3 \
    # kai-init forwards SIGTERM to the front (its main child); the front answers what
    # it accepted (SHUTDOWN_GRACE_MS), then closes the worker's stdin and waits for it:
    # 8 s is the most this tree may take before kai-init SIGKILLs the front's group.
    KAI_INIT_STOP_TIMEOUT=8s \
    KAI_INIT_NO_NEW_PRIVS=true
# Largest and least often changed first; kai-init and the app code last.
COPY --from=node-build /usr/local/bin/node /usr/local/bin/node
COPY --from=python-deps /opt/venv /opt/venv
COPY --from=model /opt/ml/model /opt/ml/model
WORKDIR /app
# Code and dependencies owned by root, read-only for the app user.
COPY --from=node-build /app/node_modules ./node_modules
COPY --from=node-build /app/package.json ./
COPY --from=kai-init /kai-init /sbin/kai-init
COPY --from=node-build /app/front ./front
COPY --from=node-build /app/worker ./worker
# Numeric, so Kubernetes' runAsNonRoot can verify it without a runAsUser.
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
# start-period covers the model load (TensorFlow import): failures do not count for
# 180 s, the front's ML_LOAD_TIMEOUT_MS, as the Kubernetes startupProbe allows
# (examples/k8s/ml.yaml); a container that is healthy sooner says so at its first
# passing check. That check comes one --interval after the start: Docker >= 25 can check
# more often while starting, but Docker 20.10's builder rejects HEALTHCHECK
# --start-interval (and does not expand build args in HEALTHCHECK options), so on
# Docker >= 25 pass it at run time:
#   docker run --health-start-interval=1s ...   (compose: healthcheck.start_interval)
HEALTHCHECK --interval=10s --timeout=3s --start-period=180s --retries=3 \
    CMD ["/sbin/kai-init", "check"]
ENTRYPOINT ["/sbin/kai-init", "--"]
CMD ["node", "front/server.js"]
# OCI labels. Last, so that a new VERSION or REVISION changes only the image's
# metadata: `--build-arg VERSION=1.2.3 --build-arg REVISION=$(git rev-parse HEAD)`
# (docker-bake.hcl passes TAG and REVISION). SOURCE_URL: this repository's URL.
# Licenses: the example (MIT) and kai-init (MIT OR Apache-2.0); TensorFlow, Node and
# the rest of the base keep their own.
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE_URL=
LABEL org.opencontainers.image.title="kai-ml" \
      org.opencontainers.image.description="Example ML service (Node front, Python TensorFlow worker) under kai-init" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT AND (MIT OR Apache-2.0)"
