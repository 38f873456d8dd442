//! raftka: a Kafka-compatible broker cluster on Raft (openraft) and RocksDB.
//!
//! Layout (data flows top to bottom):
//! - `protocol`  — Kafka framing, headers, response frames.
//! - `kafka`     — listener, connections, routing, one handler per API family.
//! - `http`      — the admin HTTP API.
//! - `group`     — consumer groups: coordinator, membership, committed offsets.
//! - `metadata`  — the controller state machine (Raft group 0) and its handle.
//! - `partition` — one Raft group per partition: batches, offsets, log, retention.
//! - `raft`      — openraft glue: type configs, log storage, multi-raft transport.
//! - `storage`   — the broker's RocksDB: column families, keys, fsync policy.
//! - `codec`     — bincode for what is stored and sent, decoding bounded by its input.
//! - `net`       — the socket edge: cancel-safe frames, byte budgets, per-IP limits.
//! - `config`    — every setting, its default, file/env/flag layering.
//! - `node`      — one node's services, shared by the Kafka and HTTP front ends.
//! - `broker`    — builds a node from its config; ordered shutdown.
//! - `cli`       — the client verbs of the binary, over the admin HTTP API.
//! - `events`    — leader changes and node up/down as this node sees them.
//! - `metrics`   — request counters and the `/metrics` exposition.
//! - `telemetry` — logging.
//!
//! Locks: `std` locks guard small maps whose every update is one insert,
//! remove or retain, so a panic elsewhere cannot leave them half-changed; a
//! poisoned lock is therefore taken over (`PoisonError::into_inner`), never
//! treated as empty or as an error (the panic itself is logged by its task).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod broker;
pub mod cli;
pub mod codec;
pub mod config;
pub mod events;
pub mod group;
pub mod http;
pub mod kafka;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod node;
pub mod partition;
pub mod protocol;
pub mod raft;
pub mod storage;
pub mod telemetry;
