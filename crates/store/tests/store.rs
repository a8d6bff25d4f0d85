//! The store suite: runs on SQLite always and on PostgreSQL when
//! FACEGATE_TEST_DATABASE_URL is set (scripts/test.sh starts a server).

mod common;

use chrono::{Duration, Utc};
use common::*;
use facegate_store::*;
use serde_json::json;
use sqlx::Connection;

async fn raw(db: &Db) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&db.url).await.unwrap()
}

/// The fault `verify_chain` names; panics with `what` when it finds none.
async fn chain_fault(db: &Db, what: &str) -> ChainFault {
    db.store.verify_chain().await.unwrap().fault.expect(what)
}

/// Write `r` into the audit log behind the store's back, as an attacker
/// with database access would.
async fn insert_record(c: &mut sqlx::AnyConnection, r: &AuditRecord) {
    sqlx::query("INSERT INTO audit_log (seq, at, event, actor, subject, scenario_id, device_id, details, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)")
        .bind(r.seq).bind(&r.at).bind(&r.event).bind(&r.actor).bind(r.subject.clone()).bind(r.scenario_id.clone())
        .bind(r.device_id.clone()).bind(&r.details).bind(&r.prev_hash).bind(&r.hash)
        .execute(c).await.unwrap();
}

async fn exec(db: &Db, sql: &str) {
    let mut c = raw(db).await;
    sqlx::Executor::execute(&mut c, sql).await.unwrap();
    c.close().await.unwrap();
}

async fn enrolled_world(db: &Db, people: usize) -> (World, Vec<(Person, Consent)>) {
    let w = world(&db.store).await;
    let bio: [u8; 32] = rand::random();
    let mut v = Vec::new();
    for i in 0..people {
        let (p, c) = consenting_person(&db.store, &w, &format!("Person {i}")).await;
        let t = f32_bytes(&template_f32(i as u64));
        db.store
            .enrol(&enrolment(&w, p.id, seal(&bio, &t)), "test")
            .await
            .unwrap();
        v.push((p, c));
    }
    (w, v)
}

async fn r7_enrolment_without_consent_is_refused(db: Db) {
    let w = world(&db.store).await;
    let p = db
        .store
        .add_person(
            w.processor,
            &PersonIdentity {
                display_name: "No Consent".into(),
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    let err = db
        .store
        .enrol(&enrolment(&w, p.id, vec![1; 100]), "test")
        .await
        .unwrap_err();
    match err {
        StoreError::Refused(r) => {
            assert_eq!(r.rule, facegate_policy::RuleId::R7);
            assert_eq!(r.article, "Art. 6");
            assert!(!r.message_zh.is_empty() && !r.message_en.is_empty());
        }
        e => panic!("expected an R7 refusal, got {e}"),
    }
    // Nothing was written: no template, headcount 0, chain intact.
    let rep = db.store.check_integrity().await.unwrap();
    assert_eq!((rep.templates, rep.headcount_stored), (0, 0));
    assert!(rep.is_ok(), "{rep:?}");
    // A transmission consent is not a processing consent.
    db.store
        .give_consent(
            &NewConsent {
                person_id: p.id,
                scenario_id: w.scenario,
                kind: ConsentKind::Transmission,
                notice_id: None,
                given_by: ConsentGiver::Subject,
                channel: "kiosk".into(),
                evidence: "ui".into(),
            },
            "test",
        )
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .enrol(&enrolment(&w, p.id, vec![1; 100]), "test")
            .await,
        Err(StoreError::Refused(_))
    ));
}
both!(r7_enrolment_without_consent_is_refused);

async fn r7_consent_record_holds_scope_notice_time_channel_evidence(db: Db) {
    let w = world(&db.store).await;
    let notice = db
        .store
        .publish_notice(
            &NewNotice {
                scenario_id: w.scenario,
                version: 1,
                language: "zh-CN".into(),
                body: "我们将处理您的人脸信息……".into(),
            },
            "test",
        )
        .await
        .unwrap();
    let p = db
        .store
        .add_person(
            w.processor,
            &PersonIdentity {
                display_name: "Li".into(),
                ..Default::default()
            },
            "t",
        )
        .await
        .unwrap();
    let c = db
        .store
        .give_consent(
            &NewConsent {
                person_id: p.id,
                scenario_id: w.scenario,
                kind: ConsentKind::Processing,
                notice_id: Some(notice.id),
                given_by: ConsentGiver::Subject,
                channel: "kiosk:north".into(),
                evidence: "sha256:abcd".into(),
            },
            "t",
        )
        .await
        .unwrap();
    let back = db.store.consent(c.id).await.unwrap();
    assert_eq!(back, c);
    assert_eq!(back.notice_id, Some(notice.id));
    let empty = db
        .store
        .give_consent(
            &NewConsent {
                evidence: " ".into(),
                ..NewConsent {
                    person_id: p.id,
                    scenario_id: w.scenario,
                    kind: ConsentKind::Processing,
                    notice_id: None,
                    given_by: ConsentGiver::Subject,
                    channel: "x".into(),
                    evidence: String::new(),
                }
            },
            "t",
        )
        .await;
    assert!(matches!(empty, Err(StoreError::Refused(r)) if r.rule == facegate_policy::RuleId::R7));
}
both!(r7_consent_record_holds_scope_notice_time_channel_evidence);

