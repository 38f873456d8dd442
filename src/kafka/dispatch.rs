//! The routing table: API key → versions → handler, written once. The
//! `routes!` list below makes both `ROUTES` (what ApiVersions advertises) and
//! the dispatch `match`, so an API is advertised exactly when it is routed
//! (STYLE.md §2) and a new one needs one line. Handlers live in their own
//! files.

use kafka_protocol::messages::ApiKey;

pub use crate::kafka::api_versions::Route;
use crate::kafka::{
    api_versions, configs, fetch, groups, list_offsets, metadata, produce, producer_id, topics,
};
use crate::node::Node;
use crate::protocol::header::{encode_response, Encoded};
use crate::protocol::{ProtocolError, Request};

/// Produce versions we advertise but refuse (Kafka 4.0 does the same).
const PRODUCE_MIN_SERVED: i16 = 3;

/// Each line: `Key min..=max => mode |ctx, req, version, host, body| answer`.
/// `decoded`: `body` is the decoded request and `answer` (a future) the
/// response to encode; `optional`: the same, `None` meaning no response is
/// due (acks=0); `raw`: any version, the request undecoded, `answer` the
/// encoded frame (ApiVersions answers versions it does not serve). Ranges
/// are chosen to look like a modern Kafka to clients that infer the broker's
/// version from them (DESIGN.md, "Protocol facts").
macro_rules! routes {
    ($( $key:ident $min:literal ..= $max:literal => $mode:ident |$ctx:ident, $req:ident, $v:ident, $host:ident, $body:ident| $answer:expr; )*) => {
        pub const ROUTES: &[Route] = &[$( Route { key: ApiKey::$key, min: $min, max: $max } ),*];

        async fn route_request(
            ctx: &Node,
            mut req: Request,
            client_host: &str,
        ) -> Result<Option<Encoded>, ProtocolError> {
            let version = req.version();
            match req.api_key {
                $( ApiKey::$key if routes!(@versions $mode $min $max).contains(&version) => {
                    routes!(@serve $mode (ctx, req, version, client_host) ($ctx, $req, $v, $host, $body) $answer)
                } )*
                other => Err(ProtocolError::UnsupportedVersion { key: other as i16, version }),
            }
        }
    };
    (@versions raw $min:literal $max:literal) => { (i16::MIN..=i16::MAX) };
    (@versions $mode:ident $min:literal $max:literal) => { ($min..=$max) };
    (@serve raw ($c:ident, $r:ident, $vv:ident, $h:ident) ($ctx:ident, $req:ident, $v:ident, $host:ident, $body:ident) $answer:expr) => {{
        let ($ctx, $req, $v, $host, $body) = ($c, &$r, $vv, $h, ());
        let _ = ($ctx, $v, $host, $body);
        $answer.map(Some)
    }};
    (@serve decoded ($c:ident, $r:ident, $vv:ident, $h:ident) ($ctx:ident, $req:ident, $v:ident, $host:ident, $body:ident) $answer:expr) => {{
        let $body = $r.decode()?;
        let ($ctx, $req, $v, $host) = ($c, &$r, $vv, $h);
        let _ = ($req, $v, $host);
        Ok(Some(encode_response(&$r, &$answer.await)?))
    }};
    (@serve optional ($c:ident, $r:ident, $vv:ident, $h:ident) ($ctx:ident, $req:ident, $v:ident, $host:ident, $body:ident) $answer:expr) => {{
        let $body = $r.decode()?;
        let ($ctx, $req, $v, $host) = ($c, &$r, $vv, $h);
        let _ = ($req, $v, $host);
        match $answer.await {
            Some(resp) => Ok(Some(encode_response(&$r, &resp)?)),
            None => Ok(None),
        }
    }};
}

routes! {
    Produce 0..=11 => optional |ctx, _r, _v, _h, body| produce::handle(ctx, body);
    Fetch 4..=12 => decoded |ctx, _r, _v, _h, body| fetch::handle(ctx, body);
    ListOffsets 1..=7 => decoded |ctx, _r, v, _h, body| async { list_offsets::handle(ctx, v, body) };
    Metadata 0..=12 => decoded |ctx, _r, v, _h, body| metadata::handle(ctx, v, body);
    ApiVersions 0..=4 => raw |_c, req, _v, _h, _b| api_versions::handle(req, ROUTES);
    CreateTopics 2..=7 => decoded |ctx, _r, v, _h, body| topics::create(ctx, v, body);
    DeleteTopics 1..=6 => decoded |ctx, _r, v, _h, body| topics::delete(ctx, v, body);
    InitProducerId 0..=5 => decoded |ctx, _r, _v, _h, body| producer_id::handle(ctx, body);
    DescribeConfigs 1..=4 => decoded |ctx, _r, _v, _h, body| async { configs::describe(ctx, body) };
    CreatePartitions 0..=3 => decoded |ctx, _r, _v, _h, body| topics::create_partitions(ctx, body);
    FindCoordinator 0..=4 => decoded |ctx, _r, v, _h, body| groups::find_coordinator(ctx, v, body);
    JoinGroup 0..=9 => decoded |ctx, req, v, host, body| groups::join(ctx, v, &client_id(req), host, body);
    SyncGroup 0..=5 => decoded |ctx, _r, _v, _h, body| groups::sync(ctx, body);
    Heartbeat 0..=4 => decoded |ctx, _r, _v, _h, body| groups::heartbeat(ctx, body);
    LeaveGroup 0..=5 => decoded |ctx, _r, v, _h, body| groups::leave(ctx, v, body);
    OffsetCommit 2..=8 => decoded |ctx, _r, _v, _h, body| groups::commit(ctx, body);
    OffsetFetch 1..=8 => decoded |ctx, _r, v, _h, body| groups::fetch_offsets(ctx, v, body);
    DescribeGroups 0..=5 => decoded |ctx, _r, _v, _h, body| groups::describe(ctx, body);
    ListGroups 0..=4 => decoded |ctx, _r, _v, _h, body| groups::list(ctx, body);
    DeleteGroups 0..=2 => decoded |ctx, _r, _v, _h, body| groups::delete(ctx, body);
    OffsetDelete 0..=0 => decoded |ctx, _r, _v, _h, body| groups::delete_offsets(ctx, body);
}

fn client_id(req: &Request) -> String {
    req.header.client_id.as_ref().map(|c| c.as_str().to_string()).unwrap_or_default()
}

/// Handles one request from `client_host`; `Ok(None)` means no response is
/// due (acks=0). Counted and timed per API for `/metrics`.
pub async fn dispatch(ctx: &Node, req: Request, client_host: &str) -> Result<Option<Encoded>, ProtocolError> {
    let (api, started) = (req.api_key as i16, std::time::Instant::now());
    tracing::debug!(api_key = ?req.api_key, version = req.version(), correlation_id = req.header.correlation_id, "request");
    let reply = if req.api_key == ApiKey::Produce && req.version() < PRODUCE_MIN_SERVED {
        Err(ProtocolError::UnsupportedVersion { key: ApiKey::Produce as i16, version: req.version() })
    } else {
        route_request(ctx, req, client_host).await
    };
    ctx.metrics.request(api, started.elapsed());
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every API key is routed once, and with a range that makes sense.
    #[test]
    fn routes_are_unique_and_ordered() {
        let mut keys: Vec<i16> = ROUTES.iter().map(|r| r.key as i16).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), ROUTES.len(), "an API routed twice");
        assert!(ROUTES.iter().all(|r| 0 <= r.min && r.min <= r.max));
    }
}
