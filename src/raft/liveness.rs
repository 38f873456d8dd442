//! Node-level failure detection. Every node pings every other broker over the
//! Raft transport a few times per election timeout and remembers when it last
//! heard from each: a ping in either direction counts, and so does any reply
//! to a Raft request and any AppendEntries received (`raft::network`,
//! `raft::rpc`), so a peer busy with replication — whose pings may wait
//! behind it — is not taken for dead. A peer whose Raft port refuses a ping's
//! connection has no process behind it and is down at once, so a killed
//! leader's partitions are re-elected as soon as the leader lease lets its
//! followers vote, and meanwhile Metadata waits for that election
//! (`just_lost`). A ping's reply carries the replier's uptime, so every
//! node knows when each peer's process started by the same clock
//! (`up_for`). Partition groups use this instead of per-group Raft
//! heartbeats, so the idle cost of a node is one small RPC per peer per
//! interval however many partitions it hosts (DESIGN.md: "coalesce
//! heartbeats"); `partition::leadership` starts an election in a group whose
//! leader this detector declares dead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
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
    /// The idle connection `watch` holds to each peer's Raft port.
    watched: Mutex<HashMap<NodeId, Arc<TcpStream>>>,
    /// When each peer's process started, from the uptime its ping replies
    /// carry: the same instant for every node, where when it was heard
    /// again depends on who listened.
    peer_started: Mutex<HashMap<NodeId, Instant>>,
    /// When this node last heard every peer again at once (`rejoined_since`).
    rejoined: Mutex<Option<Instant>>,
}

