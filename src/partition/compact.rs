//! Log compaction for `cleanup.policy=compact`: keep the last record of every
//! key, drop the older ones, and drop a key's tombstone (a null value) once
//! it is older than `delete.retention.ms`. Pure (no IO, no clock): the store
//! applies a `Compact` command by scanning its batches twice — `Latest::observe`
//! each, then `Latest::rewrite` each — so every replica, applying the same
//! command over the same committed batches, writes the same result.
//!
//! A rewritten batch keeps its records' offsets (consumers see gaps, as with
//! Kafka), producer fields, leader epoch and compression; it is stored under
//! its first kept offset. Records without a key are never removed (Kafka
//! refuses them on compacted topics; raftka keeps what it accepted), and
//! neither are control batches; the store leaves the newest batch as it is.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions, RecordSet};

use crate::partition::inflate;

/// What to do with one stored batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrite {
    Keep,
    /// Every record goes.
    Drop,
    /// Some records go: the remaining batch, stored under `base_offset`.
    Replace {
        base_offset: i64,
        batch: Vec<u8>,
        records: usize,
    },
}

/// The offset of every key's last record below the compaction point.
#[derive(Debug, Default)]
pub struct Latest {
    last: HashMap<Bytes, i64>,
}

/// A batch that does not decode (within its inflate limit) is kept whole.
fn decode(batch: &[u8]) -> Option<RecordSet> {
    inflate::decode(batch).ok()
}

impl Latest {
    /// Records the keys of one batch (batches in offset order).
    pub fn observe(&mut self, batch: &[u8]) {
        let Some(set) = decode(batch) else { return };
        for r in set.records.into_iter().filter(|r| !r.control) {
            if let Some(key) = r.key {
                self.last.insert(key, r.offset);
            }
        }
    }

    /// Distinct keys seen.
    pub fn keys(&self) -> usize {
        self.last.len()
    }

    /// What becomes of `batch`: records superseded by a later record of their
    /// key go, and so do tombstones with a timestamp before `tombstones_before`.
    pub fn rewrite(&self, batch: &[u8], tombstones_before: i64) -> Rewrite {
        let Some(set) = decode(batch) else { return Rewrite::Keep };
        let total = set.records.len();
        let kept: Vec<_> = set
            .records
            .into_iter()
            .filter(|r| {
                let Some(key) = &r.key else { return true };
                if r.control {
                    return true;
                }
                let latest = self.last.get(key) == Some(&r.offset);
                latest && !(r.value.is_none() && r.timestamp < tombstones_before)
            })
            .collect();
        if kept.len() == total {
            return Rewrite::Keep;
        }
        let Some(base_offset) = kept.first().map(|r| r.offset) else { return Rewrite::Drop };
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: set.compression };
        match RecordBatchEncoder::encode(&mut out, &kept, &options) {
            Ok(()) => Rewrite::Replace { base_offset, batch: out.to_vec(), records: kept.len() },
            // Unreachable for records that just decoded; keeping is safe.
            Err(_) => Rewrite::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Compression, Record, TimestampType};

    fn batch(base: i64, records: &[(Option<&str>, Option<&str>, i64)], compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v, ts))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 3,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base + i as i64,
                // The encoder starts a new batch where offset - sequence changes.
                sequence: i as i32 - 1,
                timestamp: *ts,
                key: k.map(|k| Bytes::from(k.to_string())),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: Default::default(),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, &records, &RecordEncodeOptions { version: 2, compression })
            .unwrap();
        out.to_vec()
    }

    fn contents(b: &[u8]) -> Vec<(i64, Option<String>, Option<String>)> {
        let s = |x: Option<Bytes>| x.map(|x| String::from_utf8(x.to_vec()).unwrap());
        decode(b).unwrap().records.into_iter().map(|r| (r.offset, s(r.key), s(r.value))).collect()
    }

    #[test]
    fn keeps_the_last_record_per_key_with_its_offset() {
        let b0 = batch(
            0,
            &[(Some("a"), Some("1"), 10), (Some("b"), Some("1"), 10), (None, Some("x"), 10)],
            Compression::Gzip,
        );
        let b1 = batch(3, &[(Some("a"), Some("2"), 20), (Some("c"), Some("1"), 20)], Compression::None);
        let b2 = batch(5, &[(Some("c"), Some("2"), 30)], Compression::None);
        let mut latest = Latest::default();
        for b in [&b0, &b1, &b2] {
            latest.observe(b);
        }
        assert_eq!(latest.keys(), 3);
        let Rewrite::Replace { base_offset, batch, records } = latest.rewrite(&b0, 0) else { panic!() };
        assert_eq!((base_offset, records), (1, 2));
        assert_eq!(
            contents(&batch),
            vec![(1, Some("b".into()), Some("1".into())), (2, None, Some("x".into()))]
        );
        assert_eq!(decode(&batch).unwrap().compression, Compression::Gzip);
        let Rewrite::Replace { base_offset, batch, .. } = latest.rewrite(&b1, 0) else { panic!() };
        assert_eq!(base_offset, 3);
        assert_eq!(contents(&batch), vec![(3, Some("a".into()), Some("2".into()))]);
        assert_eq!(latest.rewrite(&b2, 0), Rewrite::Keep);
    }

    #[test]
    fn old_tombstones_go_recent_ones_stay() {
        let b0 = batch(0, &[(Some("a"), Some("1"), 10)], Compression::None);
        let b1 = batch(1, &[(Some("a"), None, 100), (Some("b"), None, 500)], Compression::None);
        let mut latest = Latest::default();
        latest.observe(&b0);
        latest.observe(&b1);
        assert_eq!(latest.rewrite(&b0, 200), Rewrite::Drop);
        let Rewrite::Replace { base_offset, batch, .. } = latest.rewrite(&b1, 200) else { panic!() };
        assert_eq!(base_offset, 2);
        assert_eq!(contents(&batch), vec![(2, Some("b".into()), None)]);
        assert_eq!(latest.rewrite(&b1, 0), Rewrite::Keep);
    }

    #[test]
    fn undecodable_batches_are_kept() {
        let mut latest = Latest::default();
        latest.observe(b"garbage");
        assert_eq!(latest.rewrite(b"garbage", 0), Rewrite::Keep);
    }
}
