use bytes::Bytes;

use super::*;

fn tag(client: u8, seq: u64, acked: u64) -> SessionTag {
    SessionTag {
        client: [client; 16],
        seq,
        acked,
    }
}

fn ok(text: &'static str) -> ApplyResponse {
    ApplyResponse::Ok(Bytes::from_static(text.as_bytes()))
}

#[test]
fn a_write_applies_once_and_a_repeat_returns_the_first_result_and_index() {
    let mut sessions = Sessions::default();
    assert_eq!(sessions.admit(&tag(1, 1, 1), 10), Admission::Apply);
    sessions.record(&tag(1, 1, 1), &ok("first"));
    assert_eq!(sessions.admit(&tag(1, 1, 1), 12), Admission::Repeat);
    assert_eq!(
        sessions.answer(&tag(1, 1, 1)),
        ApplyResponse::Repeated {
            index: 10,
            first: Box::new(ok("first")),
        }
    );
    // Another client's write with the same number is its own.
    assert_eq!(sessions.admit(&tag(2, 1, 1), 13), Admission::Apply);
    assert_eq!(sessions.len(), 2);
}

#[test]
fn a_failed_write_is_not_retried_into_success() {
    let mut sessions = Sessions::default();
    assert_eq!(sessions.admit(&tag(1, 5, 1), 10), Admission::Apply);
    let failed = ApplyResponse::Failed("no such key".into());
    sessions.record(&tag(1, 5, 1), &failed);
    assert_eq!(sessions.admit(&tag(1, 5, 1), 11), Admission::Repeat);
    assert_eq!(
        sessions.answer(&tag(1, 5, 1)),
        ApplyResponse::Repeated {
            index: 10,
            first: Box::new(failed),
        }
    );
}

#[test]
fn acknowledged_writes_are_forgotten_and_never_applied_again() {
    let mut sessions = Sessions::default();
    for seq in 1..=3 {
        assert_eq!(sessions.admit(&tag(1, seq, 1), 10 + seq), Admission::Apply);
        sessions.record(&tag(1, seq, 1), &ok("r"));
    }
    // Write 4 says 1..=3 were answered.
    assert_eq!(sessions.admit(&tag(1, 4, 4), 20), Admission::Apply);
    assert_eq!(sessions.by_client[&[1; 16]].writes.len(), 1);
    assert_eq!(sessions.admit(&tag(1, 2, 1), 21), Admission::Repeat);
    let ApplyResponse::Failed(message) = sessions.answer(&tag(1, 2, 1)) else {
        panic!("expected a refusal");
    };
    assert!(message.contains("already answered"), "{message}");
}

#[test]
fn too_many_writes_in_flight_forget_the_oldest_without_applying_them_twice() {
    let mut sessions = Sessions::default();
    let writes = MAX_WRITES_PER_SESSION as u64 + 3;
    for seq in 1..=writes {
        assert_eq!(sessions.admit(&tag(1, seq, 1), seq), Admission::Apply);
    }
    assert_eq!(
        sessions.by_client[&[1; 16]].writes.len(),
        MAX_WRITES_PER_SESSION
    );
    assert_eq!(sessions.admit(&tag(1, 2, 1), 1000), Admission::Repeat);
    let ApplyResponse::Failed(message) = sessions.answer(&tag(1, 2, 1)) else {
        panic!("expected a refusal");
    };
    assert!(message.contains("forgotten"), "{message}");
    assert_eq!(sessions.admit(&tag(1, writes, 1), 1001), Admission::Repeat);
}

#[test]
fn a_large_result_is_recorded_as_applied_without_its_bytes() {
    let mut sessions = Sessions::default();
    sessions.admit(&tag(1, 1, 1), 7);
    let big = ApplyResponse::Ok(Bytes::from(vec![0; MAX_KEPT_RESULT + 1]));
    sessions.record(&tag(1, 1, 1), &big);
    assert_eq!(sessions.admit(&tag(1, 1, 1), 8), Admission::Repeat);
    let ApplyResponse::Repeated { index: 7, first } = sessions.answer(&tag(1, 1, 1)) else {
        panic!("expected a repeat");
    };
    let ApplyResponse::Failed(message) = *first else {
        panic!("expected an explanation");
    };
    assert!(message.contains("applied at index 7"), "{message}");
}

