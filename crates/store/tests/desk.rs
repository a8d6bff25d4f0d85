//! The front desk's state lives in the store (issue 14): resident and room
//! numbers, and the guard's checks, survive a restart and are seen at once
//! by a second process; a check is decided once; erasure takes the numbers.

mod common;

use chrono::{Duration, Utc};
use common::*;
use facegate_store::*;

async fn resident_numbers_are_unique_found_by_room_and_erased_with_the_person(db: Db) {
    let w = world(&db.store).await;
    let (a, _) = consenting_person(&db.store, &w, "Zhang San").await;
    let (b, _) = consenting_person(&db.store, &w, "Li Si").await;
    let ra = db
        .store
        .set_resident(a.id, None, Some("3-1502"), "t")
        .await
        .unwrap();
    assert_eq!(ra.resident_no.len(), 6, "{ra:?}");
    assert!(ra.resident_no.chars().all(|c| c.is_ascii_digit()));
    // A number already taken is refused.
    let e = db
        .store
        .set_resident(b.id, Some(&ra.resident_no), None, "t")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    db.store
        .set_resident(b.id, Some("42"), Some("3-1502"), "t")
        .await
        .unwrap();
    // Seen by a second handle (a restart, another instance).
    let other = db.reopen().await;
    let by_no = other.residents_by_number("42").await.unwrap();
    assert_eq!(by_no.len(), 1);
    assert_eq!(by_no[0].person_id, b.id);
    let by_room = other.residents_by_number("31502").await.unwrap();
    assert_eq!(by_room.len(), 2, "{by_room:?}");
    // Not digits, or too long: refused.
    assert!(db
        .store
        .set_resident(a.id, Some("12a"), None, "t")
        .await
        .is_err());
    assert!(db
        .store
        .set_resident(a.id, Some("123456789"), None, "t")
        .await
        .is_err());
    // Correcting keeps the number unless a new one is given.
    let again = db
        .store
        .set_resident(a.id, None, Some("4-101"), "t")
        .await
        .unwrap();
    assert_eq!(again.resident_no, ra.resident_no);
    assert_eq!(other.residents_by_number("31502").await.unwrap().len(), 1);
    // Erasure takes the numbers too (they identify the person).
    db.store.erase_person(b.id, "t").await.unwrap();
    assert!(other.resident(b.id).await.unwrap().is_none());
    assert!(other.residents_by_number("42").await.unwrap().is_empty());
    let recs = db.store.audit_records(1, 1000).await.unwrap();
    assert!(recs.iter().any(|r| r.event == "resident_numbered"));
    assert!(recs.iter().any(|r| r.event == "resident_corrected"));
}
both!(resident_numbers_are_unique_found_by_room_and_erased_with_the_person);

