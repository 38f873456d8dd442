//! The HTTP edge's one error type: a status and a message, answered as
//! `{"error": "..."}`. Domain errors become statuses here and nowhere else;
//! extractors that would answer axum's plain-text rejections are wrapped so
//! bad JSON, paths and queries get the same JSON shape.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::group::membership::GroupError;
use crate::metadata::command::Rejection;
use crate::metadata::handle::MetadataError;
use crate::metadata::topic_config::TopicConfigError;
use crate::partition::append::AppendError;
use crate::partition::batch::BatchError;
use crate::partition::command::AppendRejection;
use crate::partition::handle::PartitionError;
use crate::partition::inflate::InflateError;
use crate::partition::log::ReadError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

/// The JSON shape of every error answer (for the OpenAPI document).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> Self {
        let status = match &e {
            AppendError::UnknownTopicOrPartition => StatusCode::NOT_FOUND,
            AppendError::NotLeader => StatusCode::SERVICE_UNAVAILABLE,
            AppendError::TooLarge { .. }
            | AppendError::Batch(BatchError::Inflate(InflateError::TooLarge { .. })) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            AppendError::Batch(
                BatchError::Truncated
                | BatchError::BadLength(_)
                | BatchError::UnsupportedMagic(_)
                | BatchError::CrcMismatch
                | BatchError::Empty
                | BatchError::NonSequentialOffsets { .. }
                | BatchError::Transactional
                | BatchError::Inflate(
                    InflateError::Corrupt(_) | InflateError::UnknownCodec(_) | InflateError::Malformed,
                )
                | BatchError::BadRecord { .. }
                | BatchError::TrailingBytes { .. },
            ) => StatusCode::BAD_REQUEST,
            AppendError::Partition(p) => partition_status(p),
        };
        Self::new(status, e.to_string())
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        Self::new(read_status(&e), e.to_string())
    }
}

fn read_status(e: &ReadError) -> StatusCode {
    match e {
        ReadError::OffsetOutOfRange { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        ReadError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Leadership moving, a commit not in time, or a refused idempotent write.
fn partition_status(e: &PartitionError) -> StatusCode {
    match e {
        PartitionError::NotLeader { .. } | PartitionError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        PartitionError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        PartitionError::Rejected(
            AppendRejection::OutOfOrderSequence | AppendRejection::InvalidProducerEpoch,
        ) => StatusCode::CONFLICT,
        PartitionError::Rejected(AppendRejection::Corrupt) => StatusCode::BAD_REQUEST,
        PartitionError::Read(r) => read_status(r),
    }
}

impl From<MetadataError> for ApiError {
    fn from(e: MetadataError) -> Self {
        let status = match &e {
            MetadataError::InvalidTopicName { .. }
            | MetadataError::InvalidPartitions(_)
            | MetadataError::TooManyPartitions { .. }
            | MetadataError::InvalidReplicationFactor { .. }
            | MetadataError::InvalidConfig(TopicConfigError::Unknown(_) | TopicConfigError::Invalid { .. })
            | MetadataError::Rejected(Rejection::PartitionsNotIncreasing { .. }) => StatusCode::BAD_REQUEST,
            MetadataError::Rejected(Rejection::TopicExists(_)) => StatusCode::CONFLICT,
            MetadataError::Rejected(Rejection::UnknownTopic(_)) => StatusCode::NOT_FOUND,
            MetadataError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            MetadataError::Failed(_) | MetadataError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, e.to_string())
    }
}

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> Self {
        let status = match &e {
            GroupError::InvalidGroupId => StatusCode::BAD_REQUEST,
            GroupError::GroupIdNotFound => StatusCode::NOT_FOUND,
            GroupError::NotCoordinator
            | GroupError::CoordinatorNotAvailable
            | GroupError::LoadInProgress
            | GroupError::RebalanceInProgress => StatusCode::SERVICE_UNAVAILABLE,
            // Member-protocol errors: only Kafka clients meet them.
            GroupError::UnknownMember
            | GroupError::MemberIdRequired(_)
            | GroupError::IllegalGeneration(_)
            | GroupError::InconsistentProtocol
            | GroupError::InvalidSessionTimeout(_)
            | GroupError::FencedInstanceId
            | GroupError::NonEmptyGroup
            | GroupError::SubscribedToTopic => StatusCode::CONFLICT,
        };
        Self::new(status, e.to_string())
    }
}

/// `Json<T>` whose rejections are JSON errors: 415 without a JSON content
/// type, 413 for a body past `http_max_body_bytes`, 400 for a body that does
/// not parse or does not fit `T`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON body with Content-Type: application/json",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body is larger than the limit"))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// `Query<T>` whose rejections are JSON errors (400).
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request(e.body_text()))
    }
}
