//! The client side of health checks shared by probes and `check`; for now the gRPC
//! health client (issue 20), which the lead wires into `--probe`, `check`, `--wait-for`.

pub mod grpc;
