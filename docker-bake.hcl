# docker-bake.hcl: build both images in parallel with `docker buildx bake`
# (group "default": api and ml).
#
#   docker buildx bake                          # both, kai-init built from source
#   docker buildx bake --set '*.args.KAI_INIT_FROM=prebuilt'
#   TAG=1.2.3 REVISION=$(git rev-parse HEAD) REGISTRY=registry.example.com/kai docker buildx bake --push
#
# Supply chain: every image gets OCI labels (org.opencontainers.image.version = TAG,
# .revision = REVISION, .source = SOURCE_URL, .licenses) and two attestations, an SBOM
# and SLSA provenance (mode=max: the build's arguments and materials), pushed with it
# and shown by `docker buildx imagetools inspect IMAGE --format '{{json .SBOM}}'`.
# Attestations need an exporter that can store them: --push, a docker-container
# builder, or Docker's containerd image store. Loading into the classic image store
# (the docker driver's --load) refuses them: add --sbom=false --provenance=false there.
#
# CI runners start with an empty BuildKit cache. With CACHE_REF set, each target
# reads and writes its layers (mode=max: the build stages too, so npm ci, pip and
# cargo layers are reused) as a registry cache image:
#   CACHE_REF=registry.example.com/kai/cache docker buildx bake --push
# (GitHub Actions' own cache instead: --set '*.cache-from=type=gha,scope=kai'
#  --set '*.cache-to=type=gha,scope=kai,mode=max'.)
#
# Reproducible builds: pin the base images by digest through the variables below,
#   NODE_IMAGE=node:22-alpine@sha256:<digest> RUST_IMAGE=rust:1-alpine@sha256:<digest> docker buildx bake
# and refresh a pin with `docker buildx imagetools inspect node:22-alpine` (its
# "Digest:" line), rebuild, test, commit. The defaults stay tags so that a build
# can substitute a mirror or a local image (the e2e tests use stand-ins).
#
# Bake needs the buildx plugin. Debian's docker.io 20.10 client has BuildKit
# built in but no buildx: there, build the two targets with two parallel
# `DOCKER_BUILDKIT=1 docker build -f Dockerfile.api|Dockerfile.ml .` (what
# tests/e2e/run does); the build stages for kai-init are shared through the
# BuildKit cache either way.

variable "REGISTRY" {
  default = "kai"
}

variable "TAG" {
  default = "latest"
}

# The commit built (org.opencontainers.image.revision), e.g. REVISION=$(git rev-parse HEAD).
variable "REVISION" {
  default = "unknown"
}

# This repository's URL (org.opencontainers.image.source).
variable "SOURCE_URL" {
  default = ""
}

# source | prebuilt (copies target/<x86_64|aarch64>-unknown-linux-musl/release/kai-init,
# so build both first for both platforms: scripts/release does)
variable "KAI_INIT_FROM" {
  default = "source"
}

# Node 22 (maintenance LTS): Node 20 left upstream support at the end of April 2026.
variable "NODE_IMAGE" {
  default = "node:22-alpine"
}

variable "NODE_GLIBC_IMAGE" {
  default = "node:22-bookworm-slim"
}

variable "TF_IMAGE" {
  default = "tensorflow/tensorflow:2.17.0"
}

# linux/arm64's TensorFlow base: tensorflow/tensorflow has no arm64 image (Dockerfile.ml
# says what is used instead and why).
variable "TF_ARM64_IMAGE" {
  default = "python:3.11-slim-bookworm"
}

variable "TF_ARM64_VERSION" {
  default = "2.17.0"
}

variable "RUST_IMAGE" {
  default = "rust:1-alpine"
}

# Registry prefix for the build cache ("" = no external cache), e.g. registry.example.com/kai/cache
variable "CACHE_REF" {
  default = ""
}

# cache-from / cache-to entries for one target: none without CACHE_REF.
function "cache_from" {
  params = [name]
  result = CACHE_REF == "" ? [] : ["type=registry,ref=${CACHE_REF}:${name}"]
}

function "cache_to" {
  params = [name]
  result = CACHE_REF == "" ? [] : ["type=registry,ref=${CACHE_REF}:${name},mode=max"]
}

group "default" {
  targets = ["api", "ml"]
}

# Both images for amd64 and arm64: kai-init is cross-compiled on the build machine's
# platform; the rest of each image is its base's for that platform. A multi-platform
# build needs a builder that can hold one (docker buildx create --use) and, for the RUN
# steps of the other platform, QEMU binfmt handlers on the build machine.
# (tests/e2e/test_arm64.py reads this file: buildx cannot be installed on the test machines.)
target "_common" {
  context   = "."
  platforms = ["linux/amd64", "linux/arm64"]
  attest = [
    "type=sbom",
    "type=provenance,mode=max",
  ]
}

target "api" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile.api"
  target     = "runtime"
  tags       = ["${REGISTRY}/api:${TAG}"]
  cache-from = cache_from("api")
  cache-to   = cache_to("api")
  args = {
    NODE_IMAGE    = NODE_IMAGE
    RUST_IMAGE    = RUST_IMAGE
    KAI_INIT_FROM = KAI_INIT_FROM
    VERSION       = TAG
    REVISION      = REVISION
    SOURCE_URL    = SOURCE_URL
  }
}

target "ml" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile.ml"
  target     = "runtime"
  tags       = ["${REGISTRY}/ml:${TAG}"]
  cache-from = cache_from("ml")
  cache-to   = cache_to("ml")
  args = {
    NODE_IMAGE       = NODE_GLIBC_IMAGE
    TF_IMAGE         = TF_IMAGE
    TF_ARM64_IMAGE   = TF_ARM64_IMAGE
    TF_ARM64_VERSION = TF_ARM64_VERSION
    RUST_IMAGE       = RUST_IMAGE
    KAI_INIT_FROM    = KAI_INIT_FROM
    VERSION          = TAG
    REVISION         = REVISION
    SOURCE_URL       = SOURCE_URL
  }
}
