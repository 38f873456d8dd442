//! Consumer-group APIs over the wire against one in-process broker: the
//! coordinator, a join/sync/heartbeat round, committed offsets across a
//! restart and a compaction, batched leaves, offset deletion, and the error
//! codes clients rely on.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::ResponseError;

use crate::common::ops::{create_topic, list_offset};
use crate::common::{sb, wait_until, Client, TestBroker};

fn small(c: &mut raftka::config::Config) {
    // A handful of offsets partitions keeps start-up quick.
    c.offsets_topic_num_partitions = 3;
}

async fn coordinator_ready(addr: SocketAddr, group: &str) {
    wait_until(Duration::from_secs(10), "a group coordinator", || async move {
        find(&mut Client::connect(addr).await, group).await.error_code == 0
    })
    .await;
}

async fn find(c: &mut Client, group: &str) -> FindCoordinatorResponse {
    let req = FindCoordinatorRequest::default().with_key(sb(group));
    c.send(ApiKey::FindCoordinator, 3, &req).await
}

async fn join(c: &mut Client, group: &str, member: &str, session_ms: i32) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(sb(member))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            // ConsumerProtocolSubscription v0: topics ["t"], no user data.
            .with_metadata(Bytes::from_static(b"\0\0\0\0\0\x01\0\x01t\xff\xff\xff\xff"))]);
    c.send(ApiKey::JoinGroup, 5, &req).await
}

async fn heartbeat(c: &mut Client, group: &str, member: &str, generation: i32) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_generation_id(generation);
    let resp: HeartbeatResponse = c.send(ApiKey::Heartbeat, 3, &req).await;
    resp.error_code
}

async fn commit(c: &mut Client, group: &str, member: &str, generation: i32, topic: &str, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(sb(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let resp: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 7, &req).await;
    resp.topics[0].partitions[0].error_code
}

async fn committed(c: &mut Client, group: &str, topic: &str) -> i64 {
    let req = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
            .with_name(TopicName(sb(topic)))
            .with_partition_indexes(vec![0])]))]);
    let resp: OffsetFetchResponse = c.send(ApiKey::OffsetFetch, 8, &req).await;
    assert_eq!(resp.groups[0].error_code, 0);
    resp.groups[0].topics[0].partitions[0].committed_offset
}

#[tokio::test]
async fn a_member_joins_syncs_commits_and_offsets_survive_a_restart() {
    let mut b = TestBroker::start_with(small).await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(create_topic(&mut c, "t", 1, &[]).await, 0);

    let found = find(&mut c, "g").await;
    assert_eq!(found.error_code, 0, "{found:?}");
    assert_eq!(found.port, i32::from(b.kafka_addr().port()));

    // v4+: the first join hands out a member id, the second joins with it.
    let first = join(&mut c, "g", "", 10_000).await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let member = first.member_id.as_str().to_string();
    assert!(!member.is_empty());
    let joined = join(&mut c, "g", &member, 10_000).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!((joined.generation_id, joined.leader.as_str()), (1, member.as_str()));
    assert_eq!(joined.members.len(), 1);

    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_member_id(sb(&member))
        .with_generation_id(1)
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(sb(&member))
            .with_assignment(Bytes::from_static(b"mine"))]);
    let synced: SyncGroupResponse = c.send(ApiKey::SyncGroup, 3, &sync).await;
    assert_eq!((synced.error_code, synced.assignment.as_ref()), (0, &b"mine"[..]));

    assert_eq!(heartbeat(&mut c, "g", &member, 1).await, 0);
    assert_eq!(heartbeat(&mut c, "g", &member, 7).await, ResponseError::IllegalGeneration.code());
    assert_eq!(heartbeat(&mut c, "g", "nobody", 1).await, ResponseError::UnknownMemberId.code());
    assert_eq!(heartbeat(&mut c, "no-such-group", "x", 1).await, ResponseError::UnknownMemberId.code());

    assert_eq!(commit(&mut c, "g", &member, 1, "t", 42).await, 0);
    assert_eq!(commit(&mut c, "g", &member, 9, "t", 43).await, ResponseError::IllegalGeneration.code());
    assert_eq!(
        commit(&mut c, "g", &member, 1, "nope", 1).await,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(committed(&mut c, "g", "t").await, 42);
    assert_eq!(committed(&mut c, "unknown-group", "t").await, -1);

    let described: DescribeGroupsResponse = c
        .send(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("g"))]),
        )
        .await;
    let g = &described.groups[0];
    assert_eq!((g.group_state.as_str(), g.protocol_data.as_str(), g.members.len()), ("Stable", "range", 1));
    assert_eq!(g.members[0].member_assignment.as_ref(), b"mine");

    let listed: ListGroupsResponse = c.send(ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
    assert!(listed.groups.iter().any(|l| l.group_id.as_str() == "g" && l.group_state.as_str() == "Stable"));

    let delete =
        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("g")), GroupId(sb("ghost"))]);
    let deleted: DeleteGroupsResponse = c.send(ApiKey::DeleteGroups, 2, &delete).await;
    assert_eq!(deleted.results[0].error_code, ResponseError::NonEmptyGroup.code());
    assert_eq!(deleted.results[1].error_code, ResponseError::GroupIdNotFound.code());

    // A manual (generation -1) commit in another group, then a restart.
    assert_eq!(commit(&mut c, "manual", "", -1, "t", 7).await, 0);
    drop(c);
    b.restart().await;
    coordinator_ready(b.kafka_addr(), "g").await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(committed(&mut c, "g", "t").await, 42);
    assert_eq!(committed(&mut c, "manual", "t").await, 7);
    // The restored member is still known (its session restarts on load).
    assert_eq!(heartbeat(&mut c, "g", &member, 1).await, 0);
    b.stop().await;
}

