//! Idempotent-producer bookkeeping (pure): per producer id, the epoch and the
//! last five batches' sequence ranges, as Kafka keeps them, so a retried batch
//! is answered with its original offset instead of being written twice.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::partition::batch::BatchHeader;
use crate::partition::command::AppendRejection;

/// How many recent batches per producer are remembered for de-duplication
/// (Kafka's `max.in.flight.requests.per.connection` limit for idempotence).
const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SeqRange {
    first: i32,
    last: i32,
    base_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerState {
    epoch: i16,
    recent: VecDeque<SeqRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// New data: write it.
    Append,
    /// A retry of a batch already written at `base_offset`.
    Duplicate {
        base_offset: i64,
    },
    Reject(AppendRejection),
}

/// Producer states of one partition, keyed by producer id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producers(BTreeMap<i64, ProducerState>);

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl Producers {
    pub fn check(&self, h: &BatchHeader) -> SeqCheck {
        if !h.is_idempotent() {
            return SeqCheck::Append;
        }
        let Some(state) = self.0.get(&h.producer_id) else {
            return if h.base_sequence == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::Reject(AppendRejection::OutOfOrderSequence)
            };
        };
        if h.producer_epoch < state.epoch {
            return SeqCheck::Reject(AppendRejection::InvalidProducerEpoch);
        }
        if h.producer_epoch > state.epoch {
            return if h.base_sequence == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::Reject(AppendRejection::OutOfOrderSequence)
            };
        }
        if let Some(r) =
            state.recent.iter().find(|r| r.first == h.base_sequence && r.last == h.last_sequence())
        {
            return SeqCheck::Duplicate { base_offset: r.base_offset };
        }
        match state.recent.back() {
            Some(last) if h.base_sequence != next_seq(last.last) => {
                SeqCheck::Reject(AppendRejection::OutOfOrderSequence)
            }
            _ => SeqCheck::Append,
        }
    }

    /// Records a batch that was written at `base_offset`.
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        if !h.is_idempotent() {
            return;
        }
        let state = self.0.entry(h.producer_id).or_default();
        if h.producer_epoch != state.epoch {
            state.epoch = h.producer_epoch;
            state.recent.clear();
        }
        state.recent.push_back(SeqRange { first: h.base_sequence, last: h.last_sequence(), base_offset });
        while state.recent.len() > REMEMBERED_BATCHES {
            state.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pid: i64, epoch: i16, seq: i32, n: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: n - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: n,
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut p = Producers::default();
        assert_eq!(p.check(&h(7, 0, 0, 10)), SeqCheck::Append);
        p.record(&h(7, 0, 0, 10), 100);
        assert_eq!(p.check(&h(7, 0, 10, 5)), SeqCheck::Append);
        p.record(&h(7, 0, 10, 5), 110);
        assert_eq!(p.check(&h(7, 0, 0, 10)), SeqCheck::Duplicate { base_offset: 100 });
        assert_eq!(p.check(&h(7, 0, 10, 5)), SeqCheck::Duplicate { base_offset: 110 });
    }

    #[test]
    fn gaps_and_old_epochs_are_rejected() {
        let mut p = Producers::default();
        p.record(&h(7, 1, 0, 10), 0);
        assert_eq!(p.check(&h(7, 1, 20, 1)), SeqCheck::Reject(AppendRejection::OutOfOrderSequence));
        assert_eq!(p.check(&h(7, 0, 10, 1)), SeqCheck::Reject(AppendRejection::InvalidProducerEpoch));
        assert_eq!(p.check(&h(8, 0, 3, 1)), SeqCheck::Reject(AppendRejection::OutOfOrderSequence));
        assert_eq!(p.check(&h(7, 2, 0, 1)), SeqCheck::Append);
    }

    #[test]
    fn non_idempotent_batches_are_never_checked() {
        let p = Producers::default();
        assert_eq!(p.check(&h(-1, -1, -1, 3)), SeqCheck::Append);
    }
}
