//! State hashes are exact: two state machines fed the same log in differently sized apply calls
//! keep views of the same check points and hash them alike, and the state at a check point is the
//! state after exactly that entry, not after the end of the call that contained it.

use iroh_raft::proto::{ClusterConfig, LogPayload};
use openraft::EntryPayload;
use openraft::type_config::alias::EntryOf;

use crate::support::{C, apply, blank_entry, bounded, command_entry, kv_log, log_id, open, put};

/// A membership entry, a configuration checking every 4 entries, then `puts` commands (with a
/// blank entry among them, which may sit at a check point too).
fn log(puts: u64) -> Vec<EntryOf<C>> {
    let mut entries = kv_log(0);
    entries.push(EntryOf::<C> {
        log_id: log_id(1, 2),
        payload: EntryPayload::Normal(LogPayload::Config(ClusterConfig {
            version: 1,
            check_every: 4,
            ..ClusterConfig::default()
        })),
    });
    for i in 0..puts {
        let index = 3 + i;
        entries.push(if index == 12 {
            blank_entry(1, index)
        } else {
            command_entry(1, index, put(&format!("k{}", i % 5), &format!("v{i}")))
        });
    }
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_at_check_points_do_not_depend_on_how_entries_were_grouped() {
    bounded(120, async {
        let entries = log(20); // indexes 1..=22: check points 4, 8, 12, 16, 20
        let (dir_a, dir_b, dir_c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let (_, mut one_call) = open(dir_a.path());
        let (_, mut uneven) = open(dir_b.path());
        let (_, mut prefix) = open(dir_c.path());
        apply(&mut one_call, entries.clone()).await;
        let mut rest = &entries[..];
        for size in [3usize, 1, 6, 2, 7, 5] {
            let (now, later) = rest.split_at(size.min(rest.len()));
            apply(&mut uneven, now.to_vec()).await;
            rest = later;
        }
        assert!(rest.is_empty());
        // The third stops right after check point 16: its end state is the state at 16.
        apply(&mut prefix, entries[..16].to_vec()).await;

        assert_eq!(one_call.capture_points(), vec![12, 16, 20, 22]);
        assert_eq!(uneven.capture_points(), vec![12, 16, 20, 22]);
        for index in [12, 16, 20, 22] {
            let a = one_call
                .state_hash(index)
                .await
                .expect("hash")
                .expect("held");
            let b = uneven.state_hash(index).await.expect("hash").expect("held");
            assert_eq!(a, b, "index {index}");
        }
        let at_16 = prefix.state_hash(16).await.expect("hash").expect("held");
        assert_eq!(
            one_call.state_hash(16).await.expect("hash"),
            Some(at_16),
            "the view at 16 is the state after entry 16, even inside one call to 22"
        );
        assert_ne!(
            one_call.state_hash(20).await.expect("hash"),
            Some(at_16),
            "later entries change the state"
        );
        assert_eq!(
            one_call.state_hash(8).await.expect("hash"),
            None,
            "only the last 3 check points"
        );
        assert_eq!(
            one_call.state_hash(21).await.expect("hash"),
            None,
            "not a capture point"
        );
    })
    .await;
}
