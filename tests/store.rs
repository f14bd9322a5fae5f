//! The store test suite, run against SQLite and the real PostgreSQL (each test in its own
//! database file or schema, so they run in parallel).

mod db;

use priorauth::store::*;

fn req(id: &str, reference: &str, status: &str, at: i64) -> NewRequest {
    NewRequest {
        tenant: "default".into(),
        id: id.into(),
        submitter_reference: reference.into(),
        payer: "SYNPLAN01".into(),
        service_type: "PT".into(),
        urgency: "standard".into(),
        estimated_cost_cents: 12_345,
        status: status.into(),
        previous_id: None,
        original_id: None,
        link_kind: None,
        body: "{\"synthetic\":true}".into(),
        created_by: "tester".into(),
        at,
    }
}

fn event(id: &str, action: &str, at: i64) -> Write {
    Write::Event(NewEvent {
        request_id: Some(id.into()),
        at,
        actor: "tester".into(),
        action: action.into(),
        from_status: None,
        to_status: None,
        reason: None,
        detail: None,
    })
}

macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let url = super::db::sqlite_url();
                super::$body(&url).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(url) = super::db::pg_url().await {
                    super::$body(&url).await;
                }
            }
        }
    };
}

async fn migrations_apply_once(url: &str) {
    let s = Store::open(url).await.unwrap();
    assert_eq!(s.migrations().await.unwrap(), vec![1, 2, 3, 4, 5, 6]);
    s.close().await;
    // Opening again applies nothing twice and keeps the data.
    let s = Store::open(url).await.unwrap();
    s.apply(&[Write::InsertRequest(req("a", "R1", "draft", 1))])
        .await
        .unwrap();
    s.close().await;
    let s = Store::open(url).await.unwrap();
    assert_eq!(s.migrations().await.unwrap(), vec![1, 2, 3, 4, 5, 6]);
    assert!(s.request("a").await.unwrap().is_some());
}
on_both!(migrations, migrations_apply_once);

async fn writes_are_all_or_nothing(url: &str) {
    let s = Store::open(url).await.unwrap();
    s.apply(&[
        Write::InsertRequest(req("a", "R1", "draft", 10)),
        event("a", "created", 10),
    ])
    .await
    .unwrap();
    // A change whose expected status is stale fails, and the event before it is not kept.
    let stale = RequestChange {
        id: "a".into(),
        expected_status: "ready".into(),
        status: Some("submitted".into()),
        at: 11,
        ..Default::default()
    };
    let e = s
        .apply(&[event("a", "should_vanish", 11), Write::ChangeRequest(stale)])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let events = s.events("a").await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["created"]
    );
    // The right expected status applies, with a new body version.
    let ok = RequestChange {
        id: "a".into(),
        expected_status: "draft".into(),
        status: Some("internal_review".into()),
        approval_step: Some(Some(0)),
        new_body: Some("{\"synthetic\":2}".into()),
        version_by: Some("tester".into()),
        at: 12,
        ..Default::default()
    };
    s.apply(&[Write::ChangeRequest(ok)]).await.unwrap();
    let r = s.request("a").await.unwrap().unwrap();
    assert_eq!(r.status, "internal_review");
    assert_eq!(r.version, 2);
    assert_eq!(r.approval_step, Some(0));
    assert_eq!(r.updated_at, 12);
    assert_eq!(
        s.request_body("a", None).await.unwrap().as_deref(),
        Some("{\"synthetic\":2}")
    );
    assert_eq!(
        s.request_body("a", Some(1)).await.unwrap().as_deref(),
        Some("{\"synthetic\":true}")
    );
    assert_eq!(s.versions("a").await.unwrap().len(), 2);
    // Clearing the step.
    let clear = RequestChange {
        id: "a".into(),
        expected_status: "internal_review".into(),
        approval_step: Some(None),
        at: 13,
        ..Default::default()
    };
    s.apply(&[Write::ChangeRequest(clear)]).await.unwrap();
    let r = s.request("a").await.unwrap().unwrap();
    assert_eq!(r.approval_step, None);
    // The strict compare-and-set: a change at the same instant still moves `updated_at`, so a
    // writer that read the row before it fails.
    let strict = |seen: i64| {
        Write::ChangeRequest(RequestChange {
            id: "a".into(),
            expected_status: "internal_review".into(),
            expected_updated_at: Some(seen),
            facts: Some(("P2".into(), "A9".into(), "expedited".into(), 99)),
            at: 13,
            ..Default::default()
        })
    };
    s.apply(&[strict(r.updated_at)]).await.unwrap();
    let e = s.apply(&[strict(r.updated_at)]).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let r2 = s.request("a").await.unwrap().unwrap();
    assert!(r2.updated_at > r.updated_at);
    assert_eq!(
        (
            r2.payer.as_str(),
            r2.service_type.as_str(),
            r2.urgency.as_str(),
            r2.estimated_cost_cents
        ),
        ("P2", "A9", "expedited", 99)
    );
}
on_both!(atomic_writes, writes_are_all_or_nothing);