async fn r8_withdrawal_deletes_templates_in_the_same_transaction(db: Db) {
    let (w, people) = enrolled_world(&db, 3).await;
    let (p, c) = &people[1];
    // A second template for the same person.
    db.store
        .enrol(&enrolment(&w, p.id, vec![7; 300]), "t")
        .await
        .unwrap();
    assert_eq!(db.store.headcount().await.unwrap().count, 3);
    let rec = db.store.withdraw_consent(c.id, "kiosk", "t").await.unwrap();
    let del = rec
        .deletion
        .expect("processing withdrawal deletes templates");
    assert_eq!(del.templates_deleted, 2);
    assert_eq!(del.person_id, p.id);
    assert!(rec.consent.withdrawn_at.is_some());
    // The template is absent from the live store, the headcount dropped.
    assert!(db
        .store
        .person_templates(p.id, None, "t")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(db.store.headcount().await.unwrap().count, 2);
    // Face processing is refused afterwards.
    assert!(matches!(
        db.store.enrol(&enrolment(&w, p.id, vec![1; 10]), "t").await,
        Err(StoreError::Refused(r)) if r.rule == facegate_policy::RuleId::R7
    ));
    // Withdrawing twice changes nothing.
    assert!(db.store.withdraw_consent(c.id, "kiosk", "t").await.is_err());
    let rep = db.store.check_integrity().await.unwrap();
    assert!(rep.is_ok(), "{rep:?}");
    // The audit log keeps the withdrawal and the deletion receipt (R14).
    let recs = db.store.audit_records(1, 1000).await.unwrap();
    assert!(recs.iter().any(|r| r.event == "consent_withdrawn"));
    assert!(
        recs.iter()
            .any(|r| r.event == "face_data_deleted"
                && r.details.contains(&del.receipt_id.to_string()))
    );
}
both!(r8_withdrawal_deletes_templates_in_the_same_transaction);

async fn r8_erasure_destroys_identity_and_face_data_keeps_evidence(db: Db) {
    let (_w, people) = enrolled_world(&db, 2).await;
    let (p, _) = &people[0];
    db.store
        .add_credential(p.id, CredentialKind::Pin, "123456", "t")
        .await
        .unwrap();
    let r = db.store.erase_person(p.id, "t").await.unwrap();
    assert_eq!(r.templates_deleted, 1);
    let back = db.store.person(p.id).await.unwrap();
    assert!(back.identity.is_none() && back.erased_at.is_some());
    assert!(db.store.credentials(p.id).await.unwrap().is_empty());
    let consents = db.store.consents(p.id).await.unwrap();
    assert!(consents.iter().all(|c| c.withdrawn_at.is_some()));
    assert_eq!(db.store.headcount().await.unwrap().count, 1);
    assert!(db.store.check_integrity().await.unwrap().is_ok());
    assert!(db.store.erase_person(p.id, "t").await.is_err());
}
both!(r8_erasure_destroys_identity_and_face_data_keeps_evidence);

async fn r12_sweep_deletes_expired_templates_in_batches_and_logs_counts(db: Db) {
    let (w, people) = enrolled_world(&db, 5).await;
    // Nothing has expired today.
    let r0 = db
        .store
        .sweep(Utc::now(), 2, AUDIT_RETENTION_DAYS_MIN, "system:sweep")
        .await
        .unwrap();
    assert_eq!(r0.expired_templates + r0.inactive_templates, 0);
    // One person verifies later, so only retention (365 d) catches them;
    // the others are inactive after 90 days.
    db.store
        .record_verification(
            &NewVerificationEvent {
                person_id: Some(people[0].0.id),
                scenario_id: w.scenario,
                device_id: Some(w.device),
                method: "face".into(),
                result: "match".into(),
                score: Some(0.82),
                threshold: Some(0.5),
                refusal_rule: None,
                score_model: Some("first+second".into()),
            },
            "device",
        )
        .await
        .unwrap();
    // The scale of the score is kept with it (migration 12).
    let evs = db
        .store
        .verification_events(people[0].0.id, 10)
        .await
        .unwrap();
    assert_eq!(evs[0].event.score_model.as_deref(), Some("first+second"));
    let r = db
        .store
        .sweep(
            Utc::now() + Duration::days(400),
            2,
            AUDIT_RETENTION_DAYS_MIN,
            "system:sweep",
        )
        .await
        .unwrap();
    assert_eq!(r.expired_templates + r.inactive_templates, 5);
    assert!(r.batches >= 3, "batches of 2: {r:?}");
    assert_eq!(r.persons_left_headcount, 5);
    assert_eq!(db.store.headcount().await.unwrap().count, 0);
    for (p, _) in &people {
        assert!(db
            .store
            .person_templates(p.id, None, "t")
            .await
            .unwrap()
            .is_empty());
    }
    // The purge log shows when it went and how many.
    let recs = db.store.audit_records(1, 10_000).await.unwrap();
    let logged: i64 = recs
        .iter()
        .filter(|r| r.event == "retention_sweep")
        .map(|r| r.details_json()["templates_deleted"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(logged, 5);
    assert!(db.store.check_integrity().await.unwrap().is_ok());
    // Events are kept at least 3 years (R14); a shorter setting is refused.
    assert!(db.store.sweep(Utc::now(), 10, 30, "s").await.is_err());
    let r2 = db
        .store
        .sweep(
            Utc::now() + Duration::days(1200),
            10,
            AUDIT_RETENTION_DAYS_MIN,
            "s",
        )
        .await
        .unwrap();
    assert_eq!(r2.events_deleted, 1);
    // The audit chain is never swept.
    assert!(db.store.audit_len().await.unwrap() >= recs.len() as i64);
}
both!(r12_sweep_deletes_expired_templates_in_batches_and_logs_counts);

async fn r14_audit_never_holds_templates_and_chain_verifies(db: Db) {
    let (_w, _people) = enrolled_world(&db, 2).await;
    let v = template_f32(1);
    let err = db
        .store
        .audit(&AuditEntry::new("x", "t", json!({ "embedding": v })))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AuditPayloadRejected(_)));
    assert!(err.to_string().contains("R14"));
    let text = err.to_string();
    assert!(text.contains("Art. 9") && text.contains("第九条"), "{text}");
    let rep = db.store.verify_chain().await.unwrap();
    assert!(rep.is_intact(), "{rep:?}");
    assert!(rep.records >= 8);
    // Export as JSON Lines verifies offline too.
    let mut out = Vec::new();
    let n = db.store.export_audit_jsonl(&mut out).await.unwrap();
    assert_eq!(n, rep.records);
    let (m, fault) = verify_jsonl(std::io::Cursor::new(&out)).unwrap();
    assert_eq!((m, fault), (n, None));
}
both!(r14_audit_never_holds_templates_and_chain_verifies);

async fn r14_anchors_are_written_and_checked(db: Db) {
    for i in 0..(ANCHOR_EVERY + 10) {
        db.store
            .audit(&AuditEntry::new("tick", "t", json!({ "i": i })))
            .await
            .unwrap();
    }
    let a = db.store.anchor_now().await.unwrap().unwrap();
    assert_eq!(a.seq, ANCHOR_EVERY + 10);
    let rep = db.store.verify_chain().await.unwrap();
    assert_eq!(rep.anchors, 2);
    assert!(rep.is_intact(), "{rep:?}");
    // Rewrite record 5 and recompute every hash after it, as someone who
    // knows the algorithm but not the key would: the anchor catches it.
    let mut recs = db.store.audit_records(1, 100_000).await.unwrap();
    recs[4].details = "{\"i\":999}".into();
    for i in 4..recs.len() {
        recs[i].prev_hash = recs[i - 1].hash.clone();
        recs[i].hash = recs[i].compute_hash();
    }
    let mut c = raw(&db).await;
    for r in &recs[4..] {
        sqlx::query("UPDATE audit_log SET details = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&r.details)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(r.seq)
            .execute(&mut c)
            .await
            .unwrap();
    }
    c.close().await.unwrap();
    let f = chain_fault(&db, "rewrite detected").await;
    assert_eq!(f.kind, ChainFaultKind::Rewritten);
    assert_eq!(f.seq, 1, "{f}");
}
both!(r14_anchors_are_written_and_checked);

/// Edit, delete, insert and swap audit records directly in the database and
/// check that `verify_chain` names the record.
async fn r14_tampering_with_any_audit_record_is_named(db: Db) {
    let (_w, _p) = enrolled_world(&db, 3).await;
    let n = db.store.audit_len().await.unwrap();
    assert!(n >= 10);
    let backup: Vec<AuditRecord> = db.store.audit_records(1, 1000).await.unwrap();
    let restore = |db: &Db| {
        let backup = backup.clone();
        let url = db.url.clone();
        async move {
            let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
            sqlx::query("DELETE FROM audit_log")
                .execute(&mut c)
                .await
                .unwrap();
            for r in &backup {
                insert_record(&mut c, r).await;
            }
            c.close().await.unwrap();
        }
    };
    for target in [1, n / 2, n] {
        // Edit a field.
        exec(
            &db,
            &format!("UPDATE audit_log SET actor = 'mallory' WHERE seq = {target}"),
        )
        .await;
        let f = chain_fault(&db, "edit detected").await;
        assert_eq!(
            (f.kind, f.seq),
            (ChainFaultKind::Altered, target),
            "edit of {target}: {f}"
        );
        restore(&db).await;
        assert!(db.store.verify_chain().await.unwrap().is_intact());

        // Delete it.
        exec(&db, &format!("DELETE FROM audit_log WHERE seq = {target}")).await;
        let f = chain_fault(&db, "delete detected").await;
        assert_eq!(
            (f.kind, f.seq),
            (ChainFaultKind::Removed, target),
            "delete of {target}: {f}"
        );
        restore(&db).await;

        // Delete it and renumber the rest to close the gap.
        exec(&db, &format!("DELETE FROM audit_log WHERE seq = {target}")).await;
        for s in (target + 1)..=n {
            exec(
                &db,
                &format!("UPDATE audit_log SET seq = {} WHERE seq = {s}", s - 1),
            )
            .await;
        }
        let f = chain_fault(&db, "delete+renumber detected").await;
        assert_eq!(
            f.kind,
            ChainFaultKind::Removed,
            "delete+renumber of {target}: {f}"
        );
        assert_eq!(f.seq, target, "{f}");
        restore(&db).await;

        // Insert a forged record at that position (renumbering the rest up).
        for s in (target..=n).rev() {
            exec(
                &db,
                &format!("UPDATE audit_log SET seq = {} WHERE seq = {s}", s + 1),
            )
            .await;
        }
        let prev = if target == 1 {
            GENESIS_HASH.to_string()
        } else {
            backup[(target - 2) as usize].hash.clone()
        };
        let mut forged = AuditRecord {
            seq: target,
            at: backup[(target - 1) as usize].at.clone(),
            event: "verification".into(),
            actor: "device:forged".into(),
            subject: None,
            scenario_id: None,
            device_id: None,
            details: "{\"result\":\"match\"}".into(),
            prev_hash: prev,
            hash: String::new(),
        };
        forged.hash = forged.compute_hash();
        let mut c = raw(&db).await;
        insert_record(&mut c, &forged).await;
        c.close().await.unwrap();
        let f = chain_fault(&db, "insert detected").await;
        assert_eq!(
            (f.kind, f.seq),
            (ChainFaultKind::Inserted, target),
            "insert at {target}: {f}"
        );
        restore(&db).await;
        assert!(db.store.verify_chain().await.unwrap().is_intact());
    }
    // Swap two neighbours (exchange their sequence numbers).
    for a in [1, n / 2, n - 1] {
        let b = a + 1;
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = -1 WHERE seq = {a}"),
        )
        .await;
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = {a} WHERE seq = {b}"),
        )
        .await;
        exec(
            &db,
            &format!("UPDATE audit_log SET seq = {b} WHERE seq = -1"),
        )
        .await;
        let f = chain_fault(&db, "swap detected").await;
        assert_eq!(f.kind, ChainFaultKind::Reordered, "swap {a}/{b}: {f}");
        assert_eq!(f.seq, a, "{f}");
        restore(&db).await;
    }
    // Append a forged record after the head.
    let last = backup.last().unwrap();
    let mut extra = last.clone();
    extra.seq += 1;
    extra.prev_hash = last.hash.clone();
    extra.details = "{}".into();
    (extra.subject, extra.scenario_id, extra.device_id) = (None, None, None);
    extra.hash = extra.compute_hash();
    let mut c = raw(&db).await;
    insert_record(&mut c, &extra).await;
    c.close().await.unwrap();
    let f = chain_fault(&db, "append detected").await;
    assert_eq!((f.kind, f.seq), (ChainFaultKind::Inserted, n + 1), "{f}");
    restore(&db).await;
    assert!(db.store.verify_chain().await.unwrap().is_intact());
}
both!(r14_tampering_with_any_audit_record_is_named);

