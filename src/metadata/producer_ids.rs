//! Producer ids for idempotent producers, handed out from a block reserved in
//! the metadata group, so most calls need no consensus.

use crate::metadata::handle::{MetadataError, MetadataHandle};

const BLOCK: i64 = 1000;

/// The rest of this broker's current block of producer ids.
pub struct ProducerIdPool {
    metadata: MetadataHandle,
    // A tokio mutex: refilling the block awaits a metadata write, and
    // concurrent callers must wait for that one refill.
    next: tokio::sync::Mutex<(i64, i64)>,
}

impl ProducerIdPool {
    pub fn new(metadata: MetadataHandle) -> Self {
        Self { metadata, next: tokio::sync::Mutex::new((0, 0)) }
    }

    pub async fn next(&self) -> Result<i64, MetadataError> {
        let mut range = self.next.lock().await;
        if range.0 >= range.1 {
            let first = self.metadata.allocate_producer_ids(BLOCK).await?;
            *range = (first, first + BLOCK);
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }
}