async fn event_log_is_append_only(url: &str) {
    let s = Store::open(url).await.unwrap();
    s.apply(&[
        Write::InsertRequest(req("a", "R1", "draft", 1)),
        event("a", "created", 1),
    ])
    .await
    .unwrap();
    s.close().await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let upd = sqlx::query("UPDATE events SET actor = 'someone else'")
        .execute(&pool)
        .await;
    assert!(upd.is_err(), "an event was rewritten");
    let del = sqlx::query("DELETE FROM events").execute(&pool).await;
    assert!(del.is_err(), "an event was deleted");
    pool.close().await;
    let s = Store::open(url).await.unwrap();
    assert_eq!(s.events("a").await.unwrap()[0].actor, "tester");
}
on_both!(append_only, event_log_is_append_only);

async fn control_numbers_count_per_partner(url: &str) {
    let s = Store::open(url).await.unwrap();
    let mut v = vec![];
    for _ in 0..3 {
        v.push(
            s.next_control_number("ZZ:A", "interchange", 999_999_999)
                .await
                .unwrap(),
        );
    }
    assert_eq!(v, [1, 2, 3]);
    assert_eq!(
        s.next_control_number("ZZ:B", "interchange", 999_999_999)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.next_control_number("ZZ:A", "group", 999_999_999)
            .await
            .unwrap(),
        1
    );
    // Wraps after the maximum.
    assert_eq!(
        s.next_control_number("ZZ:C", "transaction", 2)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.next_control_number("ZZ:C", "transaction", 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.next_control_number("ZZ:C", "transaction", 2)
            .await
            .unwrap(),
        1
    );
    // Durable: another open continues.
    s.close().await;
    let s = Store::open(url).await.unwrap();
    assert_eq!(
        s.next_control_number("ZZ:A", "interchange", 999_999_999)
            .await
            .unwrap(),
        4
    );
    // Concurrent tasks never share a number.
    let mut tasks = vec![];
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = vec![];
            for _ in 0..50 {
                got.push(
                    s.next_control_number("ZZ:D", "interchange", 999_999_999)
                        .await
                        .unwrap(),
                );
            }
            got
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=200).collect::<Vec<i64>>());
}
on_both!(control_numbers, control_numbers_count_per_partner);

async fn control_numbers_through_the_writer_trait(url: &str) {
    use priorauth::x12::writer::{ControlKind, ControlNumbers};
    let s = Store::open(url).await.unwrap();
    let c = StoreControlNumbers::new(s.clone(), tokio::runtime::Handle::current());
    let a = c.next(ControlKind::Interchange, "ZZ:P").unwrap();
    let b = c.next(ControlKind::Interchange, "ZZ:P").unwrap();
    assert_eq!((a, b), (1, 2));
    assert_eq!(c.next(ControlKind::Transaction, "ZZ:P").unwrap(), 1);
}
on_both!(writer_trait, control_numbers_through_the_writer_trait);