async fn r15_alternative_credentials_are_hashed(db: Db) {
    let (_w, people) = enrolled_world(&db, 1).await;
    let p = people[0].0.id;
    db.store
        .add_credential(p, CredentialKind::Pin, "482913", "t")
        .await
        .unwrap();
    db.store
        .add_credential(p, CredentialKind::Card, "CARD-0042-7781", "t")
        .await
        .unwrap();
    assert!(db.store.verify_pin(p, "482913").await.unwrap());
    assert!(!db.store.verify_pin(p, "482914").await.unwrap());
    assert_eq!(
        db.store
            .find_by_credential(CredentialKind::Card, "CARD-0042-7781")
            .await
            .unwrap(),
        Some(p)
    );
    assert_eq!(
        db.store
            .find_by_credential(CredentialKind::Card, "CARD-0042-7782")
            .await
            .unwrap(),
        None
    );
    assert!(db
        .store
        .add_credential(p, CredentialKind::Card, "CARD-0042-7781", "t")
        .await
        .is_err());
    // Neither secret is stored in the clear.
    let mut c = raw(&db).await;
    let rows = sqlx::query("SELECT secret_hash, lookup FROM credentials")
        .fetch_all(&mut c)
        .await
        .unwrap();
    for r in rows {
        use sqlx::Row;
        let h: String = r.get("secret_hash");
        assert!(!h.contains("482913") && !h.contains("7781"));
        assert!(h.starts_with("$argon2id$") || h.starts_with("hmac-sha256:"));
    }
    let creds = db.store.credentials(p).await.unwrap();
    db.store.revoke_credential(creds[1].id, "t").await.unwrap();
    assert_eq!(
        db.store
            .find_by_credential(CredentialKind::Card, "CARD-0042-7781")
            .await
            .unwrap(),
        None
    );
}
both!(r15_alternative_credentials_are_hashed);