async fn sync(c: &mut Client, group: &str, member: &str, generation: i32, assign: bool) -> i16 {
    let assignments = if assign {
        vec![SyncGroupRequestAssignment::default().with_member_id(sb(member)).with_assignment(Bytes::new())]
    } else {
        vec![]
    };
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_generation_id(generation)
        .with_assignments(assignments);
    let resp: SyncGroupResponse = c.send(ApiKey::SyncGroup, 3, &req).await;
    resp.error_code
}

/// Kafka's rule, which clients build on: a member commits what it holds
/// while a rebalance is being prepared (clients commit before rejoining), and
/// nobody commits between the new generation's join and its assignment.
#[tokio::test]
async fn a_member_commits_before_rejoining_a_rebalance() {
    let b = TestBroker::start_with(small).await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(create_topic(&mut c, "t", 1, &[]).await, 0);
    coordinator_ready(b.kafka_addr(), "g").await;
    let a = join(&mut c, "g", "", 10_000).await.member_id.as_str().to_string();
    assert_eq!(join(&mut c, "g", &a, 10_000).await.generation_id, 1);
    assert_eq!(sync(&mut c, "g", &a, 1, true).await, 0);

    // A second member's join waits for `a` to rejoin: the group prepares a rebalance.
    let addr = b.kafka_addr();
    let second = tokio::spawn(async move {
        let mut c2 = Client::connect(addr).await;
        let id = join(&mut c2, "g", "", 10_000).await.member_id.as_str().to_string();
        (join(&mut c2, "g", &id, 10_000).await, c2)
    });
    wait_until(Duration::from_secs(10), "the group preparing a rebalance", || {
        let c = Client::connect(addr);
        let a = a.clone();
        async move { heartbeat(&mut c.await, "g", &a, 1).await == ResponseError::RebalanceInProgress.code() }
    })
    .await;
    assert_eq!(commit(&mut c, "g", &a, 1, "t", 5).await, 0, "a commit before rejoining");
    assert_eq!(committed(&mut c, "g", "t").await, 5);

    let rejoined = join(&mut c, "g", &a, 10_000).await;
    assert_eq!((rejoined.error_code, rejoined.generation_id), (0, 2));
    let (joined, _c2) = second.await.expect("the second member's join");
    assert_eq!((joined.error_code, joined.generation_id), (0, 2));
    // Joined, not yet assigned: commits wait for the assignment.
    assert_eq!(commit(&mut c, "g", &a, 2, "t", 6).await, ResponseError::RebalanceInProgress.code());
    let leader = rejoined.leader.as_str() == a;
    assert_eq!(sync(&mut c, "g", &a, 2, leader).await, 0);
    assert_eq!(commit(&mut c, "g", &a, 2, "t", 6).await, 0);
    assert_eq!(committed(&mut c, "g", "t").await, 6);
    b.stop().await;
}

