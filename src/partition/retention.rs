//! Retention worker: on each partition this node leads, finds the new log
//! start that `retention.ms` / `retention.bytes` allow and proposes a `Trim`
//! through the partition's Raft group, so every replica deletes the same range;
//! and on `cleanup.policy=compact` topics proposes a `Compact` once enough has
//! been written since the last one: at least `log_cleaner_min_dirty_records`
//! records, and at least as many as the last compaction kept (a dirty ratio
//! of one half, Kafka's default), so the cost of compacting stays in
//! proportion to what is written; a smaller tail is compacted once the
//! partition has taken no writes for `IDLE_CHECKS` checks, so a quiet log
//! ends up fully compacted. Internal topics (`__consumer_offsets`) are
//! compacted the same way, with their own threshold
//! (`offsets_compaction_min_records`); their only reader replays them from
//! the log start (the group coordinator), so the log start then moves to the
//! first batch compaction kept, and a new coordinator replays only that.
//! (A user topic's log start stays: a consumer whose offset compaction passed
//! continues at the next record instead of being reset.)
//!
//! On every replica, leader or not, it then lets openraft purge the Raft
//! entries the partition log no longer reads (`purge_released`): partition
//! groups purge only there, never on openraft's own schedule, so a replica
//! that was away catches up from the log for as far back as the partition
//! keeps records, and needs a snapshot only past that.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metadata::handle::MetadataHandle;
use crate::metadata::topic_config::Effective;
use crate::partition::command::{PartitionCommand, PartitionResponse};
use crate::partition::handle::PartitionHandle;
use crate::partition::manager::PartitionManager;
use crate::raft::types::GroupId;

/// One batch as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub base_offset: i64,
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub bytes: u64,
}

/// Decides, batch by batch from the oldest, where the log may start now.
/// Time retention stops at the first batch that is still young, and size
/// retention removes a batch only if what is left still holds
/// `retention_bytes` (as Kafka does with segments: the log is never emptied
/// by size, however large its newest batch). The first batch kept ends the
/// walk, so a check reads only the batches that go and one more, whatever
/// the length of the log.
#[derive(Debug, Clone, Copy)]
pub struct TrimPoint {
    now_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
    total_bytes: u64,
    removed: u64,
    start: Option<i64>,
}

impl TrimPoint {
    pub fn new(now_ms: i64, retention_ms: i64, retention_bytes: i64, total_bytes: u64) -> Self {
        Self { now_ms, retention_ms, retention_bytes, total_bytes, removed: 0, start: None }
    }

    /// Takes the next batch; false once it stays (nothing after it goes).
    pub fn offer(&mut self, b: &BatchSpan) -> bool {
        let expired =
            self.retention_ms >= 0 && b.max_timestamp < self.now_ms.saturating_sub(self.retention_ms);
        let oversize = self.retention_bytes >= 0
            && self
                .total_bytes
                .saturating_sub(self.removed)
                .checked_sub(b.bytes)
                .is_some_and(|left| left >= self.retention_bytes as u64);
        if !(expired || oversize) {
            return false;
        }
        self.removed += b.bytes;
        self.start = Some(b.next_offset);
        true
    }

    /// The new log start with the bytes removed, or `None` if nothing goes.
    pub fn result(&self) -> Option<(i64, u64)> {
        self.start.map(|s| (s, self.removed))
    }
}