async fn r21_headcount_counts_distinct_persons_with_history(db: Db) {
    let (w, people) = enrolled_world(&db, 4).await;
    // A second template does not count twice.
    db.store
        .enrol(&enrolment(&w, people[0].0.id, vec![9; 64]), "t")
        .await
        .unwrap();
    let h = db.store.headcount().await.unwrap();
    assert_eq!(h.count, 4);
    assert!(h.threshold_reached_at.is_none());
    let at3 = db
        .store
        .first_reached(3)
        .await
        .unwrap()
        .expect("count reached 3");
    let hist = db
        .store
        .headcount_history(
            at3 - Duration::seconds(1),
            Utc::now() + Duration::seconds(1),
        )
        .await
        .unwrap();
    assert!(hist.iter().any(|p| p.count == 3));
    db.store
        .withdraw_consent(people[1].1.id, "portal", "t")
        .await
        .unwrap();
    assert_eq!(db.store.headcount().await.unwrap().count, 3);
    assert!(db.store.first_reached(5).await.unwrap().is_none());
    assert_eq!(FILING_THRESHOLD, 100_000);
}
both!(r21_headcount_counts_distinct_persons_with_history);

async fn r20_identity_is_encrypted_and_bound_to_its_row(db: Db) {
    let w = world(&db.store).await;
    let (p, _) = consenting_person(&db.store, &w, "王小明 Wang Xiaoming").await;
    let back = db.store.person(p.id).await.unwrap();
    assert_eq!(back.identity.unwrap().display_name, "王小明 Wang Xiaoming");
    // The wrong key cannot read it.
    let other = Store::open(&db.url, StoreKeys::from_master(&[7; 32]))
        .await
        .unwrap();
    assert!(matches!(
        other.person(p.id).await,
        Err(StoreError::Decrypt(_))
    ));
    // Copying one person's ciphertext onto another row does not decrypt.
    let (q, _) = consenting_person(&db.store, &w, "Other").await;
    exec(&db, &format!("UPDATE persons SET identity = (SELECT identity FROM persons WHERE id = '{}') WHERE id = '{}'", p.id, q.id)).await;
    assert!(matches!(
        db.store.person(q.id).await,
        Err(StoreError::Decrypt(_))
    ));
}
both!(r20_identity_is_encrypted_and_bound_to_its_row);

