//! Retention worker: on each partition this node leads, finds the new log
//! start that `retention.ms` / `retention.bytes` allow and proposes a `Trim`
//! through the partition's Raft group, so every replica deletes the same range.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metadata::handle::MetadataHandle;
use crate::metadata::topic_config::Effective;
use crate::partition::command::PartitionCommand;
use crate::partition::handle::PartitionHandle;
use crate::partition::manager::PartitionManager;

/// One batch as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub base_offset: i64,
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub bytes: u64,
}

/// Where the log may start now, with the bytes removed, or `None` if nothing
/// expires. Batches go oldest first; time retention stops at the first batch
/// that is still young (as Kafka does with segments).
pub fn trim_point(
    batches: &[BatchSpan],
    now_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
    total_bytes: u64,
) -> Option<(i64, u64)> {
    let mut removed = 0u64;
    let mut start = None;
    for b in batches {
        let expired = retention_ms >= 0 && b.max_timestamp < now_ms.saturating_sub(retention_ms);
        let oversize = retention_bytes >= 0 && total_bytes.saturating_sub(removed) > retention_bytes as u64;
        if !(expired || oversize) {
            break;
        }
        removed += b.bytes;
        start = Some(b.next_offset);
    }
    start.map(|s| (s, removed))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

async fn enforce(handle: &PartitionHandle, effective: Effective, timeout: Duration) {
    if effective.retention_ms < 0 && effective.retention_bytes < 0 {
        return;
    }
    let mut spans = Vec::new();
    let mut total = 0u64;
    let visited = handle.log.visit_headers(|h, bytes| {
        total += bytes.len() as u64;
        spans.push(BatchSpan {
            base_offset: h.base_offset,
            next_offset: h.last_offset() + 1,
            max_timestamp: h.max_timestamp,
            bytes: bytes.len() as u64,
        });
        true
    });
    if let Err(e) = visited {
        tracing::warn!(topic = %handle.topic, partition = handle.partition, error = %e, "retention scan failed");
        return;
    }
    let Some((log_start_offset, removed_bytes)) =
        trim_point(&spans, now_ms(), effective.retention_ms, effective.retention_bytes, total)
    else {
        return;
    };
    let cmd = PartitionCommand::Trim { log_start_offset, removed_bytes };
    match handle.propose(cmd, timeout).await {
        Ok(_) => {
            tracing::info!(topic = %handle.topic, partition = handle.partition, log_start_offset, "retention trimmed log")
        }
        Err(e) => {
            tracing::debug!(topic = %handle.topic, partition = handle.partition, error = %e, "retention trim not applied")
        }
    }
}

pub async fn run(
    config: Arc<Config>,
    metadata: MetadataHandle,
    partitions: Arc<PartitionManager>,
    shutdown: CancellationToken,
) {
    let mut tick =
        tokio::time::interval(Duration::from_millis(config.log_retention_check_interval_ms.max(10)));
    let timeout = Duration::from_millis(config.raft_rpc_timeout_ms * 2);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let state = metadata.state();
        for handle in partitions.all() {
            if handle.leader().0 != Some(config.node_id) {
                continue;
            }
            let Some(topic) = state.topic(&handle.topic) else {
                continue;
            };
            enforce(&handle, Effective::resolve(&topic.configs, &config), timeout).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans() -> Vec<BatchSpan> {
        (0..4)
            .map(|i| BatchSpan {
                base_offset: i * 10,
                next_offset: i * 10 + 10,
                max_timestamp: 1000 * (i + 1),
                bytes: 100,
            })
            .collect()
    }

    #[test]
    fn time_retention_deletes_old_batches_in_order() {
        assert_eq!(trim_point(&spans(), 3500, 1000, -1, 400), Some((20, 200)));
        assert_eq!(trim_point(&spans(), 100_000, 1000, -1, 400), Some((40, 400)));
        assert_eq!(trim_point(&spans(), 1500, 1000, -1, 400), None);
    }

    #[test]
    fn size_retention_keeps_at_most_the_limit() {
        assert_eq!(trim_point(&spans(), 0, -1, 250, 400), Some((20, 200)));
        assert_eq!(trim_point(&spans(), 0, -1, 400, 400), None);
        assert_eq!(trim_point(&spans(), 0, -1, -1, 400), None);
    }
}
