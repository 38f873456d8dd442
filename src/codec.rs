//! The one binary encoding of everything raftka stores (RocksDB values) and
//! sends between brokers (Raft frames): bincode with the serde bridge.
//! Decoding is bounded by its input, so a file or a peer can't make it
//! allocate what the bytes do not hold.

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode {what}: {source}")]
    Encode { what: &'static str, source: bincode::error::EncodeError },
    #[error("cannot decode {what}: {source}")]
    Decode { what: &'static str, source: bincode::error::DecodeError },
}

pub fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|source| CodecError::Encode { what, source })
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into<T: serde::Serialize>(
    what: &'static str,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
        .map(drop)
        .map_err(|source| CodecError::Encode { what, source })
}

/// Decodes what `encode` wrote, from a file or from a peer alike. bincode
/// sizes a string or byte field by the length it reads, and checks that
/// length against a configured limit before allocating — so the limit is
/// chosen from the input: a decoded value claims at most 16 bytes per input
/// byte (a one-byte varint becomes a `u64`, a `u128` at worst), and the
/// limit is the first of 1 MiB, 16 MiB, … at least 16 times the input. No
/// length read from `bytes` can allocate more than 256 times its size.
pub fn decode<T: serde::de::DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    fn within<T: serde::de::DeserializeOwned, const LIMIT: usize>(
        bytes: &[u8],
    ) -> Result<T, bincode::error::DecodeError> {
        let config = bincode::config::standard().with_limit::<LIMIT>();
        bincode::serde::decode_from_slice(bytes, config).map(|(v, _)| v)
    }
    let need = bytes.len().saturating_mul(16);
    let decoded = if need <= 1 << 20 {
        within::<T, { 1 << 20 }>(bytes)
    } else if need <= 1 << 24 {
        within::<T, { 1 << 24 }>(bytes)
    } else if need <= 1 << 28 {
        within::<T, { 1 << 28 }>(bytes)
    } else if need <= 1 << 32 {
        within::<T, { 1 << 32 }>(bytes)
    } else {
        within::<T, { 1 << 36 }>(bytes)
    };
    decoded.map_err(|source| CodecError::Decode { what, source })
}

/// serde adapter: a `Duration` stored as whole milliseconds (`u64`).
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Frame {
        name: String,
        body: bytes::Bytes,
        items: Vec<u64>,
    }

    #[test]
    fn values_round_trip() {
        let f = Frame { name: "n".into(), body: bytes::Bytes::from_static(b"abc"), items: vec![1, u64::MAX] };
        let back: Frame = decode("frame", &encode("frame", &f).unwrap()).unwrap();
        assert_eq!(back, f);
        // A large value still fits its bucket.
        let big =
            Frame { name: "x".repeat(3 << 20), body: vec![7u8; 5 << 20].into(), items: vec![0; 1 << 20] };
        let back: Frame = decode("frame", &encode("frame", &big).unwrap()).unwrap();
        assert_eq!(back, big);
    }

    /// Lengths that claim far more than the input holds are refused, not
    /// allocated (bincode's own decoder would allocate them first).
    #[test]
    fn lying_lengths_are_refused() {
        // varint 0xfd = u32 follows; 0xfe = u64 follows.
        let huge_string = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, b'a'];
        assert!(matches!(decode::<Frame>("frame", &huge_string), Err(CodecError::Decode { .. })));
        let mut huge_body = vec![1, b'n'];
        huge_body.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0x7f]);
        assert!(matches!(decode::<Frame>("frame", &huge_body), Err(CodecError::Decode { .. })));
    }
}