async fn records_round_trip(db: Db) {
    let w = world(&db.store).await;
    // Scenario versions.
    let s2 = db
        .store
        .put_scenario(
            &NewScenarioVersion {
                processor_id: w.processor,
                name: "gate".into(),
                manifest: "purpose = \"building access v2\"\n".into(),
                template_retention_days: 180,
                inactivity_days: None,
            },
            "t",
        )
        .await
        .unwrap();
    assert_eq!((s2.scenario_id, s2.version), (w.scenario, 2));
    assert_eq!(
        db.store
            .scenario_version(w.scenario, 1)
            .await
            .unwrap()
            .template_retention_days,
        365
    );
    assert_eq!(db.store.scenario(w.scenario).await.unwrap().version, 2);
    // Guardians and guardian consent.
    let minor = db
        .store
        .add_person(
            w.processor,
            &PersonIdentity {
                display_name: "Child".into(),
                contact: None,
                date_of_birth: chrono::NaiveDate::from_ymd_opt(2017, 3, 1),
            },
            "t",
        )
        .await
        .unwrap();
    let g = db
        .store
        .add_guardian(
            minor.id,
            &PersonIdentity {
                display_name: "Parent".into(),
                ..Default::default()
            },
            "parent",
            "t",
        )
        .await
        .unwrap();
    let c = db
        .store
        .give_consent(
            &NewConsent {
                person_id: minor.id,
                scenario_id: w.scenario,
                kind: ConsentKind::Processing,
                notice_id: None,
                given_by: ConsentGiver::Guardian(g.id),
                channel: "paper".into(),
                evidence: "form-17".into(),
            },
            "t",
        )
        .await
        .unwrap();
    assert_eq!(
        db.store.consent(c.id).await.unwrap().given_by,
        ConsentGiver::Guardian(g.id)
    );
    assert_eq!(
        db.store.guardians(minor.id).await.unwrap()[0]
            .identity
            .as_ref()
            .unwrap()
            .display_name,
        "Parent"
    );
    assert_eq!(
        db.store
            .person(minor.id)
            .await
            .unwrap()
            .identity
            .unwrap()
            .date_of_birth,
        chrono::NaiveDate::from_ymd_opt(2017, 3, 1)
    );
    // Requests, complaints, filings, PIAs.
    let r = db
        .store
        .add_request(
            &NewRequest {
                person_id: Some(minor.id),
                kind: RequestKind::Copy,
                channel: "portal".into(),
                due_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            },
            "t",
        )
        .await
        .unwrap();
    db.store
        .complete_request(r.id, "done", "copy sent", "t")
        .await
        .unwrap();
    assert_eq!(db.store.requests().await.unwrap()[0].status, "done");
    let cp = db
        .store
        .add_complaint(
            &NewComplaint {
                person_id: None,
                channel: "phone".into(),
                body: "摄像头位置不当".into(),
            },
            "t",
        )
        .await
        .unwrap();
    db.store
        .resolve_complaint(cp.id, "moved", "t")
        .await
        .unwrap();
    assert_eq!(
        db.store.complaints().await.unwrap()[0].body,
        "摄像头位置不当"
    );
    let f = db
        .store
        .add_filing(
            &NewFiling {
                processor_id: w.processor,
                kind: FilingKind::Initial,
                threshold_reached_date: None,
                due_date: None,
                snapshot: json!({ "purpose": "access" }),
            },
            "t",
        )
        .await
        .unwrap();
    db.store
        .mark_filed(f.id, "GD-2026-0001", "t")
        .await
        .unwrap();
    assert_eq!(
        db.store.filings(w.processor).await.unwrap()[0]
            .filing_number
            .as_deref(),
        Some("GD-2026-0001")
    );
    let p1 = db
        .store
        .add_pia(
            &NewPia {
                processor_id: w.processor,
                scenario_id: Some(w.scenario),
                content: "# PIA v1".into(),
                approved_by: None,
            },
            "t",
        )
        .await
        .unwrap();
    let p2 = db
        .store
        .add_pia(
            &NewPia {
                processor_id: w.processor,
                scenario_id: None,
                content: "# PIA v2".into(),
                approved_by: Some("DPO".into()),
            },
            "t",
        )
        .await
        .unwrap();
    assert_eq!((p1.version, p2.version), (1, 2));
    assert_eq!(db.store.pias(w.processor).await.unwrap().len(), 2);
    // Devices.
    db.store.retire_device(w.device, "t").await.unwrap();
    assert!(db
        .store
        .device(w.device)
        .await
        .unwrap()
        .retired_at
        .is_some());
    let (p, _) = consenting_person(&db.store, &w, "Late").await;
    assert!(db
        .store
        .enrol(&enrolment(&w, p.id, vec![1; 8]), "t")
        .await
        .is_err());
    // Bad input loses nothing.
    assert!(db
        .store
        .enrol(
            &Enrolment {
                device_id: None,
                ..enrolment(&w, p.id, vec![])
            },
            "t"
        )
        .await
        .is_err());
    assert!(db.store.check_integrity().await.unwrap().is_ok());
    // Reopen: migrations are idempotent.
    let again = db.reopen().await;
    // The newest migration (12: the scale of a decision's score) is applied once.
    assert_eq!(again.schema_version().await.unwrap(), 12);
    assert!(again.verify_chain().await.unwrap().is_intact());
}
both!(records_round_trip);

