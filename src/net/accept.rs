//! One accept loop for every listener: wait for a free connection slot (the
//! listener's maximum; over it, accepting waits and new connections queue in
//! the kernel), accept, and admit the peer's address if it has a place left
//! (over the per-address limit the connection is closed at once, logged once
//! and counted). Accept errors — out of descriptors, most often — pause the
//! loop instead of spinning it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::net::admission::{Admission, Admit};
use crate::net::stats::{EdgeStats, OpenGuard, Refusal};

pub struct Acceptor {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    admission: Option<Arc<Admission>>,
    stats: Arc<EdgeStats>,
}

/// An admitted connection and the places it holds until it is dropped.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub held: Held,
}

/// The connection's slot, its address's place and its `connections_open` count.
pub struct Held {
    _slot: OwnedSemaphorePermit,
    _admit: Option<Admit>,
    _open: OpenGuard,
}

impl Acceptor {
    /// At most `max_connections` at once, and `max_per_ip` from one address
    /// if given; counted under `stats`' listener name.
    pub fn new(
        listener: TcpListener,
        max_connections: usize,
        max_per_ip: Option<usize>,
        stats: Arc<EdgeStats>,
    ) -> Self {
        Self {
            listener,
            slots: Arc::new(Semaphore::new(max_connections)),
            admission: max_per_ip.map(Admission::new),
            stats,
        }
    }

    /// The next admitted connection; `None` once `shutdown` is cancelled.
    pub async fn next(&self, shutdown: &CancellationToken) -> Option<Accepted> {
        loop {
            let slot = tokio::select! {
                _ = shutdown.cancelled() => return None,
                s = self.slots.clone().acquire_owned() => s.ok()?,
            };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => return None,
                a = self.listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        let listener = self.stats.listener;
                        tracing::warn!(listener, error = %e, "accept failed; pausing 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let admit = match &self.admission {
                None => None,
                Some(admission) => match admission.admit(peer.ip()) {
                    Some(admit) => Some(admit),
                    None => {
                        self.stats.refused(Refusal::PerIpLimit);
                        let listener = self.stats.listener;
                        tracing::warn!(listener, %peer, "refusing connection: too many from this address");
                        continue;
                    }
                },
            };
            let held = Held { _slot: slot, _admit: admit, _open: self.stats.opened() };
            return Some(Accepted { stream, peer, held });
        }
    }
}