#[test]
fn sessions_expire_by_log_index_and_the_idlest_makes_room() {
    let mut sessions = Sessions::default();
    sessions.admit(&tag(1, 1, 1), 1);
    // Still remembered just inside the idle window, forgotten just past it.
    assert_eq!(
        sessions.admit(&tag(1, 1, 1), 1 + SESSION_IDLE_ENTRIES),
        Admission::Repeat
    );
    assert_eq!(
        sessions.admit(&tag(1, 1, 1), 2 + 2 * SESSION_IDLE_ENTRIES),
        Admission::Apply
    );

    let mut full = Sessions::default();
    for client in 0..MAX_SESSIONS {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(client as u64).to_be_bytes());
        let tag = SessionTag {
            client: id,
            seq: 1,
            acked: 1,
        };
        full.admit(&tag, 100 + client as u64);
    }
    assert_eq!(full.len(), MAX_SESSIONS);
    full.admit(&tag(0xff, 1, 1), 100_000);
    assert_eq!(full.len(), MAX_SESSIONS);
    assert!(
        !full.by_client.contains_key(&[0; 16]),
        "the session idle longest (index 100) made room"
    );
}

#[test]
fn the_same_entries_decide_the_same_whatever_the_table_saw_before_in_other_sessions() {
    // Two replicas whose tables differ only in sessions these entries do not touch decide alike.
    let entries = [tag(1, 1, 1), tag(1, 2, 1), tag(1, 1, 1), tag(1, 3, 2)];
    let mut one = Sessions::default();
    let mut two = Sessions::default();
    two.admit(&tag(9, 1, 1), 1);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(
            one.admit(entry, 10 + i as u64),
            two.admit(entry, 10 + i as u64)
        );
    }
}

#[test]
fn kept_result_bytes_are_bounded_over_all_sessions_and_freed_on_acknowledgement() {
    let mut sessions = Sessions::default();
    let result = ApplyResponse::Ok(Bytes::from(vec![1; MAX_KEPT_RESULT]));
    let per_session = MAX_WRITES_PER_SESSION as u64;
    let clients = (MAX_KEPT_BYTES / MAX_KEPT_RESULT) as u64 / per_session;
    let mut index = 0;
    for client in 0..clients {
        for seq in 1..=per_session {
            index += 1;
            let write = tag(client as u8, seq, 1);
            assert_eq!(sessions.admit(&write, index), Admission::Apply);
            sessions.record(&write, &result);
        }
    }
    assert_eq!(sessions.kept_bytes, MAX_KEPT_BYTES);
    let over = tag(0xee, 1, 1);
    sessions.admit(&over, index + 1);
    sessions.record(&over, &result);
    let ApplyResponse::Repeated { first, .. } = sessions.answer(&over) else {
        panic!("expected a repeat");
    };
    assert!(
        matches!(*first, ApplyResponse::Failed(_)),
        "past the cap the result is not kept"
    );
    assert_eq!(sessions.kept_bytes, MAX_KEPT_BYTES);
    // Acknowledging two writes of the first session frees their bytes.
    sessions.admit(&tag(0, per_session + 1, 3), index + 2);
    assert_eq!(sessions.kept_bytes, MAX_KEPT_BYTES - 2 * MAX_KEPT_RESULT);
}

#[test]
fn the_table_at_its_bounds_fits_a_snapshot_header() {
    let mut sessions = Sessions::default();
    let result = ApplyResponse::Ok(Bytes::from(vec![1; MAX_KEPT_RESULT]));
    for client in 0..MAX_SESSIONS {
        let mut id = [0xffu8; 16];
        id[..8].copy_from_slice(&(client as u64).to_be_bytes());
        for seq in 1..=MAX_WRITES_PER_SESSION as u64 {
            let tag = SessionTag {
                client: id,
                seq,
                acked: 1,
            };
            sessions.admit(&tag, u64::MAX / 2 + seq);
            sessions.record(&tag, &result);
        }
    }
    let encoded = postcard::to_allocvec(&sessions).expect("encode");
    assert!(
        encoded.len() < (1 << 20) - (64 << 10),
        "{} bytes leave too little of the 1 MiB header",
        encoded.len()
    );
}
