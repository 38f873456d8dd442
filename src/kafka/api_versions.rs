//! ApiVersions, answered from the routing table it is given. An unsupported request
//! version gets a v0 body with UNSUPPORTED_VERSION and our ranges, which is how
//! clients (older librdkafka/kcat among them) learn what to downgrade to.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use crate::protocol::header::{encode_frame, encode_response, Encoded};
use crate::protocol::{ProtocolError, Request};

const MAX_VERSION: i16 = 4;

/// One served API and the versions we accept (the table is `dispatch::ROUTES`).
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

pub fn handle(req: &Request, routes: &[Route]) -> Result<Encoded, ProtocolError> {
    let api_keys: Vec<ApiVersion> = routes
        .iter()
        .map(|r| {
            ApiVersion::default().with_api_key(r.key as i16).with_min_version(r.min).with_max_version(r.max)
        })
        .collect();
    let resp = ApiVersionsResponse::default().with_api_keys(api_keys);
    if req.version() > MAX_VERSION || req.version() < 0 {
        let resp = resp.with_error_code(ResponseError::UnsupportedVersion.code());
        return encode_frame(req.header.correlation_id, 0, 0, &resp);
    }
    encode_response(req, &resp)
}