/// When a peer was last heard from, and when it was heard again after
/// earlier contact and a silence longer than the timeout (it was down, to
/// this node). A first contact is never `back`, however late: the peer may
/// have run all along while this node was starting.
#[derive(Debug, Clone, Copy)]
struct Heard {
    last: Instant,
    back: Option<Instant>,
    /// The `back` the latest return replaced: what the peer's last return
    /// was if that latest one turns out to be this node's own (`heard`).
    earlier: Option<Instant>,
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
            watched: Mutex::new(HashMap::new()),
            peer_started: Mutex::new(HashMap::new()),
            rejoined: Mutex::new(None),
        }
    }

    /// How long this node has been running, as its ping replies tell.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A reply to a ping sent at `asked` said `node` had been running for
    /// `up`. Dated from the sending, not the receipt: a reply that waited
    /// behind load would otherwise date the start later by its wait, and a
    /// leader whose ping replies came late under saturated cores looked
    /// restarted and was deposed. The peer started no later than this.
    pub fn heard_up(&self, node: NodeId, up: Duration, asked: Instant) {
        if let Some(at) = asked.checked_sub(up) {
            self.peer_started.lock().unwrap_or_else(PoisonError::into_inner).insert(node, at);
        }
    }

    /// When `node`'s process (this one's included) started, if known.
    fn started_at(&self, node: NodeId) -> Option<Instant> {
        if node == self.node_id {
            Some(self.started)
        } else {
            self.peer_started.lock().unwrap_or_else(PoisonError::into_inner).get(&node).copied()
        }
    }

    /// Whether this node started while its peers ran: over a timeout after
    /// some peer's process did, which is when that peer counts it as back
    /// (`back_since`) — or whether it cannot tell yet, knowing no peer's
    /// uptime. Not when it started with the others (a new cluster, the
    /// whole cluster restarted): none of them is back from anything.
    pub fn started_late(&self) -> bool {
        let peers = self.peer_started.lock().unwrap_or_else(PoisonError::into_inner);
        peers.is_empty() || peers.values().any(|&s| s + self.timeout < self.started)
    }

    /// Whether `node`'s process has been running for `window` at least; a
    /// peer whose uptime is unknown has not.
    pub fn up_for(&self, node: NodeId, window: Duration) -> bool {
        self.started_at(node).is_some_and(|at| at.elapsed() >= window)
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
        let prev = m.get(&node).copied();
        let last = prev.map_or(self.started, |h| h.last);
        let (back, earlier) = if now.duration_since(last) >= self.timeout {
            (prev.map(|_| now), prev.and_then(|h| h.back))
        } else {
            (prev.and_then(|h| h.back), prev.and_then(|h| h.earlier))
        };
        m.insert(node, Heard { last: now, back, earlier, gone: false });
        if back == Some(now) && self.all_back_at_once(&m, now) {
            // This node was the one away: the peers' returns were its own.
            // Each keeps the return it had before — a peer paused a moment
            // earlier is still just back, as the others see it.
            for (_, h) in m.iter_mut().filter(|(&n, _)| n != self.node_id) {
                h.back = h.earlier;
            }
            *self.rejoined.lock().unwrap_or_else(PoisonError::into_inner) = Some(now);
        }
    }

    /// Whether every peer came back within the last timeout, each after
    /// earlier contact, none of them just restarted: then this node was
    /// the one away. Judged as the last of them returns; later news (a
    /// dead peer's late reply read as a return) does not undo it.
    fn all_back_at_once(&self, m: &HashMap<NodeId, Heard>, now: Instant) -> bool {
        let mut peers = m.iter().filter(|(&n, _)| n != self.node_id).peekable();
        if m.len() < 2 || peers.peek().is_none() {
            return false;
        }
        peers.all(|(&peer, h)| {
            let together = h.back.is_some_and(|b| now.duration_since(b) < self.timeout);
            let restarted = self.started_at(peer).is_some_and(|s| now.duration_since(s) < self.timeout * 2);
            together && !restarted
        })
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
        self.back_since(node, window).is_some()
    }

    /// Whether `node`'s process started after `at`, as its uptime tells: it
    /// restarted since, and lost what it led then. A node cut off and
    /// reconnected, or paused and resumed, did not: it may still lead.
    pub fn started_after(&self, node: NodeId, at: Instant) -> bool {
        self.started_at(node).is_some_and(|s| s > at)
    }

    /// When `node` came back from being down, if less than `window` ago:
    /// the later of when its process started, if that was over a timeout
    /// after this one's (it restarted; every node reads the same instant off
    /// its uptime), and when it was last heard again after a silence that
    /// followed earlier contact — the later, as the node itself counts
    /// (`leadership::Elections`). A first contact is no return: a restarted
    /// node meets its long-running peers late, and taking them for the ones
    /// back, it ranked itself first as they ranked themselves, and split
    /// the vote. Nor are returns this node heard as it rejoined.
    pub fn back_since(&self, node: NodeId, window: Duration) -> Option<Instant> {
        let restarted = self.started_at(node).filter(|s| *s > self.started + self.timeout);
        let m = self.last_heard.lock().unwrap_or_else(PoisonError::into_inner);
        let returned = m.get(&node).and_then(|h| h.back);
        restarted.max(returned).filter(|at| at.elapsed() < window)
    }

    /// When this node last heard every peer again after a silence, all
    /// within a timeout of each other and none of them just started, if
    /// less than `window` ago: then it was the one away (paused, cut off),
    /// and the others see it back from about then. Peers back from faults
    /// of their own, at their own times, say nothing of this node; nor does
    /// one peer alone.
    pub fn rejoined_since(&self, window: Duration) -> Option<Instant> {
        let rejoined = *self.rejoined.lock().unwrap_or_else(PoisonError::into_inner);
        rejoined.filter(|at| at.elapsed() < window)
    }

    pub fn is_alive(&self, node: NodeId) -> bool {
        self.heard_within(node, self.timeout)
    }

    /// Peers that went down less than `window` ago (a timeout after they
    /// were last heard from, or when they refused: `refused` dates their
    /// last word a timeout back), and peers whose watched connection has
    /// just closed, which `watch` is about to probe.
    pub fn just_lost(&self, window: Duration) -> Vec<NodeId> {
        let mut lost: Vec<NodeId> = {
            let m = self.last_heard.lock().unwrap_or_else(PoisonError::into_inner);
            let recent = self.timeout..self.timeout + window;
            m.iter().filter(|(_, h)| recent.contains(&h.last.elapsed())).map(|(&n, _)| n).collect()
        };
        let watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        for (&n, conn) in watched.iter() {
            if !lost.contains(&n) && closed(conn) {
                lost.push(n);
            }
        }
        lost
    }

    /// How long since `node` was last heard from (since this node started,
    /// if never).
    pub fn silent_for(&self, node: NodeId) -> Duration {
        let m = self.last_heard.lock().unwrap_or_else(PoisonError::into_inner);
        m.get(&node).map_or(self.started, |h| h.last).elapsed()
    }

    /// Heard from within half the timeout (two pings missed at most): a
    /// node that just died is still alive for up to a timeout, and new
    /// replicas should not be placed on it meanwhile.
    pub fn is_fresh(&self, node: NodeId) -> bool {
        self.heard_within(node, self.timeout / 2)
    }

    fn heard_within(&self, node: NodeId, window: Duration) -> bool {
        node == self.node_id || self.silent_for(node) < window
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

/// A ping's reply: the replier's uptime in milliseconds. A peer of an
/// older version replies with nothing, and its uptime stays unknown.
pub fn ping_reply(liveness: &Liveness) -> Result<Vec<u8>, codec::CodecError> {
    let ms = u64::try_from(liveness.uptime().as_millis()).unwrap_or(u64::MAX);
    codec::encode("ping reply", &ms)
}

/// Whether an idle connection was closed by its peer: a peek reads it as
/// ended or failed at once, where an open one would block. Asked of the
/// socket itself: tokio's `try_read` answers from readiness its reactor
/// may not have polled yet, and a Metadata request that arrives together
/// with a peer's death must already see it.
fn closed(conn: &TcpStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(conn).peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// Holds an idle connection to `peer`'s Raft port, only to learn the moment
/// it closes: a process that exits closes every socket it had, so this sees
/// a killed peer at once, not at the next ping round. Closed, the port is
/// tried again at once; a refusal proves the process gone
/// (`Liveness::refused`). A cut network closes nothing, and leaves the
/// verdict to the pings and the timeout.
async fn watch(liveness: Arc<Liveness>, peer: NodeId, addr: String, retry: Duration) {
    loop {
        match TcpStream::connect(&addr).await {
            Ok(conn) => {
                // Nothing is ever sent here: the connection turns readable
                // when the peer closes it (or, at worst, sends something).
                // Shared, so `Liveness::just_lost` sees it closed before
                // this task has had its turn.
                let conn = Arc::new(conn);
                liveness.watched.lock().unwrap_or_else(PoisonError::into_inner).insert(peer, conn.clone());
                // Left in place once closed, until the next attempt's verdict.
                let opened = tokio::time::Instant::now();
                let mut byte = [0u8; 1];
                while conn.readable().await.is_ok() {
                    match conn.try_read(&mut byte) {
                        Ok(0) => break,
                        Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => break,
                        Ok(_) | Err(_) => {}
                    }
                }
                if opened.elapsed() >= retry {
                    continue; // ask again at once: is anyone still listening?
                }
            }
            Err(e) => {
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    liveness.refused(peer);
                }
                liveness.watched.lock().unwrap_or_else(PoisonError::into_inner).remove(&peer);
            }
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
                let mut asked = Instant::now();
                let mut reply = transport.call(&addr, &request, liveness.timeout).await;
                if matches!(reply, Err(TransportError::Closed | TransportError::Wire(_))) {
                    // The pooled connection was closed under us, and its
                    // pool-mates likely were too (a peer that exits closes
                    // them all): drop them and ask again over a new one,
                    // which a dead peer refuses at once.
                    transport.forget(&addr);
                    asked = Instant::now();
                    reply = transport.call(&addr, &request, liveness.timeout).await;
                }
                match reply {
                    Ok(body) => {
                        liveness.heard(peer);
                        if let Ok(ms) = codec::decode::<u64>("ping reply", &body) {
                            liveness.heard_up(peer, Duration::from_millis(ms), asked);
                        }
                    }
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
        let window = Duration::from_secs(60);
        assert!(!l.back_within(2, window), "a first contact is no return: node 2 may have run all along");
        std::thread::sleep(Duration::from_millis(5)); // past the start-up grace for certain
        l.heard_up(2, Duration::ZERO, Instant::now());
        assert!(l.back_within(2, window), "its process started after this one's: it came back");
    }

    /// Every peer heard again at once, after contact and a silence: this
    /// node was away. Not when a peer's return was its first contact, nor
    /// when one of them had just restarted, nor when they came back at
    /// different times (faults of their own).
    #[test]
    fn a_node_that_hears_every_peer_again_at_once_was_away_itself() {
        let window = Duration::from_secs(60);
        let timeout = Duration::from_millis(30);
        let back_again = |l: &Liveness, n: NodeId| {
            l.refused(n);
            l.heard(n);
        };
        let l = Liveness::new(1, timeout);
        std::thread::sleep(timeout + Duration::from_millis(10)); // the start-up grace, past
        l.heard(2);
        l.heard(3);
        assert!(!l.back_within(2, window), "a first contact is no return");
        assert_eq!(l.rejoined_since(window), None, "first contacts: nothing was away");
        l.heard_up(3, Duration::ZERO, Instant::now());
        back_again(&l, 2);
        back_again(&l, 3);
        assert_eq!(l.rejoined_since(window), None, "node 3 just started: its silence was its own");
        l.heard_up(3, Duration::from_secs(30), Instant::now());
        back_again(&l, 2);
        back_again(&l, 3);
        let rejoined = l.rejoined_since(window);
        assert!(rejoined.is_some(), "both heard again at once, after a silence");
        std::thread::sleep(timeout + Duration::from_millis(10));
        back_again(&l, 2);
        assert_eq!(l.rejoined_since(window), rejoined, "one peer's later return does not undo it");

        let l = Liveness::new(1, timeout);
        l.heard(2);
        l.heard(3);
        back_again(&l, 2);
        std::thread::sleep(timeout + Duration::from_millis(10));
        back_again(&l, 3);
        assert_eq!(l.rejoined_since(window), None, "node 3 came back later than node 2: faults of their own");

        // Heard again as this node rejoined, the peers were not away: each
        // keeps the return it had before (node 3's, from a fault of its own).
        let l = Liveness::new(1, timeout);
        l.heard(2);
        l.heard(3);
        back_again(&l, 3);
        let node_3_back = l.back_since(3, window);
        std::thread::sleep(timeout + Duration::from_millis(10)); // a fault of node 3's own, then this node's
        back_again(&l, 2);
        back_again(&l, 3);
        assert!(l.rejoined_since(window).is_some());
        assert_eq!(l.back_since(2, window), None, "node 2 never went away");
        assert_eq!(l.back_since(3, window), node_3_back, "node 3 came back before this node was away");
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
        assert_eq!(l.just_lost(Duration::from_secs(1)), vec![2], "refused just now: just lost; 3 never was");
        l.heard(2);
        assert!(l.just_lost(Duration::from_secs(1)).is_empty());
        assert!(!l.is_gone(2));
        assert!(l.is_alive(2) && l.back_within(2, Duration::from_secs(60)));
    }

    /// A peer's process exits: its port closes the watched connection and
    /// then refuses, and the peer is lost at once, not a timeout later.
    #[tokio::test]
    async fn a_watched_peer_that_exits_is_lost_at_once() {
        let l = Arc::new(Liveness::new(1, Duration::from_secs(60)));
        l.heard(2);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let watcher = tokio::spawn(watch(l.clone(), 2, addr, Duration::from_millis(20)));
        let (conn, _) = listener.accept().await.expect("the watch connects");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !l.watched.lock().expect("watched").contains_key(&2) {
            assert!(Instant::now() < deadline, "the watch never held its connection");
            tokio::task::yield_now().await;
        }
        assert!(l.just_lost(Duration::from_secs(1)).is_empty(), "open and heard from: not lost");
        drop((conn, listener));
        while l.is_alive(2) {
            assert!(Instant::now() < deadline, "a closed, refusing port never marked the peer down");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(l.is_gone(2));
        assert_eq!(l.just_lost(Duration::from_secs(1)), vec![2]);
        watcher.abort();
    }

    #[test]
    fn a_peer_heard_without_a_gap_never_came_back() {
        let l = Liveness::new(1, Duration::from_secs(60));
        l.heard(2);
        l.heard(2);
        assert!(l.is_alive(2));
        assert!(!l.back_within(2, Duration::from_secs(60)), "heard within the start-up grace: never down");
    }

    /// A peer's start is dated by the uptime its ping replies carry; a peer
    /// whose uptime is unknown has not been up for any window.
    /// A reply that waited behind load dates the peer's start no later:
    /// the uptime counts from when the ping was sent.
    #[test]
    fn a_late_ping_reply_does_not_make_a_peer_look_restarted() {
        let l = Liveness::new(1, Duration::from_secs(1));
        let asked = Instant::now();
        let up = Duration::from_secs(30);
        std::thread::sleep(Duration::from_millis(50)); // the reply's wait
        l.heard_up(2, up, asked);
        let seen_leading = asked.checked_sub(up - Duration::from_millis(10)).expect("an instant");
        assert!(!l.started_after(2, seen_leading), "seen leading after its start: not restarted since");
    }

    #[test]
    fn a_peers_uptime_dates_its_start() {
        let l = Liveness::new(1, Duration::from_secs(1));
        assert!(!l.up_for(2, Duration::ZERO), "uptime unknown");
        l.heard_up(2, Duration::from_secs(30), Instant::now());
        assert!(l.up_for(2, Duration::from_secs(12)));
        l.heard_up(2, Duration::from_secs(1), Instant::now());
        assert!(!l.up_for(2, Duration::from_secs(12)), "restarted a second ago");
        let ms: u64 = codec::decode("ping reply", &ping_reply(&l).expect("encoded")).expect("decoded");
        assert!(ms < 60_000, "this node's uptime: {ms} ms");
        assert!(l.up_for(1, Duration::ZERO) && !l.up_for(1, Duration::from_secs(60)));
    }

    /// A peer that was silent and is heard again, but whose uptime runs on,
    /// was cut off or paused, not restarted: what it led may still be its.
    #[test]
    fn only_a_restarted_peer_started_after_it_was_seen() {
        let l = Liveness::new(1, Duration::from_secs(1));
        l.heard_up(2, Duration::from_secs(30), Instant::now());
        let seen = Instant::now();
        l.refused(2);
        l.heard(2);
        l.heard_up(2, Duration::from_secs(32), Instant::now());
        assert!(!l.started_after(2, seen), "heard again, same process");
        assert!(!l.started_after(3, seen), "uptime unknown");
        l.heard_up(2, Duration::ZERO, Instant::now());
        assert!(l.started_after(2, seen), "a new process");
    }
}
