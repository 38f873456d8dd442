//! Kafka framing: a 4-byte big-endian size, then the request. The size is
//! checked against `socket_request_max_bytes` before a byte of the body is
//! buffered, so a huge length prefix costs nothing (STYLE.md, anti-patterns).

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::protocol::error::ProtocolError;

/// Reads one frame's body; `Ok(None)` when the peer closed the connection
/// cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Bytes>, ProtocolError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(len);
    if size < 0 {
        return Err(ProtocolError::NegativeLength(size));
    }
    let size = size as usize;
    if size > max {
        return Err(ProtocolError::FrameTooLarge { size, max });
    }
    let mut body = BytesMut::zeroed(size);
    r.read_exact(&mut body).await?;
    Ok(Some(body.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_read_whole_and_limits_enforced() {
        let mut input: &[u8] = &[0, 0, 0, 3, 1, 2, 3];
        assert_eq!(read_frame(&mut input, 10).await.unwrap().unwrap().as_ref(), &[1, 2, 3]);
        assert!(read_frame(&mut input, 10).await.unwrap().is_none());

        let mut huge: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame(&mut huge, 1024).await, Err(ProtocolError::FrameTooLarge { .. })));

        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame(&mut negative, 1024).await, Err(ProtocolError::NegativeLength(-1))));

        let mut truncated: &[u8] = &[0, 0, 0, 9, 1, 2];
        assert!(matches!(read_frame(&mut truncated, 1024).await, Err(ProtocolError::Io(_))));
    }
}
