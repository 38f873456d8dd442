//! Kafka's `queued.max.request.bytes` as semaphores: a frame's bytes are
//! reserved as soon as its length is known and before a byte of its body is
//! buffered, and given back when the request it carries has been answered.
//! While the budget is spent, connections stop reading (TCP pushes back on
//! their clients); nothing is allocated for a frame that has no reservation.
//!
//! The budget has two lanes. Frames of at most `SMALL_FRAME` bytes (metadata,
//! fetches, commits, heartbeats, most produce requests) have an eighth of it
//! to themselves and may borrow from the rest, so connections that announce
//! huge frames and send them slowly can make other large frames wait, but not
//! the small requests every client lives on. Within a lane, waiters are
//! served in arrival order.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes are counted in units of this many, so a budget of any size fits the
/// semaphores' `u32` acquisitions; every frame costs at least one unit.
const UNIT: usize = 1024;
/// The largest frame that may use the small lane.
pub const SMALL_FRAME: usize = 64 * 1024;

#[derive(Debug)]
struct Lane {
    permits: Arc<Semaphore>,
    units: usize,
}

impl Lane {
    fn new(units: usize) -> Self {
        let units = units.clamp(1, Semaphore::MAX_PERMITS);
        Self { permits: Arc::new(Semaphore::new(units)), units }
    }

    fn in_use(&self) -> usize {
        self.units.saturating_sub(self.permits.available_permits())
    }

    fn try_take(&self, units: u32) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_many_owned(units).ok()
    }

    async fn take(&self, units: u32) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_many_owned(units).await.ok()
    }
}

#[derive(Debug)]
pub struct Budget {
    small: Lane,
    large: Lane,
}

/// Bytes reserved for one frame; dropping it gives them back.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl Budget {
    pub fn new(bytes: usize) -> Self {
        let units = bytes.div_ceil(UNIT).max(2);
        let small = (units / 8).max(SMALL_FRAME.div_ceil(UNIT)).min(units - 1);
        Self { small: Lane::new(small), large: Lane::new(units - small) }
    }

    /// The largest frame that can ever be reserved, in bytes: what the
    /// large lane holds.
    pub fn largest_frame(&self) -> usize {
        self.large.units * UNIT
    }

    /// Bytes reserved right now.
    pub fn in_use(&self) -> usize {
        (self.small.in_use() + self.large.in_use()) * UNIT
    }

    /// Waits until `bytes` can be reserved; `None` if they never can (more
    /// than the large lane). Cancellation-safe: a dropped wait holds nothing.
    pub async fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let units = bytes.div_ceil(UNIT).max(1);
        let n = u32::try_from(units).ok()?;
        let permit = if bytes <= SMALL_FRAME {
            match self.small.try_take(n).or_else(|| self.large.try_take(n)) {
                Some(p) => p,
                None => self.small.take(n).await?,
            }
        } else {
            if units > self.large.units {
                return None;
            }
            self.large.take(n).await?
        };
        Some(Reservation { _permit: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIB: usize = 1024 * 1024;

    async fn blocked(budget: &Budget, bytes: usize) -> bool {
        tokio::time::timeout(Duration::from_millis(20), budget.reserve(bytes)).await.is_err()
    }

    #[tokio::test]
    async fn large_frames_wait_for_each_other_and_return_on_drop() {
        let budget = Budget::new(8 * MIB);
        assert_eq!(budget.largest_frame(), 7 * MIB);
        let a = budget.reserve(6 * MIB).await.unwrap();
        assert_eq!(budget.in_use(), 6 * MIB);
        assert!(blocked(&budget, 2 * MIB).await, "2 MiB more than the 1 MiB left must wait");
        drop(a);
        let b = budget.reserve(2 * MIB).await.unwrap();
        assert_eq!(budget.in_use(), 2 * MIB);
        assert!(budget.reserve(7 * MIB + 1).await.is_none(), "more than the large lane never fits");
        drop(b);
        assert_eq!(budget.in_use(), 0);
        // Tiny frames still cost a unit.
        let _c = budget.reserve(1).await.unwrap();
        assert_eq!(budget.in_use(), UNIT);
    }

    #[tokio::test]
    async fn small_frames_pass_while_large_ones_hold_their_lane() {
        let budget = Budget::new(8 * MIB);
        let _hog = budget.reserve(7 * MIB).await.unwrap();
        assert!(blocked(&budget, 100 * 1024).await, "another large frame waits");
        let mut small = Vec::new();
        for _ in 0..16 {
            small.push(budget.reserve(SMALL_FRAME).await.expect("small lane"));
        }
        assert!(blocked(&budget, SMALL_FRAME).await, "the small lane is bounded too");
        drop(small);
        assert!(!blocked(&budget, SMALL_FRAME).await);
    }
}
