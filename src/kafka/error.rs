//! The one place domain errors become Kafka error codes. Every `match` is
//! exhaustive, with no `_` arm, so a new variant forces a decision; transient
//! conditions map to retriable codes (STYLE.md §3).

use kafka_protocol::ResponseError;

use crate::group::membership::GroupError;
use crate::metadata::command::Rejection;
use crate::metadata::handle::MetadataError;
use crate::partition::append::AppendError;
use crate::partition::batch::BatchError;
use crate::partition::command::AppendRejection;
use crate::partition::handle::PartitionError;
use crate::partition::inflate::InflateError;
use crate::partition::log::ReadError;

pub fn append_code(e: &AppendError) -> ResponseError {
    match e {
        AppendError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        AppendError::NotLeader => ResponseError::NotLeaderOrFollower,
        AppendError::Batch(b) => batch_code(b),
        AppendError::TooLarge { .. } => ResponseError::MessageTooLarge,
        AppendError::Partition(p) => partition_code(p),
    }
}

pub fn partition_code(e: &PartitionError) -> ResponseError {
    match e {
        PartitionError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
        PartitionError::Timeout(_) => ResponseError::RequestTimedOut,
        PartitionError::Rejected(r) => rejection_code(r),
        PartitionError::ShuttingDown => ResponseError::NotLeaderOrFollower,
        PartitionError::Read(r) => read_code(r),
    }
}

pub fn rejection_code(r: &AppendRejection) -> ResponseError {
    match r {
        AppendRejection::OutOfOrderSequence => ResponseError::OutOfOrderSequenceNumber,
        AppendRejection::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
        AppendRejection::Corrupt => ResponseError::CorruptMessage,
    }
}

pub fn read_code(e: &ReadError) -> ResponseError {
    match e {
        ReadError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        ReadError::Storage(_) => ResponseError::KafkaStorageError,
    }
}

pub fn batch_code(e: &BatchError) -> ResponseError {
    match e {
        BatchError::Truncated | BatchError::BadLength(_) | BatchError::CrcMismatch => {
            ResponseError::CorruptMessage
        }
        BatchError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
        BatchError::Empty
        | BatchError::NonSequentialOffsets { .. }
        | BatchError::Transactional
        | BatchError::BadRecord { .. }
        | BatchError::TrailingBytes { .. } => ResponseError::InvalidRecord,
        BatchError::Inflate(InflateError::TooLarge { .. }) => ResponseError::MessageTooLarge,
        BatchError::Inflate(
            InflateError::Corrupt(_) | InflateError::UnknownCodec(_) | InflateError::Malformed,
        ) => ResponseError::CorruptMessage,
    }
}

pub fn metadata_code(e: &MetadataError) -> ResponseError {
    match e {
        MetadataError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        MetadataError::Rejected(Rejection::TopicExists(_)) => ResponseError::TopicAlreadyExists,
        MetadataError::Rejected(Rejection::UnknownTopic(_)) => ResponseError::UnknownTopicOrPartition,
        MetadataError::Rejected(Rejection::PartitionsNotIncreasing { .. }) => {
            ResponseError::InvalidPartitions
        }
        MetadataError::InvalidPartitions(_) | MetadataError::TooManyPartitions { .. } => {
            ResponseError::InvalidPartitions
        }
        MetadataError::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        MetadataError::InvalidConfig(_) => ResponseError::InvalidConfig,
        // Retriable for clients: the metadata group has no reachable leader.
        MetadataError::Timeout(_) => ResponseError::RequestTimedOut,
        MetadataError::Failed(_) | MetadataError::ShuttingDown => ResponseError::NotController,
    }
}

pub fn group_code(e: &GroupError) -> ResponseError {
    match e {
        GroupError::NotCoordinator => ResponseError::NotCoordinator,
        GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        GroupError::LoadInProgress => ResponseError::CoordinatorLoadInProgress,
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::UnknownMember => ResponseError::UnknownMemberId,
        GroupError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
        GroupError::IllegalGeneration(_) => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::InconsistentProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::InvalidSessionTimeout(_) => ResponseError::InvalidSessionTimeout,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        GroupError::SubscribedToTopic => ResponseError::GroupSubscribedToTopic,
    }
}
