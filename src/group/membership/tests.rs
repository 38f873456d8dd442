use super::*;
use bytes::Bytes;
use std::time::{Duration, Instant};

fn limits() -> Limits {
    Limits {
        min_session_timeout: Duration::from_millis(100),
        max_session_timeout: Duration::from_secs(300),
        initial_rebalance_delay: Duration::ZERO,
    }
}

fn args(member: &str) -> JoinArgs {
    JoinArgs {
        member_id: member.to_string(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
        require_known_id: false,
    }
}

fn now_joined(r: Reply<JoinResult>) -> JoinResult {
    match r {
        Reply::Now(r) => r,
        Reply::Later(mut rx) => rx.try_recv().unwrap_or(Err(GroupError::CoordinatorNotAvailable)),
    }
}

#[test]
fn two_members_join_sync_and_a_leave_rebalances() {
    let (l, t0) = (limits(), Instant::now());
    let mut g = Group::new("g");
    let a = now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
    assert_eq!((a.generation, a.leader.as_str(), a.members.len()), (1, "a", 1));
    let (r, stable) = g.sync("a", None, 1, vec![("a".into(), Bytes::from_static(b"all"))], t0);
    assert!(stable);
    assert!(matches!(r, Reply::Later(_)));
    assert_eq!(g.state, GroupState::Stable);

    // b joins: a learns of the rebalance by heartbeat, then rejoins.
    let rb = g.join(args(""), &l, t0, || "b".into());
    assert!(matches!(rb, Reply::Later(_)));
    assert_eq!(g.heartbeat("a", None, 1, t0), Err(GroupError::RebalanceInProgress));
    let ra = g.join(args("a"), &l, t0, || unreachable!());
    let (a, b) = (now_joined(ra).unwrap(), now_joined(rb).unwrap());
    assert_eq!((a.generation, b.generation), (2, 2));
    assert_eq!(a.members.len(), 2, "the leader gets every subscription");
    assert!(b.members.is_empty());
    let (rb, _) = g.sync("b", None, 2, vec![], t0);
    let (_, stable) = g.sync("a", None, 2, vec![("a".into(), "p0".into()), ("b".into(), "p1".into())], t0);
    assert!(stable);
    let Reply::Later(mut rx) = rb else { panic!("follower waits for the leader") };
    assert_eq!(rx.try_recv().unwrap().unwrap(), Bytes::from_static(b"p1"));

    assert_eq!(g.heartbeat("b", None, 1, t0), Err(GroupError::IllegalGeneration(1)));
    assert_eq!(g.heartbeat("zz", None, 2, t0), Err(GroupError::UnknownMember));
    assert_eq!(g.leave("b", None, &l, t0), Ok(false));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(g.leave("a", None, &l, t0), Ok(true));
    assert_eq!(g.state, GroupState::Empty);
}

#[test]
fn v4_joiners_get_an_id_first() {
    let mut g = Group::new("g");
    let mut a = args("");
    a.require_known_id = true;
    let r = now_joined(g.join(a.clone(), &limits(), Instant::now(), || "m-1".into()));
    assert_eq!(r, Err(GroupError::MemberIdRequired("m-1".into())));
    a.member_id = "m-1".into();
    assert_eq!(now_joined(g.join(a, &limits(), Instant::now(), || unreachable!())).unwrap().member_id, "m-1");
}

#[test]
fn a_silent_member_expires_and_the_group_empties() {
    let (l, t0) = (limits(), Instant::now());
    let mut g = Group::new("g");
    now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
    g.sync("a", None, 1, vec![], t0);
    assert!(!g.tick(&l, t0 + Duration::from_secs(5)));
    assert!(g.tick(&l, t0 + Duration::from_secs(11)));
    assert_eq!((g.state, g.generation), (GroupState::Empty, 2));
}

#[test]
fn members_that_do_not_rejoin_within_the_rebalance_timeout_are_dropped() {
    let (l, t0) = (limits(), Instant::now());
    let mut g = Group::new("g");
    now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
    g.sync("a", None, 1, vec![], t0);
    // b joins; a keeps heartbeating but never rejoins (a stuck poll loop).
    let rb = g.join(args(""), &l, t0, || "b".into());
    for s in 1..30 {
        assert_eq!(
            g.heartbeat("a", None, 1, t0 + Duration::from_secs(s)),
            Err(GroupError::RebalanceInProgress)
        );
        g.tick(&l, t0 + Duration::from_secs(s));
    }
    g.tick(&l, t0 + Duration::from_secs(31));
    let b = now_joined(rb).unwrap();
    assert_eq!((b.generation, b.leader.as_str()), (2, "b"));
    assert!(!g.members.contains_key("a"));
}

#[test]
fn commits_check_membership() {
    let (l, t0) = (limits(), Instant::now());
    let mut g = Group::new("g");
    assert_eq!(g.check_commit("", None, -1), Ok(()));
    now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
    assert_eq!(g.check_commit("", None, -1), Err(GroupError::IllegalGeneration(-1)));
    let _ = g.sync("a", None, 1, vec![("a".into(), Bytes::from_static(b"all"))], t0);
    assert_eq!(g.check_commit("a", None, 7), Err(GroupError::IllegalGeneration(7)));
    assert_eq!(g.check_commit("a", None, 1), Ok(()));
}

#[test]
fn a_member_commits_while_a_rebalance_is_prepared_but_not_while_it_completes() {
    let (l, t0) = (limits(), Instant::now());
    let mut g = Group::new("g");
    now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
    let _ = g.sync("a", None, 1, vec![("a".into(), Bytes::from_static(b"all"))], t0);
    // b joins: a still holds its partitions and commits them before rejoining.
    let rb = g.join(args(""), &l, t0, || "b".into());
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(g.check_commit("a", None, 1), Ok(()));
    assert_eq!(g.check_commit("z", None, 1), Err(GroupError::UnknownMember));
    let _ = g.join(args("a"), &l, t0, || unreachable!());
    now_joined(rb).unwrap();
    // Generation 2 is formed; until the leader's assignment, nobody commits.
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!(g.check_commit("a", None, 2), Err(GroupError::RebalanceInProgress));
    assert_eq!(g.check_commit("a", None, 1), Err(GroupError::RebalanceInProgress));
}

#[test]
fn a_static_member_takes_its_place_back() {
    let (l, t0) = (limits(), Instant::now());
    let mut g = Group::new("g");
    let mut a = args("");
    a.instance_id = Some("i-1".into());
    now_joined(g.join(a.clone(), &l, t0, || "a1".into())).unwrap();
    g.sync("a1", Some("i-1"), 1, vec![("a1".into(), "x".into())], t0);
    let again = now_joined(g.join(a, &l, t0, || "a2".into()));
    // The leader rejoining rebalances; the new id is the one in the group.
    assert!(again.is_ok());
    assert!(g.members.contains_key("a2") && !g.members.contains_key("a1"));
    assert_eq!(g.leader.as_deref(), Some("a2"));
    assert_eq!(g.heartbeat("a1", Some("i-1"), g.generation, t0), Err(GroupError::UnknownMember));
}