async fn scenarios_lists_the_latest_version_of_each(db: Db) {
    let w = world(&db.store).await;
    let put = |name: &str, manifest: &str, days: i64| NewScenarioVersion {
        processor_id: w.processor,
        name: name.into(),
        manifest: manifest.into(),
        template_retention_days: days,
        inactivity_days: None,
    };
    let lobby = db
        .store
        .put_scenario(&put("lobby", "purpose = \"lobby\"\n", 30), "t")
        .await
        .unwrap();
    for (i, days) in [200, 100].into_iter().enumerate() {
        db.store
            .put_scenario(
                &put("gate", &format!("purpose = \"gate v{}\"\n", i + 2), days),
                "t",
            )
            .await
            .unwrap();
    }
    let all = db.store.scenarios().await.unwrap();
    // Creation order, one row per scenario, each at its latest version.
    let got: Vec<(uuid::Uuid, i64, i64)> = all
        .iter()
        .map(|s| (s.scenario_id, s.version, s.template_retention_days))
        .collect();
    assert_eq!(got, vec![(w.scenario, 3, 100), (lobby.scenario_id, 1, 30)]);
    // Every field as the one-scenario lookup reads it.
    for s in &all {
        assert_eq!(&db.store.scenario(s.scenario_id).await.unwrap(), s);
    }
}
both!(scenarios_lists_the_latest_version_of_each);

