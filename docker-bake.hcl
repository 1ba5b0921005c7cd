# docker-bake.hcl: build both images in parallel with `docker buildx bake`
# (group "default": api and ml).
#
#   docker buildx bake                          # both, kai-init built from source
#   docker buildx bake --set '*.args.KAI_INIT_FROM=prebuilt'
#   TAG=1.2.3 REGISTRY=registry.example.com/kai docker buildx bake --push
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

# source | prebuilt (copies target/x86_64-unknown-linux-musl/release/kai-init)
variable "KAI_INIT_FROM" {
  default = "source"
}

variable "NODE_IMAGE" {
  default = "node:20-alpine"
}

variable "NODE_GLIBC_IMAGE" {
  default = "node:20-bookworm-slim"
}

variable "TF_IMAGE" {
  default = "tensorflow/tensorflow:2.17.0"
}

variable "RUST_IMAGE" {
  default = "rust:1-alpine"
}

group "default" {
  targets = ["api", "ml"]
}

# kai-init's build stage targets x86_64-unknown-linux-musl, hence amd64 only.
target "_common" {
  context   = "."
  platforms = ["linux/amd64"]
}

target "api" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile.api"
  target     = "runtime"
  tags       = ["${REGISTRY}/api:${TAG}"]
  args = {
    NODE_IMAGE    = NODE_IMAGE
    RUST_IMAGE    = RUST_IMAGE
    KAI_INIT_FROM = KAI_INIT_FROM
  }
}

target "ml" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile.ml"
  target     = "runtime"
  tags       = ["${REGISTRY}/ml:${TAG}"]
  args = {
    NODE_IMAGE    = NODE_GLIBC_IMAGE
    TF_IMAGE      = TF_IMAGE
    RUST_IMAGE    = RUST_IMAGE
    KAI_INIT_FROM = KAI_INIT_FROM
  }
}
