//! Tests of the fjall state store: atomic commits, read views, content hashes, and the data
//! generations behind snapshot export and import.

use super::*;
use fjall::KeyspaceCreateOptions;

fn open() -> (tempfile::TempDir, FjallStateStore) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let store = FjallStateStore::open(&db, "test", None).unwrap();
    (dir, store)
}

#[test]
fn commit_writes_data_and_marker_together() {
    let (_dir, store) = open();
    assert_eq!(store.applied().unwrap(), None);
    let mut writes = WriteSet::default();
    writes.put(b"a".to_vec(), b"1".to_vec());
    writes.put(b"b".to_vec(), b"2".to_vec());
    store
        .commit(
            writes,
            Vec::new(),
            &AppliedMark {
                index: 7,
                extra: b"x".to_vec(),
            },
        )
        .unwrap();
    let mut writes = WriteSet::default();
    writes.delete(b"a".to_vec());
    store
        .commit(
            writes,
            Vec::new(),
            &AppliedMark {
                index: 8,
                extra: Vec::new(),
            },
        )
        .unwrap();
    assert_eq!(store.get(b"a").unwrap(), None);
    assert_eq!(
        store.scan(b"", None, 10).unwrap(),
        vec![(b"b".to_vec(), b"2".to_vec())]
    );
    assert_eq!(store.applied().unwrap().map(|m| m.index), Some(8));
}

