//! The client side of health: the requests that `--probe`, `--wait-for` and
//! `kai-init check` send to a service, and the readers of its answers: HTTP/1.1
//! (`http`) and gRPC's health service over h2c (`grpc`).

pub mod grpc;
pub mod http;
