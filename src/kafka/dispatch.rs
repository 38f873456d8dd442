//! The routing table: API key → handler. This is the only list of the APIs we
//! serve; ApiVersions answers from it, so an API is advertised exactly when it
//! is routed (STYLE.md §2). Handlers live in their own files.

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;

use crate::kafka::{
    api_versions, configs, fetch, groups, list_offsets, metadata, produce, producer_id, topics,
};
use crate::node::Node;
use crate::protocol::header::encode_response;
use crate::protocol::{ProtocolError, Request};

/// One served API and the versions we accept.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn route(key: ApiKey, min: i16, max: i16) -> Route {
    Route { key, min, max }
}

/// Ranges chosen to look like a modern Kafka to clients that infer the
/// broker's version from them (DESIGN.md, "Protocol facts"). Produce starts at
/// v0 for old librdkafka's sake, but v0–2 are refused when used.
pub const ROUTES: &[Route] = &[
    route(ApiKey::Produce, 0, 11),
    route(ApiKey::Fetch, 4, 12),
    route(ApiKey::ListOffsets, 1, 7),
    route(ApiKey::Metadata, 0, 12),
    route(ApiKey::ApiVersions, 0, 4),
    route(ApiKey::CreateTopics, 2, 7),
    route(ApiKey::DeleteTopics, 1, 6),
    route(ApiKey::InitProducerId, 0, 5),
    route(ApiKey::DescribeConfigs, 1, 4),
    route(ApiKey::CreatePartitions, 0, 3),
    route(ApiKey::FindCoordinator, 0, 4),
    route(ApiKey::JoinGroup, 0, 9),
    route(ApiKey::SyncGroup, 0, 5),
    route(ApiKey::Heartbeat, 0, 4),
    route(ApiKey::LeaveGroup, 0, 5),
    route(ApiKey::OffsetCommit, 2, 8),
    route(ApiKey::OffsetFetch, 1, 8),
    route(ApiKey::DescribeGroups, 0, 5),
    route(ApiKey::ListGroups, 0, 4),
    route(ApiKey::DeleteGroups, 0, 2),
    route(ApiKey::OffsetDelete, 0, 0),
];

/// Produce versions we advertise but refuse (Kafka 4.0 does the same).
const PRODUCE_MIN_SERVED: i16 = 3;

fn supported(key: ApiKey, version: i16) -> bool {
    ROUTES.iter().any(|r| r.key == key && (r.min..=r.max).contains(&version))
}

/// Handles one request from `client_host`; `Ok(None)` means no response is
/// due (acks=0). Counted and timed per API for `/metrics`.
pub async fn dispatch(
    ctx: &Node,
    req: Request,
    client_host: &str,
) -> Result<Option<BytesMut>, ProtocolError> {
    let (api, started) = (req.api_key as i16, std::time::Instant::now());
    let reply = route_request(ctx, req, client_host).await;
    ctx.metrics.request(api, started.elapsed());
    reply
}

async fn route_request(
    ctx: &Node,
    mut req: Request,
    client_host: &str,
) -> Result<Option<BytesMut>, ProtocolError> {
    let version = req.version();
    tracing::debug!(api_key = ?req.api_key, version, correlation_id = req.header.correlation_id, "request");
    if req.api_key == ApiKey::ApiVersions {
        return api_versions::handle(&req).map(Some);
    }
    if !supported(req.api_key, version) || (req.api_key == ApiKey::Produce && version < PRODUCE_MIN_SERVED) {
        return Err(ProtocolError::UnsupportedVersion { key: req.api_key as i16, version });
    }
    let reply = match req.api_key {
        ApiKey::Produce => {
            let body = req.decode()?;
            match produce::handle(ctx, body).await {
                Some(resp) => encode_response(&req, &resp)?,
                None => return Ok(None),
            }
        }
        ApiKey::Fetch => {
            let body = req.decode()?;
            encode_response(&req, &fetch::handle(ctx, body).await)?
        }
        ApiKey::ListOffsets => {
            let body = req.decode()?;
            encode_response(&req, &list_offsets::handle(ctx, version, body))?
        }
        ApiKey::Metadata => {
            let body = req.decode()?;
            encode_response(&req, &metadata::handle(ctx, version, body).await)?
        }
        ApiKey::CreateTopics => {
            let body = req.decode()?;
            encode_response(&req, &topics::create(ctx, version, body).await)?
        }
        ApiKey::DeleteTopics => {
            let body = req.decode()?;
            encode_response(&req, &topics::delete(ctx, version, body).await)?
        }
        ApiKey::CreatePartitions => {
            let body = req.decode()?;
            encode_response(&req, &topics::create_partitions(ctx, body).await)?
        }
        ApiKey::DescribeConfigs => {
            let body = req.decode()?;
            encode_response(&req, &configs::describe(ctx, body))?
        }
        ApiKey::InitProducerId => {
            let body = req.decode()?;
            encode_response(&req, &producer_id::handle(ctx, body).await)?
        }
        ApiKey::FindCoordinator => {
            let body = req.decode()?;
            encode_response(&req, &groups::find_coordinator(ctx, version, body).await)?
        }
        ApiKey::JoinGroup => {
            let body = req.decode()?;
            let client_id = req.header.client_id.as_ref().map(|c| c.as_str().to_string()).unwrap_or_default();
            encode_response(&req, &groups::join(ctx, version, &client_id, client_host, body).await)?
        }
        ApiKey::SyncGroup => {
            let body = req.decode()?;
            encode_response(&req, &groups::sync(ctx, body).await)?
        }
        ApiKey::Heartbeat => {
            let body = req.decode()?;
            encode_response(&req, &groups::heartbeat(ctx, body).await)?
        }
        ApiKey::LeaveGroup => {
            let body = req.decode()?;
            encode_response(&req, &groups::leave(ctx, version, body).await)?
        }
        ApiKey::OffsetCommit => {
            let body = req.decode()?;
            encode_response(&req, &groups::commit(ctx, body).await)?
        }
        ApiKey::OffsetFetch => {
            let body = req.decode()?;
            encode_response(&req, &groups::fetch_offsets(ctx, version, body).await)?
        }
        ApiKey::DescribeGroups => {
            let body = req.decode()?;
            encode_response(&req, &groups::describe(ctx, body).await)?
        }
        ApiKey::ListGroups => {
            let body = req.decode()?;
            encode_response(&req, &groups::list(ctx, body).await)?
        }
        ApiKey::DeleteGroups => {
            let body = req.decode()?;
            encode_response(&req, &groups::delete(ctx, body).await)?
        }
        ApiKey::OffsetDelete => {
            let body = req.decode()?;
            encode_response(&req, &groups::delete_offsets(ctx, body).await)?
        }
        other => return Err(ProtocolError::UnsupportedVersion { key: other as i16, version }),
    };
    Ok(Some(reply))
}
