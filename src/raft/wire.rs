//! The inter-broker wire format: a 4-byte big-endian length, then a bincode
//! body. Requests are tagged with their Raft group, so every group of a node
//! shares the same few connections to each peer.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::codec;
use crate::net::FrameError;
use crate::raft::types::GroupId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RpcKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
    /// A metadata write (or a join) sent by a node that is not the metadata
    /// leader; only valid for the metadata group.
    Forward,
    /// Asks this replica to start an election now: how a leader hands its
    /// leadership to a caught-up replica (openraft 0.9 has no transfer call).
    Elect,
    /// Node-level failure detection (`raft::liveness`); the body names the sender.
    Ping,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RpcRequest {
    pub group: GroupId,
    pub kind: RpcKind,
    /// The bincode-encoded openraft request. `Bytes`, not `Vec<u8>`: serde
    /// moves it as one byte string (a `Vec<u8>` goes byte by byte, which was
    /// a sixth of a 3-node cluster's CPU under produce load).
    pub body: Bytes,
}

/// Why a node did not route a request to Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RpcRefusal {
    #[error("group {0} is not hosted here")]
    NotHosted(GroupId),
    #[error("group {group} does not take {kind:?} requests")]
    WrongKind { group: GroupId, kind: RpcKind },
    #[error("the {0:?} request does not decode")]
    Undecodable(RpcKind),
    #[error("the reply to {0:?} does not encode")]
    Unencodable(RpcKind),
    #[error("this node is shutting down and takes no leadership")]
    Draining,
}

/// `Ok` holds the bincode-encoded `Result` that the target's Raft returned;
/// `Err` says why the target could not route the request at all.
pub type RpcReply = Result<Bytes, RpcRefusal>;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
}

/// Writes `value` as one frame, in one write: the body is encoded after
/// room left for its length, so neither a second system call nor a copy of
/// the body is needed.
pub async fn write_frame<W: AsyncWriteExt + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), WireError> {
    let mut frame = vec![0u8; 4];
    codec::encode_into("rpc frame", value, &mut frame)?;
    let size = frame.len() - 4;
    let len = u32::try_from(size).map_err(|_| WireError::TooLarge { size, max: u32::MAX as usize })?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` on a clean end of stream. The client side of
/// a call: strictly one reply after one request, so a plain reader will do.
/// The body grows as its bytes arrive, never to the announced size up front.
pub async fn read_frame<R: AsyncReadExt + Unpin, T: serde::de::DeserializeOwned>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = u32::from_be_bytes(len) as usize;
    if size > max {
        return Err(WireError::TooLarge { size, max });
    }
    let mut body = Vec::new();
    r.take(size as u64).read_to_end(&mut body).await?;
    if body.len() < size {
        return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(Some(decode(&body)?))
}

/// Decodes one frame body (a request on the server, a reply on the client).
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    Ok(codec::decode("rpc frame", body)?)
}