#[test]
fn an_inverted_scan_is_empty() {
    let (_dir, store) = open();
    let mut writes = WriteSet::default();
    writes.put(b"b".to_vec(), b"1".to_vec());
    store
        .commit(writes, Vec::new(), &AppliedMark::default())
        .unwrap();
    assert!(store.scan(b"c", Some(b"a"), 10).unwrap().is_empty());
    assert!(
        store
            .read_view()
            .scan(b"c", Some(b"a"), 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn read_view_ignores_later_commits() {
    let (_dir, store) = open();
    let mut writes = WriteSet::default();
    writes.put(b"k".to_vec(), b"old".to_vec());
    store
        .commit(writes, Vec::new(), &AppliedMark::default())
        .unwrap();
    let view = store.read_view();
    let mut writes = WriteSet::default();
    writes.put(b"k".to_vec(), b"new".to_vec());
    store
        .commit(writes, Vec::new(), &AppliedMark::default())
        .unwrap();
    assert_eq!(view.get(b"k").unwrap(), Some(b"old".to_vec()));
    assert_eq!(store.get(b"k").unwrap(), Some(b"new".to_vec()));
}

#[test]
fn content_hash_depends_on_content_only() {
    let (_d1, one) = open();
    let (_d2, two) = open();
    let mut a = WriteSet::default();
    a.put(b"k".to_vec(), b"v".to_vec());
    one.commit(
        a.clone(),
        Vec::new(),
        &AppliedMark {
            index: 1,
            extra: Vec::new(),
        },
    )
    .unwrap();
    two.commit(
        a,
        Vec::new(),
        &AppliedMark {
            index: 9,
            extra: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(one.content_hash().unwrap(), two.content_hash().unwrap());
    let mut b = WriteSet::default();
    b.put(b"k".to_vec(), b"w".to_vec());
    two.commit(b, Vec::new(), &AppliedMark::default()).unwrap();
    assert_ne!(one.content_hash().unwrap(), two.content_hash().unwrap());
}

fn put(store: &FjallStateStore, pairs: &[(&[u8], &[u8])], index: u64) {
    let mut writes = WriteSet::default();
    for (key, value) in pairs {
        writes.put(key.to_vec(), value.to_vec());
    }
    store
        .commit(
            writes,
            Vec::new(),
            &AppliedMark {
                index,
                extra: Vec::new(),
            },
        )
        .unwrap();
}

fn all(store: &FjallStateStore) -> Pairs {
    store.scan(b"", None, usize::MAX).unwrap()
}

fn data_keyspaces(db: &Database) -> Vec<String> {
    let mut names: Vec<String> = db
        .list_keyspace_names()
        .iter()
        .filter(|name| name.starts_with("sm.test.data"))
        .map(|name| name.to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn generation_names_parse_only_our_own() {
    assert_eq!(generation_of("kv", "sm.kv.data"), Some(0));
    assert_eq!(generation_of("kv", "sm.kv.data.7"), Some(7));
    assert_eq!(generation_of("kv", "sm.kv.meta"), None);
    assert_eq!(generation_of("kv", "sm.kv.data."), None);
    assert_eq!(generation_of("kv", "sm.kv.data.x"), None);
    assert_eq!(generation_of("kv", "sm.kv.data.+1"), None);
    assert_eq!(generation_of("kv", "sm.kv.data.data"), None);
    assert_eq!(generation_of("kv", "sm.kv.database"), None);
    assert_eq!(generation_of("kv.data", "sm.kv.data.data"), Some(0));
    for number in [0, 1, 42, u64::MAX] {
        assert_eq!(
            generation_of("kv", &data_keyspace_name("kv", number)),
            Some(number)
        );
    }
}

#[test]
fn export_is_one_instant_while_commits_go_on() {
    let (_dir, store) = open();
    put(&store, &[(b"a", b"1"), (b"b", b"2")], 2);
    let export = store.export().unwrap();
    put(&store, &[(b"a", b"changed"), (b"c", b"3")], 3);
    assert_eq!(export.applied().map(|m| m.index), Some(2));
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = export
        .pairs()
        .map(|pair| pair.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        pairs,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
}

#[test]
fn an_import_replaces_everything_at_once_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::builder(dir.path()).open().unwrap();
        let store = FjallStateStore::open(&db, "test", None).unwrap();
        put(&store, &[(b"old", b"1"), (b"shared", b"old")], 5);
        let before = store.read_view();
        let mut import = store.begin_import().unwrap();
        import.put(b"new".to_vec(), b"2".to_vec()).unwrap();
        import.put(b"shared".to_vec(), b"new".to_vec()).unwrap();
        // Nothing is visible before the flip.
        assert_eq!(store.get(b"new").unwrap(), None);
        assert_eq!(import.pairs(), 2);
        let mark = AppliedMark {
            index: 9,
            extra: b"snap".to_vec(),
        };
        import.finish(&mark).unwrap();
        assert_eq!(store.generation(), 1);
        assert_eq!(
            all(&store),
            vec![
                (b"new".to_vec(), b"2".to_vec()),
                (b"shared".to_vec(), b"new".to_vec())
            ]
        );
        assert_eq!(store.applied().unwrap(), Some(mark));
        // A view taken before the flip still reads the old generation, though it was dropped.
        assert_eq!(before.get(b"old").unwrap(), Some(b"1".to_vec()));
        assert_eq!(data_keyspaces(&db), vec!["sm.test.data.1".to_string()]);
        // Commits after the flip land in the new generation.
        put(&store, &[(b"after", b"3")], 10);
    }
    let db = Database::builder(dir.path()).open().unwrap();
    let store = FjallStateStore::open(&db, "test", None).unwrap();
    assert_eq!(store.generation(), 1);
    assert_eq!(store.get(b"after").unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.get(b"old").unwrap(), None);
    assert_eq!(store.applied().unwrap().map(|m| m.index), Some(10));
}

#[test]
fn an_abandoned_import_changes_nothing() {
    let (_dir, store) = open();
    put(&store, &[(b"k", b"v")], 1);
    let hash = store.content_hash().unwrap();
    let mut import = store.begin_import().unwrap();
    import.put(b"other".to_vec(), b"x".to_vec()).unwrap();
    drop(import);
    assert_eq!(store.generation(), 0);
    assert_eq!(store.content_hash().unwrap(), hash);
    assert_eq!(store.applied().unwrap().map(|m| m.index), Some(1));
    assert_eq!(
        data_keyspaces(store.database()),
        vec!["sm.test.data".to_string()]
    );
    // The abandoned generation's name can be used again.
    let mut import = store.begin_import().unwrap();
    import.put(b"again".to_vec(), b"y".to_vec()).unwrap();
    import.finish(&AppliedMark::default()).unwrap();
    assert_eq!(all(&store), vec![(b"again".to_vec(), b"y".to_vec())]);
}

#[test]
fn leftover_generations_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::builder(dir.path()).open().unwrap();
        let store = FjallStateStore::open(&db, "test", None).unwrap();
        put(&store, &[(b"k", b"v")], 1);
        // What a crash in the middle of an install leaves behind.
        let partial = db
            .keyspace("sm.test.data.4", KeyspaceCreateOptions::default)
            .unwrap();
        partial.insert(b"half", b"done").unwrap();
        db.persist(PersistMode::SyncAll).unwrap();
    }
    let db = Database::builder(dir.path()).open().unwrap();
    let store = FjallStateStore::open(&db, "test", None).unwrap();
    assert_eq!(data_keyspaces(&db), vec!["sm.test.data".to_string()]);
    assert_eq!(all(&store), vec![(b"k".to_vec(), b"v".to_vec())]);
    // The next import skips past every generation ever seen.
    let import = store.begin_import().unwrap();
    drop(import);
}

#[test]
fn a_missing_live_generation_is_corruption_not_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::builder(dir.path()).open().unwrap();
        let meta = db
            .keyspace("sm.test.meta", KeyspaceCreateOptions::default)
            .unwrap();
        meta.insert(GENERATION_KEY, 3u64.to_be_bytes()).unwrap();
        db.persist(PersistMode::SyncAll).unwrap();
    }
    let db = Database::builder(dir.path()).open().unwrap();
    assert!(matches!(
        FjallStateStore::open(&db, "test", None),
        Err(StoreError::Corrupt { .. })
    ));
    let meta = db
        .keyspace("sm.test.meta", KeyspaceCreateOptions::default)
        .unwrap();
    meta.insert(GENERATION_KEY, b"short").unwrap();
    assert!(matches!(
        FjallStateStore::open(&db, "test", None),
        Err(StoreError::Corrupt { .. })
    ));
}

/// Commits entry `index` as one put of `key`, with its change recorded.
fn put_recorded(store: &FjallStateStore, key: &[u8], index: u64) {
    let mut writes = WriteSet::default();
    writes.put(key.to_vec(), b"v".to_vec());
    let changes = vec![EntryChanges {
        index,
        changes: vec![super::super::Change {
            key: bytes::Bytes::copy_from_slice(key),
            value: Some(bytes::Bytes::from_static(b"v")),
        }],
    }];
    store
        .commit(
            writes,
            changes,
            &AppliedMark {
                index,
                extra: Vec::new(),
            },
        )
        .unwrap();
}

/// The indexes of every record the live history holds, whatever the horizon says.
fn recorded(store: &FjallStateStore) -> Vec<u64> {
    store
        .live()
        .changes
        .iter()
        .map(|guard| guard.key().unwrap())
        .filter(|key| key.len() == 9)
        .map(|key| super::super::change::record_index(&key).unwrap())
        .collect()
}

#[test]
fn the_history_keeps_the_last_watch_history_indexes_and_its_horizon_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let store = FjallStateStore::open(&db, "test", None).unwrap();
    assert_eq!(store.watch_hub().oldest(), 1);
    store.watch_hub().set_retain(3);
    for index in 1..=10 {
        put_recorded(&store, format!("k{index}").as_bytes(), index);
    }
    assert_eq!(store.watch_hub().oldest(), 8);
    assert_eq!(recorded(&store), vec![8, 9, 10]);
    let (records, next) = store.read_changes(1, 10, 1 << 20).unwrap();
    assert_eq!(
        records.iter().map(|r| r.index).collect::<Vec<_>>(),
        [8, 9, 10]
    );
    assert_eq!(next, 11);
    // Pages hold at least one record and stop at the byte budget.
    let (page, next) = store.read_changes(8, 10, 1).unwrap();
    assert_eq!((page.len(), next), (1, 9));
    drop(store);
    let store = FjallStateStore::open(&db, "test", None).unwrap();
    assert_eq!(store.watch_hub().oldest(), 8);
}

/// Bug: with no history kept, a commit staged its own records and then pruned only what was
/// already on disk, leaving records below the horizon that nothing would ever read or remove.
#[test]
fn bug_records_below_the_new_horizon_were_written_and_never_pruned() {
    let (_dir, store) = open();
    store.watch_hub().set_retain(0);
    for index in 1..=5 {
        put_recorded(&store, b"k", index);
    }
    assert_eq!(store.watch_hub().oldest(), 6);
    assert_eq!(recorded(&store), Vec::<u64>::new());
}

#[test]
fn lowering_the_history_prunes_a_bounded_number_of_records_per_commit() {
    let (_dir, store) = open();
    let many = super::super::change_history::PRUNE_PER_COMMIT as u64 + 10;
    for index in 1..=many {
        put_recorded(&store, b"k", index);
    }
    store.watch_hub().set_retain(1);
    put_recorded(&store, b"k", many + 1);
    let left = recorded(&store);
    // 4096 pruned, and one more for the record the commit adds: 9 old ones left, and the new.
    assert_eq!(left.len(), 10);
    assert_eq!(store.watch_hub().oldest(), left[0]);
    put_recorded(&store, b"k", many + 2);
    assert_eq!(recorded(&store), vec![many + 2]);
    assert_eq!(store.watch_hub().oldest(), many + 2);
}

#[test]
fn an_import_replaces_the_history_and_ends_every_watch() {
    let (_dir, store) = open();
    for index in 1..=3 {
        put_recorded(&store, b"k", index);
    }
    let mut watch = store
        .watch(crate::proto::WatchRequest::prefix("", None))
        .unwrap();
    let mut import = store.begin_import().unwrap();
    import.put(b"new".to_vec(), b"x".to_vec()).unwrap();
    import
        .finish(&AppliedMark {
            index: 40,
            extra: Vec::new(),
        })
        .unwrap();
    assert_eq!(store.watch_hub().oldest(), 41);
    assert_eq!(recorded(&store), Vec::<u64>::new());
    let ended = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(watch.next())
        .unwrap();
    assert_eq!(
        ended,
        crate::watch::Watched::End(crate::proto::WatchEnd::Replaced { at: 40 })
    );
    assert!(!store.database().keyspace_exists("sm.test.changes"));
}