async fn inspection_names_an_older_schema_as_older(db: Db) {
    assert!(Store::open_for_inspection(&db.url, db.keys()).await.is_ok());
    exec(&db, "DELETE FROM schema_migrations").await;
    let err = Store::open_for_inspection(&db.url, db.keys())
        .await
        .unwrap_err();
    assert!(!matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
    assert!(err.to_string().contains("older"), "{err}");
}
both!(inspection_names_an_older_schema_as_older);

async fn r14_log_retention_is_at_least_1095_days(db: Db) {
    let (_w, _p) = enrolled_world(&db, 2).await;
    let err = db
        .store
        .sweep(Utc::now(), 100, 1094, "s")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("R14"), "{err}");
    match &err {
        StoreError::Refused(r) => {
            assert_eq!(
                (r.rule.to_string(), r.article.as_str()),
                ("R14".into(), "Art. 9")
            );
            assert!(err.to_string().contains("第九条"), "{err}");
        }
        e => panic!("expected an R14 refusal, got {e}"),
    }
    let before = db.store.audit_records(1, 100_000).await.unwrap();
    // Twenty years later the sweep has deleted face data but no log entry.
    db.store
        .sweep(
            Utc::now() + Duration::days(7300),
            100,
            AUDIT_RETENTION_DAYS_MIN,
            "s",
        )
        .await
        .unwrap();
    let after = db.store.audit_records(1, 100_000).await.unwrap();
    assert_eq!(&after[..before.len()], &before[..]);
    assert!(db.store.verify_chain().await.unwrap().is_intact());
}
both!(r14_log_retention_is_at_least_1095_days);

async fn wrapped_keys_and_resealing_stay_in_the_template_store(db: Db) {
    let (w, people) = enrolled_world(&db, 1).await;
    let k = uuid::Uuid::now_v7();
    db.store
        .put_wrapped_key(k, b"wrapped-v1", "t")
        .await
        .unwrap();
    db.store
        .put_wrapped_key(k, b"wrapped-v2", "t")
        .await
        .unwrap();
    let keys = db.store.wrapped_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].wrapped, b"wrapped-v2");
    db.store.retire_wrapped_key(k, "t").await.unwrap();
    assert!(db.store.wrapped_keys().await.unwrap()[0]
        .retired_at
        .is_some());
    let t = db
        .store
        .person_templates(people[0].0.id, Some(w.scenario), "t")
        .await
        .unwrap();
    db.store
        .reseal_template(t[0].0, b"resealed-bytes", "t")
        .await
        .unwrap();
    let t2 = db.store.scenario_templates(w.scenario, "t").await.unwrap();
    assert_eq!(t2[0].2, b"resealed-bytes");
    assert!(db.store.check_integrity().await.unwrap().is_ok());
}
both!(wrapped_keys_and_resealing_stay_in_the_template_store);

/// Concurrent writers (8 tasks through the pool) keep the chain linear and
/// the headcount exact on both engines.
async fn concurrent_enrolments_keep_chain_and_headcount_exact(db: Db) {
    let w = std::sync::Arc::new(world(&db.store).await);
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let store = db.store.clone();
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = None;
            for i in 0..6u64 {
                let (p, c) = consenting_person(&store, &w, &format!("T{t}-{i}")).await;
                store
                    .enrol(&enrolment(&w, p.id, vec![t as u8; 100]), "t")
                    .await
                    .unwrap();
                if i % 3 == 2 {
                    store.withdraw_consent(c.id, "kiosk", "t").await.unwrap();
                }
                last = Some(p.id);
            }
            last
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = db.store.check_integrity().await.unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.headcount_actual, 8 * 4);
    assert_eq!(r.chain.records as i64, db.store.audit_len().await.unwrap());
}
both!(concurrent_enrolments_keep_chain_and_headcount_exact);

