//! Tests of `inspect.rs`.
use super::*;

fn member(observer: bool) -> Member {
    Member {
        endpoint_key: [1; 32],
        addrs: Vec::new(),
        observer,
    }
}

/// Leader 1 at index 100; voters 1, 2, 3; learner 4; observer 5.
fn leader_view() -> View {
    View {
        node_id: 1,
        state: Some(RaftRole::Leader),
        term: 3,
        leader: Some(1),
        last_log: Some(100),
        committed: Some(100),
        applied: Some(100),
        members: BTreeMap::from([
            (1, member(false)),
            (2, member(false)),
            (3, member(false)),
            (4, member(false)),
            (5, member(true)),
        ]),
        voters: vec![1, 2, 3],
        matched: Some(BTreeMap::from([
            (2, Some(100)),
            (3, Some(20)),
            (4, Some(99)),
            (5, Some(100)),
        ])),
        last_ack: Some(BTreeMap::from([
            (2, Some(Duration::from_millis(50))),
            (3, Some(Duration::from_millis(40))),
            (4, Some(Duration::from_millis(40))),
            (5, Some(Duration::from_millis(40))),
        ])),
        running: true,
        ..View::default()
    }
}

const AFTER: Duration = Duration::from_secs(1);

#[test]
fn roles_come_from_the_voter_set_and_the_observer_flag() {
    let view = leader_view();
    assert_eq!(view.role(1), Some(MemberRole::Voter));
    assert_eq!(view.role(4), Some(MemberRole::Learner));
    assert_eq!(view.role(5), Some(MemberRole::Observer));
    assert_eq!(view.role(9), None);
}

#[test]
fn caught_up_learners_are_promoted_observers_never() {
    let mut view = leader_view();
    assert_eq!(promotable(&view), vec![4]);
    view.joint = true;
    assert!(promotable(&view).is_empty(), "never during a joint change");
    let mut view = leader_view();
    view.matched.as_mut().unwrap().insert(4, Some(10));
    assert!(promotable(&view).is_empty(), "a lagging learner waits");
    view.state = Some(RaftRole::Follower);
    assert!(promotable(&view).is_empty(), "only a leader promotes");
}

#[test]
fn bug_a_learner_that_never_answered_was_promoted_and_the_change_hung() {
    // A young cluster: the lag of a learner that acknowledged nothing is small, yet it has
    // not caught up; promoting it made a joint change wait on it forever (with the
    // membership lock held).
    let mut view = leader_view();
    view.last_log = Some(8);
    view.matched.as_mut().unwrap().insert(4, None);
    assert!(promotable(&view).is_empty());
    view.matched.as_mut().unwrap().insert(4, Some(8));
    assert_eq!(promotable(&view), vec![4]);
}

#[test]
fn transfer_goes_only_to_a_fresh_voter() {
    let view = leader_view();
    assert_eq!(transfer_target(&view, Some(2), AFTER), Ok(2));
    assert!(
        transfer_target(&view, Some(3), AFTER)
            .unwrap_err()
            .contains("lagging 80")
    );
    assert!(
        transfer_target(&view, Some(4), AFTER)
            .unwrap_err()
            .contains("a learner")
    );
    assert!(
        transfer_target(&view, Some(5), AFTER)
            .unwrap_err()
            .contains("an observer")
    );
    assert!(
        transfer_target(&view, Some(9), AFTER)
            .unwrap_err()
            .contains("not a member")
    );
    assert!(
        transfer_target(&view, Some(1), AFTER)
            .unwrap_err()
            .contains("already leads")
    );
    assert_eq!(
        transfer_target(&view, None, AFTER),
        Ok(2),
        "the caught-up voter"
    );

    let mut view = leader_view();
    view.last_ack
        .as_mut()
        .unwrap()
        .insert(2, Some(Duration::from_secs(5)));
    assert!(
        transfer_target(&view, Some(2), AFTER)
            .unwrap_err()
            .contains("not answered")
    );
    assert!(
        transfer_target(&view, None, AFTER).is_err(),
        "nobody fresh is left"
    );
}

