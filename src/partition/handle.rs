//! `PartitionHandle`: a cheap clone that talks to one local replica — appends
//! go through its Raft group, reads go to its log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{ClientWriteError, RaftError};

use crate::partition::command::PartRaft;
use crate::partition::command::{AppendRejection, PartitionCommand, PartitionResponse};
use crate::partition::fence::Fence;
use crate::partition::log::{PartitionLog, ReadError};
use crate::raft::types::{GroupId, NodeId};

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("not the leader; leader is {leader:?}")]
    NotLeader { leader: Option<NodeId> },
    #[error("replication not committed within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Rejected(#[from] AppendRejection),
    #[error("the partition is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Read(#[from] ReadError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub log_start_offset: i64,
}

#[derive(Clone)]
pub struct PartitionHandle {
    pub topic: Arc<str>,
    pub partition: i32,
    pub group: GroupId,
    pub raft: PartRaft,
    pub log: Arc<PartitionLog>,
    /// Raised while this leader hands the group over (`leadership`).
    pub fence: Arc<Fence>,
    /// The group was opened from disk, already formed (a restarted
    /// replica's), not created since this node started.
    pub restored: bool,
}

impl std::fmt::Debug for PartitionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{} (group {})", self.topic, self.partition, self.group)
    }
}

impl PartitionHandle {
    /// The current leader and term (the term is the Kafka leader epoch).
    pub fn leader(&self) -> (Option<NodeId>, u64) {
        let m = self.raft.metrics();
        let m = m.borrow();
        (m.current_leader, m.current_term)
    }

    /// On the leader, how many committed records each voter lacks (the
    /// leader itself: 0); empty elsewhere. A voter holding the log up to
    /// entry `i` lacks the records between what applying `i` left and the
    /// high watermark; one matched nowhere yet or further behind than the
    /// entries the log remembers is counted as lacking the whole log.
    pub fn replica_lag(&self) -> Vec<(NodeId, u64)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let Some(replication) = m.replication.as_ref() else {
            return Vec::new();
        };
        let offsets = self.log.offsets();
        let high_watermark = offsets.high_watermark;
        // A voter matched nowhere yet, or further back than the remembered
        // entries, lacks at most the whole log.
        let at_most = u64::try_from(high_watermark - offsets.log_start_offset).unwrap_or(0);
        m.membership_config
            .membership()
            .voter_ids()
            .map(|id| {
                if id == m.id {
                    return (id, 0);
                }
                let held = replication
                    .get(&id)
                    .copied()
                    .flatten()
                    .and_then(|matched| self.log.high_watermark_at(matched.index));
                let lag = held.map_or(at_most, |held| u64::try_from(high_watermark - held).unwrap_or(0));
                (id, lag)
            })
            .collect()
    }

    /// On the leader, the in-sync replicas: voters `alive` and lacking at
    /// most `max_lag` committed records. `None` elsewhere.
    pub fn in_sync(&self, alive: impl Fn(NodeId) -> bool, max_lag: u64) -> Option<Vec<NodeId>> {
        let lag = self.replica_lag();
        (!lag.is_empty()).then(|| {
            lag.into_iter().filter(|&(id, behind)| behind <= max_lag && alive(id)).map(|(id, _)| id).collect()
        })
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader().1 as i32
    }

    /// Appends validated batches once a majority of replicas has them.
    pub async fn append(&self, records: Bytes, timeout: Duration) -> Result<Appended, PartitionError> {
        self.fence.passed().await;
        match self.propose(PartitionCommand::Append { records }, timeout).await? {
            PartitionResponse::Appended { base_offset, log_start_offset } => {
                Ok(Appended { base_offset, log_start_offset })
            }
            PartitionResponse::Rejected(r) => Err(r.into()),
            PartitionResponse::Done | PartitionResponse::Compacted { .. } => {
                Err(PartitionError::ShuttingDown)
            }
        }
    }

    pub async fn propose(
        &self,
        cmd: PartitionCommand,
        timeout: Duration,
    ) -> Result<PartitionResponse, PartitionError> {
        let result = tokio::time::timeout(timeout, self.raft.client_write(cmd))
            .await
            .map_err(|_| PartitionError::Timeout(timeout))?;
        match result {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(PartitionError::NotLeader { leader: f.leader_id })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(_))) => {
                Err(PartitionError::NotLeader { leader: None })
            }
            Err(RaftError::Fatal(_)) => Err(PartitionError::ShuttingDown),
        }
    }
}
