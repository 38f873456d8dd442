//! The replay that loads a `__consumer_offsets` partition's groups when this
//! broker becomes its leader.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;

use super::LOAD_CHUNK;
use crate::group::membership::{Group, GroupError};
use crate::group::records;
use crate::partition::handle::PartitionHandle;

/// Replays a partition's log into its groups, once the leader has applied
/// every entry committed before its term.
pub(super) async fn load(handle: &PartitionHandle) -> Result<HashMap<String, Group>, GroupError> {
    handle.raft.ensure_linearizable().await.map_err(|e| {
        tracing::info!(group = handle.group, error = %e, "cannot load groups: leadership not confirmed");
        GroupError::NotCoordinator
    })?;
    let now = Instant::now();
    let mut groups = HashMap::new();
    let mut offset = handle.log.offsets().log_start_offset;
    loop {
        let read = handle.log.read(offset, LOAD_CHUNK).map_err(|e| {
            tracing::warn!(group = handle.group, error = %e, "cannot read __consumer_offsets");
            GroupError::CoordinatorNotAvailable
        })?;
        if read.batches == 0 {
            break;
        }
        let next = records::replay(Bytes::from(read.bytes), &mut groups, now).map_err(|e| {
            tracing::warn!(group = handle.group, error = %e, "cannot replay __consumer_offsets");
            GroupError::CoordinatorNotAvailable
        })?;
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(groups)
}
