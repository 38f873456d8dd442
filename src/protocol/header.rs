//! Request headers in, response frames out. The header version depends on the
//! API key and version (flexible versions carry tagged fields); ApiVersions
//! responses always use header v0 so a client can read them whatever it sent.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::buf::Pieces;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::protocol::error::ProtocolError;

/// A request whose header is decoded and whose body is still bytes.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// Decodes the body as `T` at the request's version.
    pub fn decode<T: Decodable>(&mut self) -> Result<T, ProtocolError> {
        let version = self.version();
        T::decode(&mut self.body, version).map_err(|e| ProtocolError::Malformed(e.into()))
    }
}

pub fn decode_request(mut frame: Bytes) -> Result<Request, ProtocolError> {
    if frame.len() < 4 {
        return Err(ProtocolError::Truncated);
    }
    let key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let api_key = ApiKey::try_from(key).map_err(|_| ProtocolError::UnknownApiKey(key))?;
    let header_version = api_key.request_header_version(version);
    let header =
        RequestHeader::decode(&mut frame, header_version).map_err(|e| ProtocolError::Malformed(e.into()))?;
    Ok(Request { api_key, header, body: frame })
}

/// Encodes a length-prefixed response frame for `request`.
pub fn encode_response<T: Encodable>(request: &Request, body: &T) -> Result<Encoded, ProtocolError> {
    let header_version = match request.api_key {
        ApiKey::ApiVersions => 0,
        key => key.response_header_version(request.version()),
    };
    encode_frame(request.header.correlation_id, header_version, request.version(), body).map_err(
        |e| match e {
            ProtocolError::Encode { source, .. } => {
                ProtocolError::Encode { key: request.api_key as i16, version: request.version(), source }
            }
            other => other,
        },
    )
}

pub fn encode_frame<T: Encodable>(
    correlation_id: i32,
    header_version: i16,
    version: i16,
    body: &T,
) -> Result<Encoded, ProtocolError> {
    let enc = |e: anyhow::Error| ProtocolError::Encode { key: -1, version, source: e.into() };
    let mut buf = Pieces::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(enc)?;
    body.encode(&mut buf, version).map_err(enc)?;
    let size = i32::try_from(buf.len()).map_err(|_| enc(anyhow::anyhow!("a response over 2 GiB")))?;
    Ok(Encoded { size: size.to_be_bytes(), pieces: buf.into_pieces() })
}

/// A response frame: its size, then its bytes in pieces — a fetch's record
/// batches among them as read from the log, not copied again
/// (`kafka_protocol::protocol::buf::Pieces`, raftka's patch).
#[derive(Debug)]
pub struct Encoded {
    size: [u8; 4],
    pieces: Vec<Bytes>,
}

impl Encoded {
    /// The size prefix, then each piece, in the order they are written.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(&self.size[..]).chain(self.pieces.iter().map(|p| &p[..]))
    }

    /// The frame's size in bytes, its size prefix included.
    pub fn len(&self) -> usize {
        self.size.len() + self.pieces.iter().map(Bytes::len).sum::<usize>()
    }

    /// Never: a frame holds at least its size prefix.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole frame in one buffer (a copy: for tests and tools).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().flat_map(|p| p.iter().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::buf::Pieces;
    use kafka_protocol::protocol::Decodable;

    use super::encode_frame;

    fn fetch_with(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default().with_partition_index(i as i32).with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default()
            .with_responses(vec![FetchableTopicResponse::default().with_partitions(partitions)])
    }

    /// A fetch's record batches reach the socket as they were read: the
    /// frame holds them by reference, and reads back as the response.
    #[test]
    fn a_fetch_frame_holds_its_record_batches_by_reference() {
        let big = Bytes::from(vec![7u8; Pieces::SHARE_MIN * 3]);
        let small = Bytes::from_static(b"a small batch");
        for version in [4, 11, 12, 16] {
            let response = fetch_with(&[big.clone(), small.clone(), big.clone()]);
            let header_version = if version >= 12 { 1 } else { 0 };
            let frame = encode_frame(9, header_version, version, &response).expect("encodes");
            let shared = frame.parts().filter(|p| p.as_ptr() == big.as_ptr()).count();
            assert_eq!(shared, 2, "v{version}: both large batches by reference");
            let bytes = frame.to_vec();
            let size = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            assert_eq!(size, bytes.len() - 4, "v{version}: the size prefix");
            // The size, the correlation id, and from v12 on an empty set of
            // tagged header fields.
            let mut body = Bytes::from(bytes[8 + header_version as usize..].to_vec());
            let back = FetchResponse::decode(&mut body, version).expect("decodes");
            assert!(back == response, "v{version}: the response reads back");
        }
    }
}
