//! The single integration-test binary (STYLE.md, "Layout"): real brokers on
//! real sockets, driven over the Kafka wire protocol.

#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod cluster;
mod common;
mod fuzz;
mod groups;
mod hostile;
mod http_api;
mod log_store;
mod partition_store;
mod produce_fetch;
mod storage_recovery;
