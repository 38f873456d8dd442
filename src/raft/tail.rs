//! The newest entries of a partition group's log, kept in memory as they
//! were appended (their record batches shared, not copied), so the two
//! readers that come right after an append — the state machine applying it
//! and the replication to followers that keep up — take them from here
//! instead of reading them back from a segment file and decoding them again
//! (a copy out of the page cache, a fresh buffer and a second copy per
//! batch).
//!
//! An entry leaves once it is applied here (`evict_applied`), or when the
//! group holds more than `GROUP_BYTES`, or when every group's tails together
//! would pass `TOTAL_BYTES`, when new entries are simply not kept. What is
//! not here is read from storage as before, so this only ever saves work.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// The most one group keeps.
const GROUP_BYTES: usize = 8 << 20;
/// The most all groups of the process keep together.
const TOTAL_BYTES: usize = 128 << 20;

static TOTAL: AtomicUsize = AtomicUsize::new(0);

struct Kept<E> {
    /// Consecutive indexes, ascending.
    entries: VecDeque<(u64, E, usize)>,
    bytes: usize,
}

impl<E> Kept<E> {
    fn pop_front(&mut self) {
        if let Some((_, _, size)) = self.entries.pop_front() {
            self.bytes -= size;
            TOTAL.fetch_sub(size, Ordering::Relaxed);
        }
    }

    fn pop_back(&mut self) {
        if let Some((_, _, size)) = self.entries.pop_back() {
            self.bytes -= size;
            TOTAL.fetch_sub(size, Ordering::Relaxed);
        }
    }
}

/// One group's tail.
pub struct Tail<E> {
    kept: Mutex<Kept<E>>,
}

impl<E> Default for Tail<E> {
    fn default() -> Self {
        Self { kept: Mutex::new(Kept { entries: VecDeque::new(), bytes: 0 }) }
    }
}

impl<E> Drop for Tail<E> {
    fn drop(&mut self) {
        let kept = self.kept.get_mut().unwrap_or_else(PoisonError::into_inner);
        TOTAL.fetch_sub(kept.bytes, Ordering::Relaxed);
    }
}

impl<E> Tail<E> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept<E>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps entry `index` (`size` bytes as stored), appended after the
    /// ones kept; an index that does not follow them (the log was truncated
    /// or purged under us) starts the tail afresh.
    pub fn push(&self, index: u64, entry: E, size: usize) {
        let mut kept = self.lock();
        if kept.entries.back().is_some_and(|(last, _, _)| last + 1 != index) {
            while !kept.entries.is_empty() {
                kept.pop_front();
            }
        }
        while kept.bytes + size > GROUP_BYTES && !kept.entries.is_empty() {
            kept.pop_front();
        }
        if size > GROUP_BYTES || TOTAL.load(Ordering::Relaxed) + size > TOTAL_BYTES {
            // Not kept: later entries would not follow what is.
            while !kept.entries.is_empty() {
                kept.pop_front();
            }
            return;
        }
        TOTAL.fetch_add(size, Ordering::Relaxed);
        kept.bytes += size;
        kept.entries.push_back((index, entry, size));
    }

    /// Forgets entries from `index` on (the log was truncated there).
    pub fn truncate(&self, index: u64) {
        let mut kept = self.lock();
        while kept.entries.back().is_some_and(|(i, _, _)| *i >= index) {
            kept.pop_back();
        }
    }

    /// Forgets entries up to `index`, included (applied, or purged).
    pub fn evict_through(&self, index: u64) {
        let mut kept = self.lock();
        while kept.entries.front().is_some_and(|(i, _, _)| *i <= index) {
            kept.pop_front();
        }
    }
}

impl<E: Clone> Tail<E> {
    /// The entries `[start, end)` — or as many of them from `start` as fit
    /// `max_bytes`, at least one — if every one of them is kept.
    pub fn get(&self, start: u64, end: u64, max_bytes: usize) -> Option<Vec<E>> {
        let kept = self.lock();
        let first = kept.entries.front()?.0;
        let last = kept.entries.back()?.0;
        if start < first || end > last + 1 || start >= end {
            return None;
        }
        let from = (start - first) as usize;
        let to = (end - first) as usize;
        let mut total = 0usize;
        let mut out = Vec::new();
        for (_, e, size) in kept.entries.range(from..to) {
            if !out.is_empty() && total.saturating_add(*size) > max_bytes {
                break;
            }
            total = total.saturating_add(*size);
            out.push(e.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_ranges_of_consecutive_entries_are_served() {
        let t = Tail::default();
        for i in 5..10 {
            t.push(i, i * 10, 100);
        }
        assert_eq!(t.get(6, 9, usize::MAX), Some(vec![60, 70, 80]));
        assert_eq!(t.get(6, 9, 250), Some(vec![60, 70]), "as many as fit, at least one");
        assert_eq!(t.get(6, 9, 1), Some(vec![60]));
        assert_eq!(t.get(4, 9, usize::MAX), None, "5 is the first kept");
        assert_eq!(t.get(8, 11, usize::MAX), None, "9 is the last kept");
        t.truncate(8);
        assert_eq!(t.get(5, 8, usize::MAX), Some(vec![50, 60, 70]));
        t.evict_through(6);
        assert_eq!(t.get(7, 8, usize::MAX), Some(vec![70]));
        // A gap starts afresh.
        t.push(20, 200, 100);
        assert_eq!(t.get(7, 8, usize::MAX), None);
        assert_eq!(t.get(20, 21, usize::MAX), Some(vec![200]));
    }

    #[test]
    fn a_group_keeps_at_most_its_share() {
        let t = Tail::default();
        for i in 0..10 {
            t.push(i, i, GROUP_BYTES / 4);
        }
        assert_eq!(t.get(6, 10, usize::MAX), Some(vec![6, 7, 8, 9]));
        assert_eq!(t.get(5, 6, usize::MAX), None);
    }
}
