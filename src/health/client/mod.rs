//! The client side of health: the requests that `--probe`, `--wait-for` and
//! `kai-init check` send to a service, and the readers of its answers.

pub mod http;
