//! State that decisions depend on lives in the store (issue 11): API keys,
//! declines (R17), portal codes and sessions, lock-out counters, consent as
//! one record per person, scenario and kind. Each test reopens the store to
//! show a restart keeps it, on SQLite and (when configured) PostgreSQL.

mod common;

use chrono::{Duration, Utc};
use common::*;
use facegate_store::*;
use uuid::Uuid;

async fn api_keys_survive_a_restart_and_revocation_is_seen_at_once(db: Db) {
    let k = ApiKeyRecord {
        id: "kiosk1".into(),
        role: "device".into(),
        device_id: Some("gate-north-1".into()),
        scenario_id: None,
        label: "north gate".into(),
        secret_sha256: "ab".repeat(32),
        created_at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
        revoked_at: None,
    };
    db.store.add_api_key(&k, "test").await.unwrap();
    let other = db.reopen().await;
    assert_eq!(other.api_key("kiosk1").await.unwrap().unwrap(), k);
    assert!(db.store.revoke_api_key("kiosk1", "test").await.unwrap());
    // The second handle (a restarted or second process) sees it at once.
    assert!(other
        .api_key("kiosk1")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(!other.revoke_api_key("kiosk1", "test").await.unwrap());
    assert_eq!(other.api_keys().await.unwrap().len(), 1);
}
both!(api_keys_survive_a_restart_and_revocation_is_seen_at_once);

/// A second scenario of the world's processor with devices named `names`
/// (the world's own device is `north gate`).
async fn second_scenario(db: &Db, w: &World, names: &[&str]) -> Uuid {
    scenario_with_devices(&db.store, w.processor, "gate-2", names)
        .await
        .0
}

fn device_key(id: &str, device: &str, scenario: Option<Uuid>) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        role: "device".into(),
        device_id: Some(device.into()),
        scenario_id: scenario,
        label: id.into(),
        secret_sha256: "ab".repeat(32),
        created_at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
        revoked_at: None,
    }
}

async fn revoking_a_device_revokes_only_its_scenarios_keys(db: Db) {
    let w = world(&db.store).await;
    let b = second_scenario(&db, &w, &["north gate"]).await;
    for k in [
        device_key("a1", "north gate", Some(w.scenario)),
        device_key("a2", "north gate", Some(w.scenario)),
        device_key("a-south", "south gate", Some(w.scenario)),
        device_key("b1", "north gate", Some(b)),
    ] {
        db.store.add_api_key(&k, "test").await.unwrap();
    }
    // Only a device key belongs to a scenario.
    let mut admin = device_key("adm", "north gate", Some(b));
    (admin.role, admin.device_id) = ("admin".into(), None);
    assert!(db.store.add_api_key(&admin, "test").await.is_err());
    assert!(db.store.revoke_api_key("a2", "test").await.unwrap());

    let revoked = db
        .store
        .revoke_device_keys(w.scenario, "north gate", "operator:o1")
        .await
        .unwrap();
    assert_eq!(revoked, vec!["a1".to_string()], "a2 was revoked already");
    let other = db.reopen().await;
    let state = |id: &'static str| {
        let other = &other;
        async move {
            other
                .api_key(id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        }
    };
    assert!(state("a1").await);
    assert!(!state("a-south").await, "another device of the scenario");
    assert!(
        !state("b1").await,
        "the same-named device of another scenario"
    );
    assert_eq!(
        other.api_key("b1").await.unwrap().unwrap().scenario_id,
        Some(b)
    );
    assert!(other
        .revoke_device_keys(w.scenario, "north gate", "operator:o1")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        other
            .revoke_device_keys(b, "north gate", "operator:o1")
            .await
            .unwrap(),
        vec!["b1".to_string()]
    );
}
both!(revoking_a_device_revokes_only_its_scenarios_keys);

