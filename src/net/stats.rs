//! What a listener refused and why, and what it holds now, for `/metrics`.
//! Every refusal is counted here and logged once by the listener that made it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::net::budget::Budget;

/// Why a connection was closed (or never admitted) by the broker.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Refusal {
    /// Over the per-address connection limit.
    PerIpLimit,
    /// A frame longer than the listener's maximum.
    FrameTooLarge,
    NegativeLength,
    /// A frame begun and not finished within the frame deadline.
    FrameTimeout,
    /// The peer closed in the middle of a frame.
    Truncated,
    /// A response the client did not read within the deadline.
    WriteTimeout,
    /// Nothing sent or answered for `connections_max_idle_ms`.
    Idle,
    /// A frame whose header or body does not decode.
    Malformed,
    UnknownApiKey,
    UnsupportedVersion,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub listener: &'static str,
    pub reason: Refusal,
}

/// One listener's counters.
#[derive(Debug)]
pub struct EdgeStats {
    pub listener: &'static str,
    refused: Family<RefusalLabels, Counter>,
    open: AtomicI64,
    budget: OnceLock<Arc<Budget>>,
}

impl EdgeStats {
    /// `refused` may be shared with other listeners: rows carry the listener.
    pub fn new(listener: &'static str, refused: Family<RefusalLabels, Counter>) -> Self {
        Self { listener, refused, open: AtomicI64::new(0), budget: OnceLock::new() }
    }

    /// The listener's budget, so its use can be read at scrape time.
    pub fn set_budget(&self, budget: Arc<Budget>) {
        let _ = self.budget.set(budget);
    }

    /// Bytes of the budget reserved now (0 before the listener started).
    pub fn queued_bytes(&self) -> usize {
        self.budget.get().map_or(0, |b| b.in_use())
    }

    pub fn refused(&self, reason: Refusal) {
        self.refused.get_or_create(&RefusalLabels { listener: self.listener, reason }).inc();
    }

    /// How many connections were refused for `reason` so far.
    pub fn refusals(&self, reason: Refusal) -> u64 {
        self.refused.get_or_create(&RefusalLabels { listener: self.listener, reason }).get()
    }

    pub fn refusal_family(&self) -> Family<RefusalLabels, Counter> {
        self.refused.clone()
    }

    /// Counts one open connection until the guard is dropped.
    pub fn opened(self: &Arc<Self>) -> OpenGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self.clone())
    }

    pub fn open_connections(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct OpenGuard(Arc<EdgeStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}
