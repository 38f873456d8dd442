//! The controller: cluster id, brokers, topics, partitions and their replica
//! sets and last reported leaders, producer-id blocks — one openraft group (group 0) whose state every
//! broker holds in full and answers `Metadata` from.

pub mod command;
pub mod forward;
pub mod handle;
pub mod placement;
pub mod producer_ids;
pub mod state;
pub mod store;
pub mod topic_config;
