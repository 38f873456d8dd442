//! Request headers in, response frames out. The header version depends on the
//! API key and version (flexible versions carry tagged fields); ApiVersions
//! responses always use header v0 so a client can read them whatever it sent.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
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
pub fn encode_response<T: Encodable>(request: &Request, body: &T) -> Result<BytesMut, ProtocolError> {
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
) -> Result<BytesMut, ProtocolError> {
    let enc = |e: anyhow::Error| ProtocolError::Encode { key: -1, version, source: e.into() };
    let mut buf = BytesMut::with_capacity(128);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(enc)?;
    body.encode(&mut buf, version).map_err(enc)?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}
