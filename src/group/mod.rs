//! Consumer groups, Kafka's way (DESIGN.md, "group coordinator"): the
//! coordinator of group `g` is the leader of partition `hash(g) % N` of the
//! internal topic `__consumer_offsets`; group metadata and committed offsets
//! are records in that partition, replicated by its Raft group like any
//! other data and replayed by whichever replica leads it next.
//!
//! - `membership` — one group's membership state machine (join, sync, heartbeat,
//!   leave, expiry) and its committed offsets; no IO.
//! - `records` — the keys and values written to `__consumer_offsets`.
//! - `coordinator` — which groups this broker coordinates, loading them when
//!   it becomes a leader, writing their records, expiring sessions.

pub mod coordinator;
pub mod membership;
pub mod records;

/// The internal topic that holds group state and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The `__consumer_offsets` partition of `group`: Java's `String.hashCode`,
/// made non-negative as Kafka's `Utils.abs` does, modulo the partition count,
/// so a group lands on the same partition number as on Kafka.
pub fn partition_for(group: &str, partitions: usize) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    (abs as i64 % partitions.max(1) as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_match_kafka() {
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("", 50), 0);
        // Java: "console-consumer-1".hashCode() == 35782224;
        // Math.abs("my-group".hashCode()) % 50 == 12;
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE (Utils.abs → 0).
        assert_eq!(partition_for("console-consumer-1", 50), 35_782_224 % 50);
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert!((0..50).contains(&partition_for("zzzzzzzzzzzzzzzzzzzzzz", 50)));
    }
}