#[test]
fn the_cluster_status_lists_roles_lag_and_health() {
    let mut view = leader_view();
    view.last_ack.as_mut().unwrap().insert(3, None);
    let status = cluster_status(&view, [7; 16], 2, AFTER);
    let by_id = |id| status.members.iter().find(|m| m.node_id == id).unwrap();
    assert_eq!(status.members.len(), 5);
    assert_eq!(status.members[0].node_id, 1, "voters first");
    assert_eq!(by_id(3).lag, Some(80));
    assert_eq!(by_id(3).health, MemberHealth::Unreachable);
    assert_eq!(by_id(2).health, MemberHealth::Healthy);
    assert_eq!(by_id(5).role, MemberRole::Observer);
    assert!(status.healthy, "two of three voters answer");
    assert_eq!(status.config_version, 2);

    view.last_ack.as_mut().unwrap().insert(2, None);
    assert!(
        !cluster_status(&view, [7; 16], 2, AFTER).healthy,
        "one of three is no quorum"
    );
}

#[test]
fn health_names_each_problem() {
    let view = leader_view();
    let healthy = health(&view, Duration::from_secs(3), AFTER);
    assert!(healthy.healthy, "{:?}", healthy.problems);

    let mut view = leader_view();
    view.leader = None;
    view.millis_since_quorum_ack = Some(5000);
    view.running = false;
    let sick = health(&view, Duration::ZERO, AFTER);
    assert!(!sick.healthy);
    assert_eq!(sick.problems.len(), 3, "{:?}", sick.problems);
}

#[test]
fn bug_a_leader_with_a_voter_down_reported_itself_healthy() {
    let mut view = leader_view();
    view.last_ack.as_mut().unwrap().insert(3, Some(AFTER * 2));
    let health = health(&view, Duration::from_secs(3), AFTER);
    assert!(!health.healthy);
    assert!(
        health
            .problems
            .iter()
            .any(|p| p.contains("voter 3 does not answer")),
        "{:?}",
        health.problems
    );
    assert!(
        health.problems.iter().any(|p| p.contains("quorum at risk")),
        "{:?}",
        health.problems
    );
}

#[test]
fn bug_a_one_node_cluster_reported_no_quorum_acknowledging_its_leader() {
    let mut view = leader_view();
    view.voters = vec![1];
    view.members.retain(|id, _| *id == 1);
    view.millis_since_quorum_ack = Some(60_000);
    let health = health(&view, Duration::from_secs(60), AFTER);
    assert!(health.healthy, "{:?}", health.problems);
}

/// A watch on a member cut off from the leader stayed silent: the member must know when it is
/// out of touch, as a follower (no append from its leader lately, though it still names one)
/// and as a leader (no quorum acknowledges it).
#[test]
fn a_node_is_in_touch_with_a_leader_only_while_one_leads_it_or_a_quorum_acknowledges_it() {
    let mut leader = leader_view();
    leader.millis_since_quorum_ack = Some(100);
    assert!(in_touch_with_leader(&leader, None, AFTER));
    leader.millis_since_quorum_ack = Some(5000);
    assert!(
        !in_touch_with_leader(&leader, None, AFTER),
        "a cut-off leader"
    );
    leader.millis_since_quorum_ack = None;
    assert!(
        !in_touch_with_leader(&leader, None, AFTER),
        "never acknowledged"
    );
    let mut alone = leader.clone();
    alone.voters = vec![1];
    assert!(in_touch_with_leader(&alone, None, AFTER), "the only voter");

    let mut follower = leader_view();
    follower.node_id = 2;
    follower.state = Some(RaftRole::Follower);
    follower.millis_since_quorum_ack = None;
    let recently = Some(Duration::from_millis(100));
    assert!(in_touch_with_leader(&follower, recently, AFTER));
    assert!(
        !in_touch_with_leader(&follower, Some(AFTER * 2), AFTER),
        "a cut-off follower still naming its leader"
    );
    assert!(
        !in_touch_with_leader(&follower, None, AFTER),
        "no leader heard since it started"
    );
    follower.leader = None;
    follower.state = Some(RaftRole::Candidate);
    assert!(
        !in_touch_with_leader(&follower, recently, AFTER),
        "a candidate"
    );
    let mut stopped = leader_view();
    stopped.running = false;
    assert!(
        !in_touch_with_leader(&stopped, Some(Duration::ZERO), AFTER),
        "raft stopped"
    );
}
