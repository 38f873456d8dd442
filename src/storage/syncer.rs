//! Group commit for `fsync = true`: one thread makes appended Raft entries
//! durable for every partition group at once.
//!
//! An append writes its bytes (segment file, then RocksDB without a WAL sync)
//! and hands the syncer the segment file it wrote and a completion. The
//! syncer takes every request waiting, syncs each distinct file once, then
//! RocksDB's WAL once, and completes them all. openraft counts an entry as
//! stored only once its completion runs (`LogFlushed`), so nothing is
//! acknowledged before it is on disk; but partitions and connections that
//! append together share one WAL sync, and no tokio worker waits in `fsync`
//! (the 2 workers of a small machine did, one partition at a time).
//!
//! Segment files are synced before the WAL, so after a power loss RocksDB
//! never names bytes a synced round did not hold (`segments` explains the
//! recovery when it does, with `fsync` off).

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use rocksdb::DB;

use crate::storage::StorageError;

/// What runs once a request's entries are durable, or could not be made so.
pub type Done = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

struct Request {
    file: Option<Arc<File>>,
    done: Done,
}

/// How much grouping happened: requests completed and sync rounds run.
#[derive(Debug, Default)]
pub struct SyncCounts {
    requests: AtomicU64,
    rounds: AtomicU64,
}

impl SyncCounts {
    /// `(requests, rounds)` so far.
    pub fn get(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.rounds.load(Ordering::Relaxed))
    }
}

/// The syncing thread; dropping it finishes what is queued and joins it.
pub struct Syncer {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<SyncCounts>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer").field("counts", &self.counts).finish()
    }
}

impl Syncer {
    pub fn start(db: Arc<DB>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        let counts = Arc::new(SyncCounts::default());
        let thread_counts = counts.clone();
        let thread = std::thread::Builder::new()
            .name("raftka-syncer".into())
            .spawn(move || run(&db, &rx, &thread_counts))?;
        Ok(Self { tx: Some(tx), thread: Some(thread), counts })
    }

    /// Makes what was written to `file` and to RocksDB so far durable, then
    /// calls `done`.
    pub fn sync(&self, file: Option<Arc<File>>, done: Done) {
        let request = Request { file, done };
        let refused = match &self.tx {
            Some(tx) => tx.send(request).err().map(|e| e.0),
            None => Some(request),
        };
        if let Some(request) = refused {
            // Only after the thread died: no entry may count as durable.
            (request.done)(Err(StorageError::SyncerGone));
        }
    }

    pub fn counts(&self) -> &SyncCounts {
        &self.counts
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            // The database closes after this thread lets go of it.
            let _ = thread.join();
        }
    }
}

fn run(db: &DB, rx: &mpsc::Receiver<Request>, counts: &SyncCounts) {
    while let Ok(first) = rx.recv() {
        let mut round = vec![first];
        round.extend(rx.try_iter());
        let mut files: Vec<&Arc<File>> = Vec::new();
        for file in round.iter().filter_map(|r| r.file.as_ref()) {
            if !files.iter().any(|f| Arc::ptr_eq(f, file)) {
                files.push(file);
            }
        }
        let synced = files
            .iter()
            .try_for_each(|f| f.sync_data())
            .map_err(|e| e.to_string())
            .and_then(|()| db.flush_wal(true).map_err(|e| e.to_string()));
        if let Err(e) = &synced {
            tracing::error!(error = e.as_str(), waiting = round.len(), "log sync failed");
        }
        counts.rounds.fetch_add(1, Ordering::Relaxed);
        counts.requests.fetch_add(round.len() as u64, Ordering::Relaxed);
        for request in round {
            (request.done)(match &synced {
                Ok(()) => Ok(()),
                Err(e) => Err(StorageError::SyncFailed(e.clone())),
            });
        }
    }
}
