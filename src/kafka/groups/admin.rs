//! DescribeGroups, ListGroups and DeleteGroups.

use futures::future::join_all;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse,
};

use crate::kafka::error::group_code;
use crate::kafka::str_bytes;
use crate::node::Node;

use super::code;

pub async fn describe(ctx: &Node, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = join_all(req.groups.into_iter().map(|g| async move {
        let described = DescribedGroup::default().with_group_id(g.clone());
        match ctx.groups.describe(g.as_str()).await {
            Err(e) => described.with_error_code(group_code(&e).code()),
            Ok(d) => described
                .with_group_state(str_bytes(d.state.name()))
                .with_protocol_type(str_bytes(&d.protocol_type))
                .with_protocol_data(str_bytes(&d.protocol))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(str_bytes(&m.id))
                                .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                                .with_client_id(str_bytes(&m.client_id))
                                .with_client_host(str_bytes(&m.client_host))
                                .with_member_metadata(m.subscription)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                ),
        }
    }))
    .await;
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn list(ctx: &Node, req: ListGroupsRequest) -> ListGroupsResponse {
    let filter: Vec<String> = req.states_filter.iter().map(|s| s.as_str().to_lowercase()).collect();
    let groups = ctx
        .groups
        .list()
        .await
        .into_iter()
        .filter(|g| filter.is_empty() || filter.contains(&g.state.name().to_lowercase()))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&g.id)))
                .with_protocol_type(str_bytes(&g.protocol_type))
                .with_group_state(str_bytes(g.state.name()))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn delete(ctx: &Node, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = join_all(req.groups_names.into_iter().map(|g| async move {
        let r = ctx.groups.delete(g.as_str()).await;
        DeletableGroupResult::default().with_group_id(g).with_error_code(code(r))
    }))
    .await;
    DeleteGroupsResponse::default().with_results(results)
}
