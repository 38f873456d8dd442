//! The group requests a coordinator serves: join, sync, heartbeat, leave,
//! offset commit and fetch, describe, list, delete.

use std::time::Instant;

use bytes::Bytes;

use super::GroupCoordinator;
use crate::group::membership::{Committed, Group, GroupError, GroupState, JoinArgs, JoinResult, SyncResult};
use crate::group::records::{Entry, OffsetValue};

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct Description {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

/// One member of a described group.
#[derive(Debug, Clone)]
pub struct DescribedMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's subscription for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listing {
    pub id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// An offset to commit for one partition.
pub type OffsetCommit = (String, i32, Committed);

impl GroupCoordinator {
    pub async fn join(&self, group: &str, args: JoinArgs) -> JoinResult {
        let shard = self.shard(group).await?;
        let client_id = args.client_id.clone();
        let reply = {
            let mut groups = shard.groups.lock().await;
            let g = groups.entry(group.to_string()).or_insert_with(|| Group::new(group));
            g.join(args, &self.limits, Instant::now(), || format!("{client_id}-{}", uuid::Uuid::new_v4()))
        };
        reply.answer().await
    }

    pub async fn sync(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let shard = self.shard(group).await?;
        let (reply, settled) = {
            let mut groups = shard.groups.lock().await;
            let g = groups.get_mut(group).ok_or(GroupError::UnknownMember)?;
            let (reply, stable) = g.sync(member_id, instance_id, generation, assignments, Instant::now());
            (reply, stable.then(|| g.snapshot()))
        };
        if let Some(value) = settled {
            self.persist_group(&shard, group, value).await;
        }
        reply.answer().await
    }

    pub async fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let shard = self.shard(group).await?;
        let mut groups = shard.groups.lock().await;
        let g = groups.get_mut(group).ok_or(GroupError::UnknownMember)?;
        g.heartbeat(member_id, instance_id, generation, Instant::now())
    }

    /// LeaveGroup for each (member id, instance id); one result each.
    pub async fn leave(
        &self,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let shard = self.shard(group).await?;
        let (results, emptied) = {
            let mut groups = shard.groups.lock().await;
            let Some(g) = groups.get_mut(group) else {
                return Ok(members.iter().map(|_| Err(GroupError::UnknownMember)).collect());
            };
            let now = Instant::now();
            let mut emptied = false;
            let results = members
                .iter()
                .map(|(id, inst)| g.leave(id, inst.as_deref(), &self.limits, now).map(|e| emptied |= e))
                .collect();
            (results, emptied.then(|| g.snapshot()))
        };
        if let Some(value) = emptied {
            self.persist_group(&shard, group, value).await;
        }
        Ok(results)
    }

    /// OffsetCommit of offsets whose partitions exist.
    pub async fn commit(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<OffsetCommit>,
    ) -> Result<(), GroupError> {
        let shard = self.shard(group).await?;
        {
            let groups = shard.groups.lock().await;
            match groups.get(group) {
                Some(g) => g.check_commit(member_id, instance_id, generation)?,
                None if generation < 0 => {}
                None => return Err(GroupError::IllegalGeneration(generation)),
            }
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let entries: Vec<Entry> = offsets
            .iter()
            .map(|(topic, partition, c)| Entry::Offset {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
                value: Some(OffsetValue::from(c)),
            })
            .collect();
        self.write_then(&shard, &entries, |groups| {
            let g = groups.entry(group.to_string()).or_insert_with(|| Group::new(group));
            for (topic, partition, c) in offsets {
                g.offsets.insert((topic, partition), c);
            }
        })
        .await
    }

    /// Committed offsets of `group`: of the given partitions, or all.
    pub async fn offsets(
        &self,
        group: &str,
        wanted: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<(String, i32, Option<Committed>)>, GroupError> {
        let shard = self.shard(group).await?;
        let groups = shard.groups.lock().await;
        let g = groups.get(group);
        Ok(match wanted {
            Some(list) => list
                .into_iter()
                .map(|(t, p)| {
                    let c = g.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned());
                    (t, p, c)
                })
                .collect(),
            None => g
                .map(|g| g.offsets.iter().map(|((t, p), c)| (t.clone(), *p, Some(c.clone()))).collect())
                .unwrap_or_default(),
        })
    }

    pub async fn describe(&self, group: &str) -> Result<Description, GroupError> {
        let shard = self.shard(group).await?;
        let groups = shard.groups.lock().await;
        let Some(g) = groups.get(group).filter(|g| !g.is_vacant()) else {
            return Ok(Description {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        let members = g
            .describe_members()
            .into_iter()
            .map(|(m, subscription)| DescribedMember {
                id: m.info.id.clone(),
                instance_id: m.info.instance_id.clone(),
                client_id: m.info.client_id.clone(),
                client_host: m.info.client_host.clone(),
                subscription,
                assignment: m.info.assignment.clone(),
            })
            .collect();
        Ok(Description {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: g.protocol.clone().unwrap_or_default(),
            members,
        })
    }

    /// Every group this broker coordinates.
    pub async fn list(&self) -> Vec<Listing> {
        let shards = self.ready_shards();
        let mut out = Vec::new();
        for shard in shards.iter().filter(|s| self.is_current(s)) {
            let groups = shard.groups.lock().await;
            out.extend(groups.values().filter(|g| !g.is_vacant()).map(|g| Listing {
                id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            }));
        }
        out.sort();
        out
    }

    /// DeleteGroups for one group: only a group without members.
    pub async fn delete(&self, group: &str) -> Result<(), GroupError> {
        let shard = self.shard(group).await?;
        let entries = {
            let groups = shard.groups.lock().await;
            let g = groups.get(group).filter(|g| !g.is_vacant()).ok_or(GroupError::GroupIdNotFound)?;
            if !g.members.is_empty() {
                return Err(GroupError::NonEmptyGroup);
            }
            let mut entries: Vec<Entry> = g
                .offsets
                .keys()
                .map(|(t, p)| Entry::Offset {
                    group: group.to_string(),
                    topic: t.clone(),
                    partition: *p,
                    value: None,
                })
                .collect();
            entries.push(Entry::Group { group: group.to_string(), value: None });
            entries
        };
        self.write_then(&shard, &entries, |groups| {
            groups.remove(group);
        })
        .await
    }

    /// OffsetDelete: drops committed offsets of topics no member consumes.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<(String, i32, Result<(), GroupError>)>, GroupError> {
        let shard = self.shard(group).await?;
        let (results, entries) = {
            let groups = shard.groups.lock().await;
            let g = groups.get(group).filter(|g| !g.is_vacant()).ok_or(GroupError::GroupIdNotFound)?;
            let results: Vec<(String, i32, Result<(), GroupError>)> = partitions
                .into_iter()
                .map(|(t, p)| {
                    let r = if g.consumes(&t) { Err(GroupError::SubscribedToTopic) } else { Ok(()) };
                    (t, p, r)
                })
                .collect();
            let entries: Vec<Entry> = results
                .iter()
                .filter(|(t, p, r)| r.is_ok() && g.offsets.contains_key(&(t.clone(), *p)))
                .map(|(t, p, _)| Entry::Offset {
                    group: group.to_string(),
                    topic: t.clone(),
                    partition: *p,
                    value: None,
                })
                .collect();
            (results, entries)
        };
        if !entries.is_empty() {
            self.write_then(&shard, &entries, |groups| {
                if let Some(g) = groups.get_mut(group) {
                    for e in &entries {
                        if let Entry::Offset { topic, partition, .. } = e {
                            g.offsets.remove(&(topic.clone(), *partition));
                        }
                    }
                }
            })
            .await?;
        }
        Ok(results)
    }
}