async fn raw_bytes_are_kept_and_deduplicated(url: &str) {
    let s = Store::open(url).await.unwrap();
    let raw: Vec<u8> = (0..=255u8).chain(b"ISA*00*~".iter().copied()).collect();
    let first = s.receive("hash1", "x12", "file.x12", &raw).await.unwrap();
    assert!(first.new);
    assert_eq!(first.state, "received");
    let again = s.receive("hash1", "x12", "file.x12", &raw).await.unwrap();
    assert!(!again.new);
    assert_eq!(again.id, first.id);
    assert_eq!(s.inbound_raw(first.id).await.unwrap().unwrap(), raw);
    assert_eq!(s.unfinished_inbound().await.unwrap().len(), 1);
    // Progress moves only from where it is.
    let step = |from, to, state: &str| Write::InboundProgress {
        message_id: first.id,
        from_applied: from,
        to_applied: to,
        total: 2,
        state: state.into(),
        at: 5,
    };
    s.apply(&[step(0, 1, "applying")]).await.unwrap();
    let e = s.apply(&[step(0, 1, "applying")]).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)));
    s.apply(&[
        Write::Item(NewItem {
            message_id: first.id,
            position: 1,
            kind: "278_response".into(),
            request_id: None,
            outcome: "unmatched".into(),
            reference: Some("R9".into()),
            detail: Some("no record".into()),
            body: None,
            at: 5,
        }),
        step(1, 2, "applied"),
    ])
    .await
    .unwrap();
    assert!(s.unfinished_inbound().await.unwrap().is_empty());
    let items = s.items_with_outcome("unmatched").await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].reference.as_deref(), Some("R9"));
}
on_both!(inbound, raw_bytes_are_kept_and_deduplicated);

