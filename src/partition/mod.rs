//! Partition replicas: each partition is its own openraft group whose voters
//! are its replicas; its leader is the Kafka partition leader. This module
//! owns batch validation, offsets, idempotence, the log, fetch wake-ups (the
//! high-watermark `watch`), retention and leadership (reports, transfers,
//! the passes of `raft::leadership`'s elections). It knows nothing of
//! consumer groups or HTTP.

pub mod append;
pub mod batch;
pub mod command;
pub mod compact;
pub mod fence;
pub mod handle;
pub mod hints;
pub mod inflate;
pub mod leadership;
pub mod log;
pub mod manager;
pub mod producers;
pub mod retention;
pub mod routing;
pub mod store;
