//! InitProducerId: hands out producer ids for idempotent producers from the
//! node's pool (`metadata::producer_ids`).
//! Transactions are not supported: a transactional id is refused.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::kafka::error::metadata_code;
use crate::node::Node;

pub async fn handle(ctx: &Node, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default();
    if req.transactional_id.as_ref().is_some_and(|t| !t.0.is_empty()) {
        tracing::info!("InitProducerId with a transactional id refused: transactions are not supported");
        return resp.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    // KIP-360: an idempotent producer re-initialising keeps its id with a
    // bumped epoch.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return resp.with_producer_id(req.producer_id).with_producer_epoch(req.producer_epoch + 1);
    }
    match ctx.producer_ids.next().await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate a producer id");
            resp.with_error_code(
                match metadata_code(&e) {
                    ResponseError::NotController => ResponseError::CoordinatorNotAvailable,
                    other => other,
                }
                .code(),
            )
        }
    }
}