#[tokio::test]
async fn bad_group_requests_get_kafka_errors() {
    let b = TestBroker::start_with(small).await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(find(&mut c, "").await.error_code, ResponseError::InvalidGroupId.code());
    assert_eq!(find(&mut c, "g").await.error_code, 0);
    // Session timeout below the broker's minimum.
    assert_eq!(join(&mut c, "g", "", 10).await.error_code, ResponseError::InvalidSessionTimeout.code());
    // A made-up member id is not a member.
    assert_eq!(join(&mut c, "g", "made-up", 10_000).await.error_code, ResponseError::UnknownMemberId.code());
    // A sync for a group that does not exist.
    let sync = SyncGroupRequest::default().with_group_id(GroupId(sb("ghost"))).with_member_id(sb("m"));
    let synced: SyncGroupResponse = c.send(ApiKey::SyncGroup, 3, &sync).await;
    assert_eq!(synced.error_code, ResponseError::UnknownMemberId.code());
    // Batched FindCoordinator (v4) answers each key.
    let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![sb("a"), sb(""), sb("b")]);
    let resp: FindCoordinatorResponse = c.send(ApiKey::FindCoordinator, 4, &req).await;
    let codes: Vec<i16> = resp.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, vec![0, ResponseError::InvalidGroupId.code(), 0]);
    b.stop().await;
}

#[tokio::test]
async fn the_offsets_partition_is_compacted_and_replays_from_its_checkpoint() {
    let mut b = TestBroker::start_with(|c| {
        c.offsets_topic_num_partitions = 1;
        c.offsets_compaction_min_records = 20;
    })
    .await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(create_topic(&mut c, "t", 1, &[]).await, 0);
    assert_eq!(find(&mut c, "compacted").await.error_code, 0);
    for offset in 1..=60 {
        assert_eq!(commit(&mut c, "compacted", "", -1, "t", offset).await, 0);
    }
    // A checkpoint holds the one live key; the records before it are dropped.
    let addr = b.kafka_addr();
    wait_until(Duration::from_secs(10), "the log start to move past the old commits", || async move {
        let mut c = Client::connect(addr).await;
        list_offset(&mut c, "__consumer_offsets", 0, -2).await.1 > 0
    })
    .await;
    assert_eq!(committed(&mut c, "compacted", "t").await, 60);
    // Commits after the checkpoint land on top of it, and a restart replays both.
    assert_eq!(commit(&mut c, "compacted", "", -1, "t", 61).await, 0);
    drop(c);
    b.restart().await;
    coordinator_ready(b.kafka_addr(), "compacted").await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(committed(&mut c, "compacted", "t").await, 61);
    b.stop().await;
}

async fn offset_delete(c: &mut Client, group: &str, topic: &str) -> (i16, i16) {
    let req = OffsetDeleteRequest::default().with_group_id(GroupId(sb(group))).with_topics(vec![
        OffsetDeleteRequestTopic::default()
            .with_name(TopicName(sb(topic)))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
    ]);
    let resp: OffsetDeleteResponse = c.send(ApiKey::OffsetDelete, 0, &req).await;
    (resp.error_code, resp.topics.first().map_or(-1, |t| t.partitions[0].error_code))
}

#[tokio::test]
async fn members_leave_in_a_batch_and_unconsumed_offsets_can_be_deleted() {
    let b = TestBroker::start_with(small).await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(create_topic(&mut c, "t", 1, &[]).await, 0);
    assert_eq!(find(&mut c, "g").await.error_code, 0);
    let member = join(&mut c, "g", "", 10_000).await.member_id.as_str().to_string();
    assert_eq!(join(&mut c, "g", &member, 10_000).await.error_code, 0);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_member_id(sb(&member))
        .with_generation_id(1);
    let synced: SyncGroupResponse = c.send(ApiKey::SyncGroup, 3, &sync).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(commit(&mut c, "g", &member, 1, "t", 5).await, 0);

    // The stable group subscribes to "t" (see `join`): its offsets stay.
    assert_eq!(offset_delete(&mut c, "g", "t").await, (0, ResponseError::GroupSubscribedToTopic.code()));

    let leave = LeaveGroupRequest::default().with_group_id(GroupId(sb("g"))).with_members(vec![
        MemberIdentity::default().with_member_id(sb(&member)),
        MemberIdentity::default().with_member_id(sb("ghost")),
    ]);
    let left: LeaveGroupResponse = c.send(ApiKey::LeaveGroup, 4, &leave).await;
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, ResponseError::UnknownMemberId.code()]);
    let described: DescribeGroupsResponse = c
        .send(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("g"))]),
        )
        .await;
    assert_eq!(described.groups[0].group_state.as_str(), "Empty");

    assert_eq!(offset_delete(&mut c, "g", "t").await, (0, 0));
    assert_eq!(committed(&mut c, "g", "t").await, -1);
    assert_eq!(offset_delete(&mut c, "g", "nope").await, (0, ResponseError::UnknownTopicOrPartition.code()));
    assert_eq!(offset_delete(&mut c, "ghost-group", "t").await.0, ResponseError::GroupIdNotFound.code());
    b.stop().await;
}