/// `TrimPoint` over a list of batches.
pub fn trim_point(
    batches: &[BatchSpan],
    now_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
    total_bytes: u64,
) -> Option<(i64, u64)> {
    let mut point = TrimPoint::new(now_ms, retention_ms, retention_bytes, total_bytes);
    for b in batches {
        if !point.offer(b) {
            break;
        }
    }
    point.result()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

async fn enforce(handle: &PartitionHandle, effective: Effective, timeout: Duration) {
    if effective.retention_ms < 0 && effective.retention_bytes < 0 {
        return;
    }
    let total = handle.log.offsets().size_bytes;
    let mut point = TrimPoint::new(now_ms(), effective.retention_ms, effective.retention_bytes, total);
    let visited = handle.log.visit_stored(|v| {
        point.offer(&BatchSpan {
            base_offset: v.base_offset,
            next_offset: v.last_offset + 1,
            max_timestamp: v.max_timestamp,
            bytes: v.len as u64,
        })
    });
    if let Err(e) = visited {
        tracing::warn!(topic = %handle.topic, partition = handle.partition, error = %e, "retention scan failed");
        return;
    }
    let Some((log_start_offset, removed_bytes)) = point.result() else {
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

/// Asks openraft to purge the entries below the partition log's floor
/// (`raft::retained::Retained`) that fill whole segment files, first taking
/// a snapshot (the image alone: cheap) if the last one does not reach that
/// far — openraft purges only what a snapshot covers.
async fn purge_released(handle: &PartitionHandle) {
    let floor = handle.log.retained().floor();
    let (applied, purged, snapshot) = {
        let m = handle.raft.metrics();
        let m = m.borrow();
        (m.last_applied.map(|l| l.index), m.purged.map(|l| l.index), m.snapshot.map(|l| l.index))
    };
    let Some(applied) = applied else { return };
    if floor == 0 {
        return;
    }
    // Only as far as whole segment files go: a purge that frees no file
    // saves nothing, and costs a follower that needed those entries a
    // snapshot (a replica killed a moment after its topic was made needed
    // the two entries before the first batch, and was sent every record).
    let Some(upto) = handle.log.retained().purge_point(floor.saturating_sub(1).min(applied)) else {
        return;
    };
    if purged.is_some_and(|p| p >= upto) {
        return;
    }
    let trigger = handle.raft.trigger();
    let asked = if snapshot.is_some_and(|s| s >= upto) {
        trigger.purge_log(upto).await
    } else {
        trigger.snapshot().await
    };
    if let Err(e) = asked {
        tracing::debug!(topic = %handle.topic, partition = handle.partition, error = %e, "raft log purge not asked");
    }
}

/// A partition's last compaction, as the leader that ran it remembers it.
#[derive(Debug, Clone, Copy, Default)]
struct Cleaned {
    high_watermark: i64,
    kept: u64,
}

/// Checks without a write after which a partition's dirty tail is compacted
/// however small.
const IDLE_CHECKS: u32 = 10;
/// Retention checks run at most this often, whatever is configured.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// When a partition's high watermark last moved.
#[derive(Debug, Clone, Copy)]
struct Tail {
    high_watermark: i64,
    since: Instant,
}

/// Whether enough was written since `last` to compact again, or the
/// partition is `idle` with anything written at all.
fn compaction_due(last: Cleaned, high_watermark: i64, min_dirty: u64, idle: bool) -> bool {
    let dirty = high_watermark.saturating_sub(last.high_watermark).max(0) as u64;
    dirty > 0 && (idle || dirty >= min_dirty.max(last.kept))
}

async fn compact(handle: &PartitionHandle, effective: Effective, timeout: Duration) -> Option<Cleaned> {
    let up_to = handle.log.offsets().high_watermark;
    let cmd = PartitionCommand::Compact {
        up_to,
        tombstones_before: now_ms().saturating_sub(effective.delete_retention_ms),
    };
    match handle.propose(cmd, timeout).await {
        Ok(PartitionResponse::Compacted { records }) => {
            tracing::info!(topic = %handle.topic, partition = handle.partition, up_to, kept = records, "compacted log");
            Some(Cleaned { high_watermark: up_to, kept: records })
        }
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(topic = %handle.topic, partition = handle.partition, error = %e, "compaction not applied");
            None
        }
    }
}

/// Moves the log start up to the first stored batch, past what compaction
/// dropped before it.
async fn start_at_first_batch(handle: &PartitionHandle, timeout: Duration) {
    let mut first = None;
    let visited = handle.log.visit_stored(|v| {
        first = Some(v.base_offset);
        false
    });
    let log_start_offset = match (visited, first) {
        (Ok(()), Some(first)) if first > handle.log.offsets().log_start_offset => first,
        (Ok(()), _) => return,
        (Err(e), _) => {
            tracing::warn!(topic = %handle.topic, partition = handle.partition, error = %e, "log scan failed");
            return;
        }
    };
    // Compaction already accounted for the bytes it removed.
    let cmd = PartitionCommand::Trim { log_start_offset, removed_bytes: 0 };
    match handle.propose(cmd, timeout).await {
        Ok(_) => tracing::info!(topic = %handle.topic, partition = handle.partition, log_start_offset,
            "log start moved past compacted records"),
        Err(e) => tracing::debug!(topic = %handle.topic, partition = handle.partition, error = %e,
            "log start not moved"),
    }
}

pub async fn run(
    config: Arc<Config>,
    metadata: MetadataHandle,
    partitions: Arc<PartitionManager>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(config.log_retention_check_interval.max(MIN_CHECK_INTERVAL));
    let timeout = config.raft_rpc_timeout * 2;
    let idle_after = config.log_retention_check_interval.max(MIN_CHECK_INTERVAL) * IDLE_CHECKS;
    let mut cleaned: HashMap<GroupId, Cleaned> = HashMap::new();
    let mut tails: HashMap<GroupId, Tail> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let state = metadata.state();
        let led: Vec<PartitionHandle> =
            partitions.all().into_iter().filter(|h| h.leader().0 == Some(config.node_id)).collect();
        for handle in partitions.all() {
            purge_released(&handle).await;
        }
        cleaned.retain(|group, _| led.iter().any(|h| h.group == *group));
        tails.retain(|group, _| led.iter().any(|h| h.group == *group));
        for handle in led {
            let Some(topic) = state.topic(&handle.topic) else {
                continue;
            };
            let effective = Effective::resolve(&topic.configs, &config);
            enforce(&handle, effective, timeout).await;
            if effective.compact {
                let internal = topic.name.starts_with("__");
                let min_dirty = if internal {
                    config.offsets_compaction_min_records
                } else {
                    config.log_cleaner_min_dirty_records
                };
                let offsets = handle.log.offsets();
                let last = *cleaned
                    .entry(handle.group)
                    .or_insert(Cleaned { high_watermark: offsets.log_start_offset, kept: 0 });
                let hw = offsets.high_watermark;
                let tail =
                    tails.entry(handle.group).or_insert(Tail { high_watermark: hw, since: Instant::now() });
                if tail.high_watermark != hw {
                    *tail = Tail { high_watermark: hw, since: Instant::now() };
                }
                let idle = tail.since.elapsed() >= idle_after;
                if compaction_due(last, hw, min_dirty, idle) {
                    if let Some(done) = compact(&handle, effective, timeout).await {
                        cleaned.insert(handle.group, done);
                        if internal {
                            start_at_first_batch(&handle, timeout).await;
                        }
                    }
                }
            }
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
    fn compaction_waits_for_enough_new_records() {
        let fresh = Cleaned { high_watermark: 0, kept: 0 };
        assert!(!compaction_due(fresh, 0, 1000, false));
        assert!(!compaction_due(fresh, 999, 1000, false));
        assert!(compaction_due(fresh, 1000, 1000, false));
        // After keeping 5,000 records, 5,000 new ones are needed (ratio 1/2).
        let big = Cleaned { high_watermark: 10_000, kept: 5_000 };
        assert!(!compaction_due(big, 14_999, 1000, false));
        assert!(compaction_due(big, 15_000, 1000, false));
        // A quiet partition's small tail is compacted; nothing new, nothing to do.
        assert!(compaction_due(big, 10_001, 1000, true));
        assert!(!compaction_due(big, 10_000, 1000, true));
    }

    #[test]
    fn time_retention_deletes_old_batches_in_order() {
        assert_eq!(trim_point(&spans(), 3500, 1000, -1, 400), Some((20, 200)));
        assert_eq!(trim_point(&spans(), 100_000, 1000, -1, 400), Some((40, 400)));
        assert_eq!(trim_point(&spans(), 1500, 1000, -1, 400), None);
    }

    #[test]
    fn size_retention_keeps_at_least_the_limit() {
        assert_eq!(trim_point(&spans(), 0, -1, 250, 400), Some((10, 100)));
        assert_eq!(trim_point(&spans(), 0, -1, 200, 400), Some((20, 200)));
        assert_eq!(trim_point(&spans(), 0, -1, 400, 400), None);
        assert_eq!(trim_point(&spans(), 0, -1, -1, 400), None);
        // One batch larger than the limit stays; a limit of 0 empties the log.
        assert_eq!(trim_point(&spans()[3..], 0, -1, 50, 100), None);
        assert_eq!(trim_point(&spans(), 0, -1, 0, 400), Some((40, 400)));
    }
}
