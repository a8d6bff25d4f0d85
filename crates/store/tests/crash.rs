//! Crash safety: a child process enrols people in a loop and is killed with
//! SIGKILL at random moments (at least 50 times). After every kill the store
//! is inspected as left on disk, then reopened, and must hold: no template
//! without its person and an active processing consent, headcount equal to
//! the real count, an intact audit chain.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use facegate_store::*;
use rand::Rng;
use uuid::Uuid;

const CHILD: &str = "FACEGATE_STORE_CRASH_CHILD";
const KILLS: usize = 50;

/// Entry point of the child process; does nothing in a normal test run.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let v: Vec<&str> = spec.split('|').collect();
    let (url, master_hex) = (v[0].to_string(), v[1]);
    let mut master = [0u8; 32];
    master.copy_from_slice(&hex::decode(master_hex).unwrap());
    let w = World {
        processor: v[2].parse().unwrap(),
        scenario: v[3].parse().unwrap(),
        device: v[4].parse().unwrap(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Store::open(&url, StoreKeys::from_master(&master))
            .await
            .unwrap();
        println!("CHILD-READY");
        let bio = [3u8; 32];
        let mut mine: Vec<(Uuid, Uuid)> = Vec::new();
        let mut i = 0u64;
        loop {
            i += 1;
            let roll: u32 = rand::thread_rng().gen_range(0..100);
            let t = seal(&bio, &f32_bytes(&template_f32(i)));
            if roll < 55 {
                let (p, c) = consenting_person(&store, &w, &format!("Crash {i}")).await;
                store
                    .enrol(&enrolment(&w, p.id, t), "crash-child")
                    .await
                    .unwrap();
                mine.push((p.id, c.id));
            } else if roll < 75 {
                let items: Vec<NewPersonEnrolment> = (0..5)
                    .map(|k| NewPersonEnrolment {
                        processor_id: w.processor,
                        identity: PersonIdentity {
                            display_name: format!("Bulk {i}-{k}"),
                            ..Default::default()
                        },
                        scenario_id: w.scenario,
                        notice_id: None,
                        consent_channel: "import".into(),
                        consent_evidence: "paper form".into(),
                        device_id: Some(w.device),
                        sealed_template: t.clone(),
                    })
                    .collect();
                store.import_batch(&items, "crash-child").await.unwrap();
            } else if roll < 85 && !mine.is_empty() {
                let (p, _) = mine[rand::thread_rng().gen_range(0..mine.len())];
                // May be refused if withdrawn meanwhile: that is fine.
                let _ = store.enrol(&enrolment(&w, p, t), "crash-child").await;
            } else if roll < 95 && !mine.is_empty() {
                let (_, c) = mine.swap_remove(rand::thread_rng().gen_range(0..mine.len()));
                store
                    .withdraw_consent(c, "kiosk", "crash-child")
                    .await
                    .unwrap();
            } else if !mine.is_empty() {
                let (p, _) = mine.swap_remove(rand::thread_rng().gen_range(0..mine.len()));
                store.erase_person(p, "crash-child").await.unwrap();
            }
        }
    });
}

async fn run(db: Db, label: &str) {
    let w = world(&db.store).await;
    let spec = format!(
        "{}|{}|{}|{}|{}",
        db.url,
        hex::encode(db.master),
        w.processor,
        w.scenario,
        w.device
    );
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut repaired_kills = 0;
    let (mut orphans, mut dangling) = (0, 0);
    let mut max_templates = 0;
    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, &spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the child has opened the store, then let it enrol for a
        // random time before the kill (some kills land during open too).
        let early = rand::thread_rng().gen_bool(0.1);
        if !early {
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            while out.read_line(&mut line).unwrap() > 0 && !line.contains("CHILD-READY") {
                line.clear();
            }
        }
        std::thread::sleep(Duration::from_millis(
            rand::thread_rng().gen_range(if early { 5..60 } else { 1..120 }),
        ));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "child exited by itself: {status:?}");

        // As left on disk, before any repair.
        let raw = Store::open_for_inspection(&db.url, db.keys()).await;
        if let Ok(raw) = raw {
            let r = raw.check_integrity().await.unwrap();
            assert_eq!(r.templates_without_consent, 0, "{label} kill {kill}: {r:?}");
            assert_eq!(
                r.templates_of_erased_persons, 0,
                "{label} kill {kill}: {r:?}"
            );
            assert!(
                r.chain.is_intact(),
                "{label} kill {kill}: {:?}",
                r.chain.fault
            );
            if raw.backend() == Backend::Postgres {
                assert!(
                    r.is_ok(),
                    "{label} kill {kill}: PostgreSQL needs no repair: {r:?}"
                );
            }
            if !r.is_ok() {
                repaired_kills += 1;
                orphans += r.orphan_templates;
                dangling += r.links_without_template;
            }
            raw.close().await;
        }
        // Reopened (with repair): every invariant holds.
        let store = db.reopen().await;
        let r = store.check_integrity().await.unwrap();
        assert!(r.is_ok(), "{label} kill {kill}: {r:?}");
        assert_eq!(r.headcount_stored, r.headcount_actual);
        max_templates = max_templates.max(r.templates);
        store.close().await;
    }
    let store = db.reopen().await;
    let r = store.check_integrity().await.unwrap();
    println!(
        "{label}: {KILLS} SIGKILLs in {:.1}s; final: {} templates, headcount {}, {} audit records; \
         kills that left a half-committed two-file transaction to repair at open: {repaired_kills} \
         ({dangling} enrolment links whose blob had not committed, {orphans} blobs whose deletion had not committed)",
        started.elapsed().as_secs_f64(),
        r.templates,
        r.headcount_actual,
        r.chain.records
    );
    println!("{label}: before repair, every kill left: no template without consent, no template of an erased person, an intact audit chain");
    assert!(
        max_templates > 0,
        "the child never enrolled anyone: the test proved nothing"
    );
    assert!(r.chain.records > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_during_bulk_enrolment_sqlite() {
    run(Db::sqlite().await, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_during_bulk_enrolment_postgres() {
    if let Some(db) = Db::postgres().await {
        run(db, "postgres").await;
    }
}