async fn a_staffed_check_is_decided_once_and_expires(db: Db) {
    let w = world(&db.store).await;
    let (p, _) = consenting_person(&db.store, &w, "Wang Wu").await;
    let c = db
        .store
        .open_staffed_check(
            p.id,
            w.scenario,
            Some("gate-north-1"),
            Utc::now() + Duration::minutes(10),
            "device:k1",
        )
        .await
        .unwrap();
    assert_eq!(c.status, "pending");
    assert_eq!(c.code.len(), 4);
    let other = db.reopen().await;
    let pending = other.pending_staffed_checks(Utc::now()).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, c.id);
    // Decided once, across processes; the decision, its verification
    // event and its receipt code are one write.
    let event = |passed: bool| NewVerificationEvent {
        person_id: Some(p.id),
        scenario_id: w.scenario,
        device_id: Some(w.device),
        method: "staffed_check".into(),
        result: if passed { "match" } else { "no_match" }.into(),
        score: None,
        threshold: None,
        refusal_rule: None,
        score_model: None,
    };
    let (yes, no) = (event(true), event(false));
    let decision = |e, passed, guard, actor| StaffedDecision {
        passed,
        guard_name: guard,
        how: "known to me",
        now: Utc::now(),
        actor,
        event: e,
        grants: passed.then_some("enter"),
    };
    // A crash after the claim and before the receipt (here, a panic while
    // signing) commits nothing: the check is still pending, no event.
    let (s2, e2, cid) = (other.clone(), yes.clone(), c.id);
    let crashed = tokio::spawn(async move {
        let d = StaffedDecision {
            passed: true,
            guard_name: "Guard Zhao",
            how: "",
            now: Utc::now(),
            actor: "operator:o1",
            event: &e2,
            grants: None,
        };
        s2.decide_staffed_check(cid, &d, |_| panic!("the process dies while signing"))
            .await
    })
    .await;
    assert!(crashed.is_err());
    assert_eq!(other.staffed_check(c.id).await.unwrap().status, "pending");
    assert!(other
        .verification_events(p.id, 10)
        .await
        .unwrap()
        .is_empty());
    let mut signed = None;
    let ev = other
        .decide_staffed_check(
            c.id,
            &decision(&yes, true, "Guard Zhao", "operator:o1"),
            |ev| {
                signed = Some(ev.id);
                format!("FG1-{}", ev.id)
            },
        )
        .await
        .unwrap()
        .expect("decided");
    assert_eq!(signed, Some(ev.id), "the code is made of the event written");
    assert!(db
        .store
        .decide_staffed_check(
            c.id,
            &decision(&no, false, "Guard Qian", "operator:o2"),
            |_| { unreachable!("no second decision is signed") }
        )
        .await
        .unwrap()
        .is_none());
    let receipt = ev.id;
    let events = other.verification_events(p.id, 10).await.unwrap();
    assert_eq!(events.len(), 1, "one event: the first decision's");
    assert_eq!(events[0].id, receipt);
    assert_eq!(events[0].event.result, "match");
    let got = other.staffed_check(c.id).await.unwrap();
    assert_eq!(got.status, "decided");
    assert_eq!(got.passed, Some(true));
    assert_eq!(got.guard_name.as_deref(), Some("Guard Zhao"));
    assert_eq!(got.receipt_id, Some(receipt));
    assert_eq!(got.receipt_code, Some(format!("FG1-{receipt}")));
    assert_eq!(got.grants.as_deref(), Some("enter"));
    assert!(other
        .pending_staffed_checks(Utc::now())
        .await
        .unwrap()
        .is_empty());
    // An expired check cannot be decided.
    let old = db
        .store
        .open_staffed_check(
            p.id,
            w.scenario,
            None,
            Utc::now() - Duration::seconds(1),
            "t",
        )
        .await
        .unwrap();
    assert!(db
        .store
        .pending_staffed_checks(Utc::now())
        .await
        .unwrap()
        .is_empty());
    assert!(db
        .store
        .decide_staffed_check(old.id, &decision(&yes, true, "Guard Zhao", "t"), |_| {
            unreachable!("an expired check is not signed")
        })
        .await
        .unwrap()
        .is_none());
    let recs = db.store.audit_records(1, 1000).await.unwrap();
    assert_eq!(
        recs.iter()
            .filter(|r| r.event == "staffed_check_decided")
            .count(),
        1
    );
    assert!(db.store.verify_chain().await.unwrap().is_intact());
}
both!(a_staffed_check_is_decided_once_and_expires);

/// The console's counts come from one grouped query: generated events at
/// random instants (across hour, day and month boundaries), with random
/// methods, results and refusal rules, are counted by the store exactly as
/// counting them one by one does, for random start instants, on both
/// backends.
async fn check_counts_match_counting_each_event(db: Db) {
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;
    let w = world(&db.store).await;
    use sqlx::Connection;
    let mut raw = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let base = chrono::DateTime::parse_from_rfc3339("2026-02-27T15:30:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let methods = ["face", "pin", "card"];
    let results = ["match", "no_match", "refused"];
    let rules = [None, Some("R8"), Some("R17")];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let mut events = Vec::new();
    for _ in 0..120 {
        let at = base + Duration::seconds(rng.gen_range(-3 * 86_400..3 * 86_400));
        let (m, r, rule) = (
            methods[rng.gen_range(0..3)],
            results[rng.gen_range(0..3)],
            rules[rng.gen_range(0..3)],
        );
        let e = db
            .store
            .record_verification(
                &NewVerificationEvent {
                    person_id: None,
                    scenario_id: w.scenario,
                    device_id: Some(w.device),
                    method: m.into(),
                    result: r.into(),
                    score: None,
                    threshold: None,
                    refusal_rule: rule.map(str::to_string),
                    score_model: None,
                },
                "t",
            )
            .await
            .unwrap();
        // The event's instant as if it had happened then.
        sqlx::query("UPDATE verification_events SET at = $1 WHERE id = $2")
            .bind(at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            .bind(e.id.to_string())
            .execute(&mut raw)
            .await
            .unwrap();
        events.push((at, m, r, rule));
    }
    use chrono::Timelike;
    for _ in 0..25 {
        let from = base + Duration::seconds(rng.gen_range(-4 * 86_400..3 * 86_400));
        let mut want: BTreeMap<_, u64> = BTreeMap::new();
        for (at, m, r, rule) in &events {
            if *at >= from {
                let hour = at
                    .with_minute(0)
                    .and_then(|t| t.with_second(0))
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap();
                *want
                    .entry((hour, m.to_string(), r.to_string(), rule.map(str::to_string)))
                    .or_default() += 1;
            }
        }
        let got: BTreeMap<_, u64> = db
            .store
            .check_counts(from)
            .await
            .unwrap()
            .into_iter()
            .map(|c| ((c.hour, c.method, c.result, c.refusal_rule), c.count))
            .collect();
        assert_eq!(got, want, "from {from}");
    }
}
both!(check_counts_match_counting_each_event);