/// Migration 11 gives each device key written before it the one scenario
/// with a device of that name; a name in several scenarios, or in none,
/// leaves the key without one (the server refuses it until a new key is
/// issued). The database is put back to schema 10 (no `scenario_id`, no
/// record of migration 11) and opened again, as an upgrade opens it.
async fn migration_11_backfills_device_keys_with_their_sole_scenario(db: Db) {
    use sqlx::Connection;
    let w = world(&db.store).await;
    let b = second_scenario(&db, &w, &["north gate", "lobby"]).await;
    let mut admin = device_key("admin", "x", None);
    (admin.role, admin.device_id) = ("admin".into(), None);
    for k in [
        device_key("both", "north gate", None),
        device_key("lobby", "lobby", None),
        device_key("none", "car park", None),
        admin,
    ] {
        db.store.add_api_key(&k, "test").await.unwrap();
    }
    assert_eq!(
        db.store.sole_scenario_of_device("lobby").await.unwrap(),
        Some(b)
    );
    assert_eq!(
        db.store
            .sole_scenario_of_device("north gate")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.store.sole_scenario_of_device("car park").await.unwrap(),
        None
    );
    db.store.clone().close().await;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for stmt in [
        "DROP INDEX api_keys_device",
        "CREATE TABLE api_keys_v10 (
            id TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            device_id TEXT,
            label TEXT NOT NULL,
            secret_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT)",
        "INSERT INTO api_keys_v10 SELECT id, role, device_id, label, secret_sha256, created_at, revoked_at FROM api_keys",
        "DROP TABLE api_keys",
        "ALTER TABLE api_keys_v10 RENAME TO api_keys",
        "DELETE FROM schema_migrations WHERE version = 11",
    ] {
        sqlx::Executor::execute(&mut c, stmt).await.unwrap();
    }
    c.close().await.unwrap();
    let upgraded = db.reopen().await;
    assert!(
        upgraded.schema_version().await.unwrap() >= 11,
        "migration 11 ran again"
    );
    let scenario = |id: &'static str| {
        let s = &upgraded;
        async move { s.api_key(id).await.unwrap().unwrap().scenario_id }
    };
    assert_eq!(
        scenario("lobby").await,
        Some(b),
        "its device is in one scenario"
    );
    assert_eq!(scenario("both").await, None, "its device is in two");
    assert_eq!(scenario("none").await, None, "its device is in none");
    assert_eq!(scenario("admin").await, None, "not a device key");
}
both!(migration_11_backfills_device_keys_with_their_sole_scenario);

async fn r17_a_decline_is_kept_until_the_person_opts_back_in(db: Db) {
    let w = world(&db.store).await;
    let (p, _) = consenting_person(&db.store, &w, "Zhang San").await;
    let at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    db.store
        .record_decline(p.id, w.scenario, at, "kiosk", "t")
        .await
        .unwrap();
    let other = db.reopen().await;
    assert_eq!(
        other.active_decline(p.id, w.scenario).await.unwrap(),
        Some(at)
    );
    assert!(other
        .opt_back_in(p.id, w.scenario, at + Duration::seconds(5), "kiosk", "t")
        .await
        .unwrap());
    assert_eq!(
        db.store.active_decline(p.id, w.scenario).await.unwrap(),
        None
    );
    let recs = db.store.audit_records(1, 1000).await.unwrap();
    assert!(recs.iter().any(|r| r.event == "face_declined"));
    assert!(recs.iter().any(|r| r.event == "face_opted_in"));
    // Only for an existing person.
    let nobody = uuid::Uuid::now_v7();
    assert!(matches!(
        db.store
            .record_decline(nobody, w.scenario, at, "kiosk", "t")
            .await,
        Err(StoreError::NotFound { .. })
    ));
}
both!(r17_a_decline_is_kept_until_the_person_opts_back_in);