async fn decisions_services_alerts_keys(url: &str) {
    let s = Store::open(url).await.unwrap();
    s.apply(&[Write::InsertRequest(req("a", "R1", "submitted", 100))])
        .await
        .unwrap();
    let line = |n: i64, units: i64| NewLine {
        line: n,
        status: "approved".into(),
        action: Some("A1".into()),
        procedure_code: Some("97110".into()),
        unit: Some("visits".into()),
        authorized_units: Some(units),
        start_date: Some("2027-01-04".into()),
        end_date: Some("2027-03-31".into()),
        certification_number: Some("AUTH1".into()),
    };
    let decision = |units, key: &str| NewDecision {
        key: key.into(),
        request_id: "a".into(),
        inbound_message_id: None,
        inbound_position: None,
        status: "approved".into(),
        action: Some("A1".into()),
        certification_number: Some("AUTH1".into()),
        reason: None,
        start_date: Some("2027-01-04".into()),
        end_date: Some("2027-03-31".into()),
        body: "{}".into(),
        decided_at: 200,
        lines: vec![line(1, units), line(2, 100)],
    };
    s.apply(&[Write::Decision(decision(1200, "d1"))])
        .await
        .unwrap();
    s.apply(&[Write::Decision(decision(1500, "d2"))])
        .await
        .unwrap();
    // A key is unique.
    assert!(
        s.apply(&[Write::Decision(decision(1, "d2"))])
            .await
            .is_err()
    );
    let lines = s.current_lines("a").await.unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0].authorized_units,
        Some(1500),
        "the latest decision counts"
    );
    assert_eq!(s.decisions("a").await.unwrap().len(), 2);

    let svc = NewService {
        request_id: "a".into(),
        line: Some(1),
        procedure_code: "97110".into(),
        units: 100,
        service_date: "2027-01-05".into(),
        provider: None,
        state: "recorded".into(),
        flag: None,
        corrects_id: None,
        actor: "tester".into(),
        at: 300,
    };
    let ids = s
        .apply(&[Write::Service(svc.clone()), Write::Service(svc)])
        .await
        .unwrap();
    let Applied::Id(first) = ids[0] else {
        panic!("{ids:?}")
    };
    s.apply(&[Write::VoidService {
        id: first,
        reason: "entered twice".into(),
        at: 301,
    }])
    .await
    .unwrap();
    let again = s
        .apply(&[Write::VoidService {
            id: first,
            reason: "again".into(),
            at: 302,
        }])
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)));
    let svcs = s.services("a").await.unwrap();
    assert_eq!(svcs.iter().filter(|x| x.state == "voided").count(), 1);
    assert_eq!(
        s.service(first)
            .await
            .unwrap()
            .unwrap()
            .void_reason
            .as_deref(),
        Some("entered twice")
    );

    let alert = || {
        Write::Alert(NewAlert {
            request_id: Some("a".into()),
            kind: "renewal_units".into(),
            dedupe_key: "renewal_units:a:1".into(),
            message: "2 of 12 left".into(),
            due: None,
            at: 400,
        })
    };
    assert_eq!(s.apply(&[alert()]).await.unwrap(), [Applied::Rows(1)]);
    assert_eq!(s.apply(&[alert()]).await.unwrap(), [Applied::Rows(0)]);
    assert_eq!(s.open_alerts().await.unwrap().len(), 1);
    s.apply(&[Write::ResolveAlert {
        dedupe_key: "renewal_units:a:1".into(),
        at: 401,
    }])
    .await
    .unwrap();
    assert!(s.open_alerts().await.unwrap().is_empty());

    let key = || Write::Idempotency {
        key: "submit:a".into(),
        result: "ok".into(),
        at: 1,
    };
    s.apply(&[key()]).await.unwrap();
    assert!(matches!(
        s.apply(&[key()]).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(
        s.idempotent_result("submit:a").await.unwrap().as_deref(),
        Some("ok")
    );

    s.apply(&[
        Write::SetActor {
            name: "bob".into(),
            role: "supervisor".into(),
        },
        Write::SetActor {
            name: "bob".into(),
            role: "finance".into(),
        },
        Write::SetSetting {
            key: "policy".into(),
            value: "{}".into(),
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        s.actor_role("bob").await.unwrap().as_deref(),
        Some("finance")
    );
    assert_eq!(s.setting("policy").await.unwrap().as_deref(), Some("{}"));
}
on_both!(ledger_rows, decisions_services_alerts_keys);

async fn queries_and_counts(url: &str) {
    let s = Store::open(url).await.unwrap();
    s.apply(&[
        Write::InsertRequest(req("a", "R1", "draft", 100)),
        Write::InsertRequest(req("b", "R1", "denied", 200)),
        Write::InsertRequest(NewRequest {
            previous_id: Some("b".into()),
            original_id: Some("b".into()),
            link_kind: Some("resubmission".into()),
            ..req("c", "R2", "draft", 300)
        }),
    ])
    .await
    .unwrap();
    let by_ref = s.requests_by_reference("R1").await.unwrap();
    assert_eq!(
        by_ref.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    let drafts = s
        .list_requests(&RequestFilter {
            status: Some("draft".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(drafts.len(), 2);
    let window = s
        .list_requests(&RequestFilter {
            created_from: Some(150),
            created_to: Some(300),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(s.followers("b").await.unwrap()[0].id, "c");
    let counts = s.request_counts(0, 1000).await.unwrap();
    let draft = counts.iter().find(|c| c.status == "draft").unwrap();
    assert_eq!((draft.count, draft.payer.as_str()), (2, "SYNPLAN01"));
    assert_eq!(s.requests_in(&["draft", "denied"]).await.unwrap().len(), 3);
    // A record that refers to a missing one is refused (foreign keys on both backends).
    let e = s
        .apply(&[Write::InsertRequest(NewRequest {
            previous_id: Some("nope".into()),
            ..req("d", "R3", "draft", 400)
        })])
        .await;
    assert!(e.is_err());
}
on_both!(queries, queries_and_counts);

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    let e = Store::open("mysql://x").await.err().unwrap().to_string();
    assert!(e.contains("unsupported database URL"), "{e}");
    let e = Store::open("postgres://nobody:secret@127.0.0.1:1/none")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(!e.contains("secret"), "a password leaked: {e}");
}