#[tokio::test]
async fn bad_urls_are_refused_clearly() {
    let k = StoreKeys::from_master(&[1; 32]);
    for u in ["", "mysql://x/y", "sqlite::memory:", "/no/such/dir/x.db"] {
        let e = Store::open(u, k.clone()).await.unwrap_err();
        assert!(matches!(e, StoreError::BadUrl { .. }), "{u}: {e}");
    }
}

async fn r14_the_chain_is_verified_incrementally_from_the_last_checked_record(db: Db) {
    let mut cursor = facegate_store::ChainCursor::default();
    for round in 0..3 {
        for i in 0..5 {
            db.store
                .audit(&AuditEntry::new(
                    "tick",
                    "t",
                    json!({ "round": round, "i": i }),
                ))
                .await
                .unwrap();
        }
        cursor = db.store.verify_chain_since(&cursor).await.unwrap().unwrap();
        assert_eq!(cursor.seq, 5 * (round + 1));
    }
    // Nothing new: the same cursor.
    let same = db.store.verify_chain_since(&cursor).await.unwrap().unwrap();
    assert_eq!(same, cursor);
    // A record written after the cursor and then edited is caught by the
    // next incremental check.
    db.store
        .audit(&AuditEntry::new("tick", "t", json!({ "i": 99 })))
        .await
        .unwrap();
    exec(&db, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 16").await;
    let f = db
        .store
        .verify_chain_since(&cursor)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!((f.kind, f.seq), (ChainFaultKind::Altered, 16), "{f}");
    // One deleted after the cursor: the head no longer matches.
    exec(&db, "DELETE FROM audit_log WHERE seq = 16").await;
    let f = db
        .store
        .verify_chain_since(&cursor)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(f.kind, ChainFaultKind::Rewritten, "{f}");
}
both!(r14_the_chain_is_verified_incrementally_from_the_last_checked_record);

/// Issue 15: a liveness challenge is taken once (the second take, as a
/// second request or a second instance would try, finds nothing), and a
/// frame seen in a recent capture reads as a replay until the sweep.
async fn r20_a_challenge_is_taken_once_and_a_frame_replay_is_seen(db: Db) {
    let w = world(&db.store).await;
    let now = Utc::now();
    let c = LivenessChallenge {
        nonce_sha256: "ab".repeat(32),
        scenario_id: w.scenario,
        device: "gate-north-1".into(),
        person_id: None,
        actions: r#"["turn_left","blink"]"#.into(),
        issued_at: now,
        expires_at: now + Duration::seconds(60),
    };
    db.store.put_liveness_challenge(&c).await.unwrap();
    let (a, b) = tokio::join!(
        db.store.take_liveness_challenge(&c.nonce_sha256),
        db.store.take_liveness_challenge(&c.nonce_sha256),
    );
    let taken: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken.len(), 1, "exactly one take gets it");
    assert_eq!(
        (&taken[0].nonce_sha256, &taken[0].actions, &taken[0].device),
        (&c.nonce_sha256, &c.actions, &c.device)
    );
    // Stored to the microsecond.
    assert!(
        (taken[0].expires_at - c.expires_at)
            .num_microseconds()
            .unwrap()
            .abs()
            <= 1
    );
    assert_eq!(
        db.store
            .take_liveness_challenge(&c.nonce_sha256)
            .await
            .unwrap(),
        None
    );

    let later = now + Duration::minutes(15);
    let f = vec!["01".repeat(32), "02".repeat(32), "01".repeat(32)];
    assert!(!db
        .store
        .remember_capture_frames(&f, now, later)
        .await
        .unwrap());
    assert_eq!(db.store.capture_frame_hash_count().await.unwrap(), 2);
    let again = vec!["03".repeat(32), "02".repeat(32)];
    assert!(db
        .store
        .remember_capture_frames(&again, now, later)
        .await
        .unwrap());
    // A restart keeps them (they are in the store).
    let again = db.reopen().await;
    assert!(again
        .remember_capture_frames(&["01".repeat(32)], now, later)
        .await
        .unwrap());
    assert!(
        again
            .sweep_liveness(later + Duration::seconds(1))
            .await
            .unwrap()
            >= 3
    );
    assert_eq!(again.capture_frame_hash_count().await.unwrap(), 0);
    assert!(!again
        .remember_capture_frames(&["01".repeat(32)], later, later + Duration::minutes(15))
        .await
        .unwrap());
}
both!(r20_a_challenge_is_taken_once_and_a_frame_replay_is_seen);
