//! Node-level failure detection. Every node pings every other broker over the
//! Raft transport a few times per election timeout and remembers when it last
//! heard from each: a ping in either direction counts, and so does any reply
//! to a Raft request and any AppendEntries received (`raft::network`,
//! `raft::rpc`), so a peer busy with replication — whose pings may wait
//! behind it — is not taken for dead. A peer whose Raft port refuses a ping's
//! connection has no process behind it and is down at once, so a killed
//! leader's partitions are answered leaderless (clients keep asking) and
//! re-elected as soon as the leader lease lets its followers vote. Partition groups use
//! this instead of per-group Raft heartbeats, so the idle cost of a node is
//! one small RPC per peer per interval however many partitions it hosts
//! (DESIGN.md: "coalesce heartbeats"); `partition::leadership` starts an
//! election in a group whose leader this detector declares dead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::codec;
use crate::raft::network::{Transport, TransportError};
use crate::raft::types::{NodeId, METADATA_GROUP};
use crate::raft::wire::{RpcKind, RpcRequest};

#[derive(Debug)]
pub struct Liveness {
    node_id: NodeId,
    timeout: Duration,
    started: Instant,
    /// Bumped whenever a peer is seen to go down or come back.
    changes: AtomicU64,
    // A std mutex: a map update or lookup, never held across an await.
    last_heard: Mutex<HashMap<NodeId, Heard>>,
}

/// When a peer was last heard from, and when it was heard again after a
/// silence longer than the timeout (it was down, to this node).
#[derive(Debug, Clone, Copy)]
struct Heard {
    last: Instant,
    back: Option<Instant>,
    /// Refused a connection since it was last heard from: its process is gone.
    gone: bool,
}

impl Liveness {
    /// A node is alive while it was heard from within `timeout`. Until then
    /// every node counts as heard at start-up, so a restarting broker does
    /// not declare its peers dead before it has even pinged them.
    pub fn new(node_id: NodeId, timeout: Duration) -> Self {
        Self {
            node_id,
            timeout,
            started: Instant::now(),
            changes: AtomicU64::new(0),
            last_heard: Mutex::new(HashMap::new()),
        }
    }

    /// A counter that moves whenever some peer went down or came back, so
    /// pollers can skip work while nothing changed.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn heard(&self, node: NodeId) {
        let now = Instant::now();
        let mut m = self.last_heard.lock().unwrap_or_else(PoisonError::into_inner);
        // Never heard yet: down to this node once the start-up grace is over.
        let last = m.get(&node).map_or(self.started, |h| h.last);
        let back = if now.duration_since(last) >= self.timeout {
            Some(now)
        } else {
            m.get(&node).and_then(|h| h.back)
        };
        m.insert(node, Heard { last: now, back, gone: false });
    }

    /// A peer heard from before refused a connection to its Raft port: no
    /// process listens there (killed, crashed), so it is down now rather
    /// than a timeout from now. A dropped packet never refuses, so a slow or
    /// cut-off peer still gets the whole timeout.
    pub fn refused(&self, node: NodeId) {
        let mut m = self.last_heard.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(h), Some(long_ago)) = (m.get_mut(&node), Instant::now().checked_sub(self.timeout)) {
            if h.last > long_ago {
                // Pollers look again now, not at the next ping round.
                self.changes.fetch_add(1, Ordering::Relaxed);
            }
            h.last = h.last.min(long_ago);
            h.gone = true;
        }
    }

    /// Whether `node` refused a connection since it was last heard from:
    /// not merely silent, but certainly not running.
    pub fn is_gone(&self, node: NodeId) -> bool {
        let m = self.last_heard.lock().unwrap_or_else(PoisonError::into_inner);
        m.get(&node).is_some_and(|h| h.gone)
    }

    /// Whether `node` came back from being down (restarted, resumed, its
    /// network restored) less than `window` ago.
    pub fn back_within(&self, node: NodeId, window: Duration) -> bool {
        let m = self.last_heard.lock().unwrap_or_else(PoisonError::into_inner);
        m.get(&node).and_then(|h| h.back).is_some_and(|at| at.elapsed() < window)
    }

    pub fn is_alive(&self, node: NodeId) -> bool {
        self.heard_within(node, self.timeout)
    }

    /// Heard from within half the timeout (two pings missed at most): a
    /// node that just died is still alive for up to a timeout, and new
    /// replicas should not be placed on it meanwhile.
    pub fn is_fresh(&self, node: NodeId) -> bool {
        self.heard_within(node, self.timeout / 2)
    }

    fn heard_within(&self, node: NodeId, window: Duration) -> bool {
        if node == self.node_id {
            return true;
        }
        let m = self.last_heard.lock().unwrap_or_else(PoisonError::into_inner);
        m.get(&node).map_or(self.started, |h| h.last).elapsed() < window
    }
}

/// A ping names its sender, so the receiver counts it as heard too.
fn ping_request(from: NodeId) -> Result<RpcRequest, codec::CodecError> {
    Ok(RpcRequest { group: METADATA_GROUP, kind: RpcKind::Ping, body: codec::encode("ping", &from)?.into() })
}

/// The sender of a ping, for the receiving side.
pub fn ping_sender(body: &[u8]) -> Result<NodeId, codec::CodecError> {
    codec::decode("ping", body)
}