async fn portal_codes_are_single_use_and_sessions_survive_a_restart(db: Db) {
    let w = world(&db.store).await;
    let (p, _) = consenting_person(&db.store, &w, "Li Si").await;
    let exp = Utc::now() + Duration::minutes(15);
    db.store
        .put_portal_code(
            "c1",
            p.id,
            exp,
            serde_json::json!({"operator_check": "id card"}),
            "t",
        )
        .await
        .unwrap();
    let other = db.reopen().await;
    let got = other
        .redeem_portal_code("c1", "tok1", Utc::now() + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(got, Some(p.id));
    assert_eq!(
        db.store
            .redeem_portal_code("c1", "tok2", Utc::now() + Duration::minutes(30))
            .await
            .unwrap(),
        None,
        "a code is single use, across processes"
    );
    assert_eq!(db.store.portal_session("tok1").await.unwrap(), Some(p.id));
    assert_eq!(db.store.portal_session("tok2").await.unwrap(), None);
    // An expired code is refused.
    db.store
        .put_portal_code(
            "c2",
            p.id,
            Utc::now() - Duration::seconds(1),
            serde_json::json!({}),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(
        db.store
            .redeem_portal_code("c2", "tok3", Utc::now() + Duration::minutes(30))
            .await
            .unwrap(),
        None
    );
    db.store.end_portal_sessions(p.id).await.unwrap();
    assert_eq!(other.portal_session("tok1").await.unwrap(), None);
    let recs = db.store.audit_records(1, 1000).await.unwrap();
    let issued = recs
        .iter()
        .find(|r| r.event == "portal_code_issued")
        .unwrap();
    assert!(issued.details.contains("id card"), "{}", issued.details);
}
both!(portal_codes_are_single_use_and_sessions_survive_a_restart);

async fn lockout_burst_of_50_gets_at_most_the_limit_evaluated(db: Db) {
    let policy = AttemptPolicy::per_15_minutes(5);
    let now = Utc::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move {
            s.reserve_attempt("pin:p1", policy, now).await.unwrap()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Attempt::Allowed { .. }) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "exactly the limit is evaluated");
    // The lock holds after a restart, and backs off: the second lock is longer.
    let other = db.reopen().await;
    let Attempt::Locked { until: first } =
        other.reserve_attempt("pin:p1", policy, now).await.unwrap()
    else {
        panic!("locked");
    };
    let later = first + Duration::seconds(1);
    for _ in 0..5 {
        assert!(matches!(
            other
                .reserve_attempt("pin:p1", policy, later)
                .await
                .unwrap(),
            Attempt::Allowed { .. }
        ));
    }
    let Attempt::Locked { until: second } = other
        .reserve_attempt("pin:p1", policy, later)
        .await
        .unwrap()
    else {
        panic!("locked again");
    };
    assert!(
        second - later > first - now,
        "back-off: {first} then {second}"
    );
    // Other counters are untouched.
    assert!(matches!(
        db.store
            .reserve_attempt("pin:p2", policy, now)
            .await
            .unwrap(),
        Attempt::Allowed { remaining: 4 }
    ));
    // A success clears the failures.
    db.store.attempt_succeeded("pin:p2").await.unwrap();
    assert_eq!(db.store.attempt_failures("pin:p2").await.unwrap(), 0);
}
both!(lockout_burst_of_50_gets_at_most_the_limit_evaluated);

async fn consent_is_one_record_and_withdrawal_removes_every_template(db: Db) {
    let w = world(&db.store).await;
    let (p, c) = consenting_person(&db.store, &w, "Wang Wu").await;
    // Giving it again while active returns the same record.
    let again = db
        .store
        .give_consent(
            &NewConsent {
                person_id: p.id,
                scenario_id: w.scenario,
                kind: ConsentKind::Processing,
                notice_id: None,
                given_by: ConsentGiver::Subject,
                channel: "kiosk".into(),
                evidence: "tap again".into(),
            },
            "test",
        )
        .await
        .unwrap();
    assert_eq!(again.id, c.id);
    let active: Vec<_> = db
        .store
        .consents(p.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.is_active())
        .collect();
    assert_eq!(active.len(), 1);
    let key: [u8; 32] = rand::random();
    for seed in 0..2 {
        db.store
            .enrol(
                &enrolment(&w, p.id, seal(&key, &template_i8(&template_f32(seed)))),
                "t",
            )
            .await
            .unwrap();
    }
    assert_eq!(db.store.headcount().await.unwrap().count, 1);
    let r = db.store.withdraw_consent(c.id, "kiosk", "t").await.unwrap();
    assert_eq!(r.deletion.unwrap().templates_deleted, 2);
    let other = db.reopen().await;
    assert!(other
        .person_templates(p.id, None, "t")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(other.headcount().await.unwrap().count, 0);
}
both!(consent_is_one_record_and_withdrawal_removes_every_template);

async fn bulk_rows_are_remembered(db: Db) {
    let w = world(&db.store).await;
    let id = PersonIdentity {
        display_name: "Zhao Liu".into(),
        contact: None,
        date_of_birth: None,
    };
    assert_eq!(db.store.enrol_row("row-1").await.unwrap(), None);
    let (p, created) = db
        .store
        .person_for_row("row-1", w.processor, &id, "t")
        .await
        .unwrap();
    assert!(created);
    let (again, created) = db
        .reopen()
        .await
        .person_for_row("row-1", w.processor, &id, "t")
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, p.id);
    assert_eq!(db.store.enrol_row("row-1").await.unwrap(), Some(p.id));
}
both!(bulk_rows_are_remembered);

/// Regression (found by the core's model-based test): a receipt without a
/// score followed by one with a score on the same connection failed on
/// PostgreSQL ("incorrect binary data format in bind parameter 8").
async fn receipts_with_and_without_scores_alternate(db: Db) {
    let w = world(&db.store).await;
    for i in 0..6 {
        let score = (i % 2 == 1).then_some(0.8);
        let threshold = (i % 3 != 0).then_some(0.4);
        db.store
            .record_verification(
                &NewVerificationEvent {
                    person_id: None,
                    scenario_id: w.scenario,
                    device_id: Some(w.device),
                    method: "face".into(),
                    result: "no_match".into(),
                    score,
                    threshold,
                    refusal_rule: None,
                    score_model: score.map(|_| "first".to_string()),
                },
                "t",
            )
            .await
            .unwrap();
    }
}
both!(receipts_with_and_without_scores_alternate);

async fn a_refund_takes_back_one_attempt_and_never_a_lock(db: Db) {
    // Card lookups: every lookup is reserved, a hit gives back its own
    // reservation only (the misses beside it stay counted), concurrently
    // and across a restart, and a refund never lifts a lock.
    let policy = AttemptPolicy::per_15_minutes(4);
    let now = Utc::now();
    let key = "card-lookup:s:device:gate-1";
    for _ in 0..3 {
        db.store.reserve_attempt(key, policy, now).await.unwrap();
    }
    db.store.attempt_refunded(key).await.unwrap();
    assert_eq!(db.store.attempt_failures(key).await.unwrap(), 2);
    let other = db.reopen().await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = other.clone();
        tasks.push(tokio::spawn(async move {
            s.attempt_refunded(key).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        other.attempt_failures(key).await.unwrap(),
        0,
        "never below zero"
    );
    for _ in 0..4 {
        other.reserve_attempt(key, policy, now).await.unwrap();
    }
    assert!(matches!(
        other.reserve_attempt(key, policy, now).await.unwrap(),
        Attempt::Locked { .. }
    ));
    other.attempt_refunded(key).await.unwrap();
    assert!(
        matches!(
            other.reserve_attempt(key, policy, now).await.unwrap(),
            Attempt::Locked { .. }
        ),
        "a refund does not lift the lock"
    );
}
both!(a_refund_takes_back_one_attempt_and_never_a_lock);

/// One counter of the model: what the store's row should hold.
#[derive(Debug, Clone, Copy, Default)]
struct ModelCounter {
    row: bool,
    start: chrono::DateTime<Utc>,
    failures: i64,
    lockouts: i64,
    locked_until: Option<chrono::DateTime<Utc>>,
}

impl ModelCounter {
    /// A reservation on its own: the row it would write and the answer.
    fn step(&self, p: AttemptPolicy, now: chrono::DateTime<Utc>) -> (Option<Self>, Attempt) {
        let mut c = if self.row {
            *self
        } else {
            ModelCounter {
                row: true,
                start: now,
                ..Default::default()
            }
        };
        if let Some(until) = c.locked_until {
            if until > now {
                return (None, Attempt::Locked { until });
            }
            c.start = now;
            c.failures = 0;
        }
        if now - c.start >= p.window {
            c.start = now;
            c.failures = 0;
            if c.locked_until.is_none_or(|u| now - u >= p.window) {
                c.lockouts = 0;
            }
        }
        c.locked_until = None;
        if c.failures >= p.limit {
            let until = now + (p.lock * (1 << c.lockouts.min(16))).min(p.max_lock);
            c.lockouts += 1;
            c.locked_until = Some(until);
            (Some(c), Attempt::Locked { until })
        } else {
            c.failures += 1;
            let remaining = p.limit - c.failures;
            (Some(c), Attempt::Allowed { remaining })
        }
    }
}

async fn card_lookup_pairs_charge_both_budgets_or_neither(db: Db) {
    // Model-based: random card lookups from three devices, each reserving
    // its device's counter and the scenario's at once; hits give both back;
    // the clock moves and the store restarts. After every step the answer
    // and every counter's failures match a model where a lock on either
    // counter charges neither, so a scenario-wide lock-out never spends a
    // device's own misses (before, the device was charged first and kept
    // the charge when the scenario counter was locked).
    use rand::{Rng, SeedableRng};
    let device = AttemptPolicy::per_15_minutes(3);
    let space = AttemptPolicy::per_15_minutes(5);
    let seed: u64 = std::env::var("FACEGATE_MBT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let keys = ["cl:d0", "cl:d1", "cl:d2", "cl:*"];
    let mut model = [ModelCounter::default(); 4];
    let mut store = db.store.clone();
    let mut now = chrono::TimeZone::timestamp_opt(&Utc, 1_790_000_000, 0).unwrap();
    let mut device_locked_by_space = 0;
    for step in 0..400 {
        match rng.gen_range(0..20) {
            0..=13 => {
                let d = rng.gen_range(0..3);
                let hit = rng.gen_bool(0.2);
                let got = store
                    .reserve_attempts(&[(keys[d], device), (keys[3], space)], now)
                    .await
                    .unwrap();
                let (a, oa) = model[d].step(device, now);
                let (b, ob) = model[3].step(space, now);
                let until = [oa, ob]
                    .iter()
                    .filter_map(|o| match o {
                        Attempt::Locked { until } => Some(*until),
                        _ => None,
                    })
                    .max();
                let want = match until {
                    Some(until) => {
                        if matches!(oa, Attempt::Allowed { .. }) {
                            device_locked_by_space += 1;
                        }
                        for (i, (c, o)) in [(d, (a, oa)), (3, (b, ob))] {
                            if let (Some(c), Attempt::Locked { .. }) = (c, o) {
                                model[i] = c;
                            }
                        }
                        Attempt::Locked { until }
                    }
                    None => {
                        model[d] = a.unwrap();
                        model[3] = b.unwrap();
                        let r = |o: Attempt| match o {
                            Attempt::Allowed { remaining } => remaining,
                            Attempt::Locked { .. } => unreachable!(),
                        };
                        Attempt::Allowed {
                            remaining: r(oa).min(r(ob)),
                        }
                    }
                };
                assert_eq!(got, want, "seed {seed} step {step}");
                if hit && matches!(got, Attempt::Allowed { .. }) {
                    for i in [d, 3] {
                        store.attempt_refunded(keys[i]).await.unwrap();
                        let c = &mut model[i];
                        if c.failures > 0 && c.locked_until.is_none() {
                            c.failures -= 1;
                        }
                    }
                }
            }
            14..=17 => now += Duration::minutes(rng.gen_range(0..12)),
            18 => now += Duration::minutes(rng.gen_range(15..60)),
            _ => store = db.reopen().await,
        }
        for (k, c) in keys.iter().zip(&model) {
            assert_eq!(
                store.attempt_failures(k).await.unwrap(),
                c.failures,
                "seed {seed} step {step}: {k}"
            );
        }
    }
    assert!(
        device_locked_by_space > 0,
        "seed {seed}: the sequence met a scenario-wide lock with device budget left"
    );
}
both!(card_lookup_pairs_charge_both_budgets_or_neither);

/// A processor's scenario by name is its latest version, and only that
/// processor's: another processor's scenario of the same name, and an
/// older version, are never the answer.
async fn a_named_scenario_is_the_processors_latest_version(db: Db) {
    let put = |processor: Uuid, name: &'static str, manifest: &'static str| {
        let store = &db.store;
        async move {
            store
                .put_scenario(
                    &NewScenarioVersion {
                        processor_id: processor,
                        name: name.into(),
                        manifest: manifest.into(),
                        template_retention_days: 365,
                        inactivity_days: None,
                    },
                    "t",
                )
                .await
                .unwrap()
        }
    };
    let a = db.store.add_processor("A Co.", None, "t").await.unwrap().id;
    let b = db.store.add_processor("B Co.", None, "t").await.unwrap().id;
    assert!(db.store.scenario_named(a, "gate").await.unwrap().is_none());
    put(a, "gate", "v = 1\n").await;
    let latest = put(a, "gate", "v = 2\n").await;
    let other = put(b, "gate", "v = 3\n").await;
    put(a, "lobby", "v = 4\n").await;
    let got = db.store.scenario_named(a, "gate").await.unwrap().unwrap();
    assert_eq!(got, latest);
    assert_eq!(got.version, 2);
    assert_eq!(
        db.store.scenario_named(b, "gate").await.unwrap().unwrap(),
        other
    );
    assert!(db.store.scenario_named(b, "lobby").await.unwrap().is_none());
}
both!(a_named_scenario_is_the_processors_latest_version);