/// Holds an idle connection to `peer`'s Raft port, only to learn the moment
/// it closes: a process that exits closes every socket it had, so this sees
/// a killed peer at once, not at the next ping round. Closed, the port is
/// tried again at once; a refusal proves the process gone
/// (`Liveness::refused`). A cut network closes nothing, and leaves the
/// verdict to the pings and the timeout.
async fn watch(liveness: Arc<Liveness>, peer: NodeId, addr: String, retry: Duration) {
    use tokio::io::AsyncReadExt;
    loop {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(mut conn) => {
                // Nothing is ever sent here: a read returns when the peer
                // closes the connection (or, at worst, sends something).
                let opened = tokio::time::Instant::now();
                let mut byte = [0u8; 1];
                let _ = conn.read(&mut byte).await;
                if opened.elapsed() >= retry {
                    continue; // ask again at once: is anyone still listening?
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => liveness.refused(peer),
            Err(_) => {}
        }
        tokio::time::sleep(retry).await;
    }
}

/// Pings every peer `peers()` names five times per timeout until `shutdown`.
pub async fn run(
    liveness: Arc<Liveness>,
    transport: Arc<Transport>,
    peers: impl Fn() -> Vec<(NodeId, String)>,
    shutdown: CancellationToken,
) {
    let node_id = liveness.node_id;
    let interval = liveness.timeout / 5;
    let Ok(request) = ping_request(node_id) else { return };
    let request = Arc::new(request);
    let mut was_alive: HashMap<NodeId, bool> = HashMap::new();
    let mut watched: HashMap<NodeId, (String, tokio::task::JoinHandle<()>)> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                watched.values().for_each(|(_, w)| w.abort());
                return;
            }
            _ = tick.tick() => {}
        }
        let peers = peers();
        watched.retain(|id, (addr, w)| {
            let keep = peers.iter().any(|(p, a)| p == id && a == addr);
            if !keep {
                w.abort();
            }
            keep
        });
        for (peer, addr) in peers {
            if peer == node_id {
                continue;
            }
            watched.entry(peer).or_insert_with(|| {
                (addr.clone(), tokio::spawn(watch(liveness.clone(), peer, addr.clone(), interval)))
            });
            let alive = liveness.is_alive(peer);
            if was_alive.insert(peer, alive).is_some_and(|before| before != alive) {
                liveness.changes.fetch_add(1, Ordering::Relaxed);
                if alive {
                    tracing::info!(node_id, peer, "node is back");
                } else {
                    tracing::warn!(node_id, peer, timeout = ?liveness.timeout, "node is down: not heard from");
                }
            }
            let (liveness, transport, request) = (liveness.clone(), transport.clone(), request.clone());
            // One task per ping, so a dead peer's timeout never delays the others.
            tokio::spawn(async move {
                let mut reply = transport.call(&addr, &request, liveness.timeout).await;
                if matches!(reply, Err(TransportError::Closed | TransportError::Wire(_))) {
                    // The pooled connection was closed under us, and its
                    // pool-mates likely were too (a peer that exits closes
                    // them all): drop them and ask again over a new one,
                    // which a dead peer refuses at once.
                    transport.forget(&addr);
                    reply = transport.call(&addr, &request, liveness.timeout).await;
                }
                match reply {
                    Ok(_) => liveness.heard(peer),
                    Err(TransportError::Connect { source, .. })
                        if source.kind() == std::io::ErrorKind::ConnectionRefused =>
                    {
                        liveness.refused(peer)
                    }
                    Err(_) => {}
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unheard_nodes_die_after_the_start_up_grace() {
        let timeout = Duration::from_millis(30);
        let started = std::time::Instant::now();
        let l = Liveness::new(1, timeout);
        assert!(l.is_alive(2), "peers count as alive during the start-up grace");
        while l.is_alive(2) {
            assert!(started.elapsed() < Duration::from_secs(5), "node 2 never declared dead");
            std::thread::yield_now();
        }
        assert!(started.elapsed() >= timeout, "declared dead before the timeout");
        assert!(l.is_alive(1), "a node is always alive to itself");
        l.heard(2);
        assert!(l.is_alive(2));
        assert!(l.back_within(2, Duration::from_secs(60)), "heard again after it was down: it came back");
    }

    #[test]
    fn a_refusing_peer_is_down_at_once_and_an_unknown_one_keeps_its_grace() {
        let l = Liveness::new(1, Duration::from_secs(60));
        l.refused(3);
        assert!(l.is_alive(3), "never heard: a refusal during start-up proves nothing yet");
        l.heard(2);
        l.refused(2);
        assert!(!l.is_alive(2), "heard, then refused: its process is gone");
        assert!(l.is_gone(2) && !l.is_gone(3));
        l.heard(2);
        assert!(!l.is_gone(2));
        assert!(l.is_alive(2) && l.back_within(2, Duration::from_secs(60)));
    }

    #[test]
    fn a_peer_heard_without_a_gap_never_came_back() {
        let l = Liveness::new(1, Duration::from_secs(60));
        l.heard(2);
        l.heard(2);
        assert!(l.is_alive(2));
        assert!(!l.back_within(2, Duration::from_secs(60)), "heard within the start-up grace: never down");
    }
}
