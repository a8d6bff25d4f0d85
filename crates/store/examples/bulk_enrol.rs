//! Bulk enrolment benchmark: N synthetic people (encrypted identity,
//! processing consent, sealed 512-d template, audit records) into a fresh
//! SQLite store, in transactions of `--batch` people; then a sample of
//! single-transaction enrolments; then the peer: the same sealed blobs
//! inserted with plain SQL into a bare SQLite file with the same pragmas.
//!
//! cargo run --release -p facegate-store --example bulk_enrol -- [--n 100000] [--batch 1000] [--single 2000] [--dir DIR]
//!
//! Prints figures; asserts nothing about speed.

use std::time::Instant;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use facegate_store::*;
use rand::{Rng, SeedableRng};
use sqlx::{Connection, Executor};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn sealed_template(rng: &mut rand::rngs::StdRng, cipher: &Aes256Gcm) -> Vec<u8> {
    let mut v: Vec<f32> = (0..512).map(|_| rng.gen::<f32>() * 2.0 - 1.0).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    let plain: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let nonce: [u8; 12] = rng.gen();
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
            .unwrap(),
    );
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = arg("--n", "100000").parse()?;
    let batch: usize = arg("--batch", "1000").parse()?;
    let single: usize = arg("--single", "2000").parse()?;
    let tmp = tempfile::tempdir()?;
    let dir = std::path::PathBuf::from(arg("--dir", &tmp.path().display().to_string()));
    let main = dir.join("bench.db");
    for f in SqliteFiles::for_main(&main).all_existing() {
        std::fs::remove_file(f)?;
    }
    let (keys, _) = StoreKeys::generate();
    let store = Store::open(&format!("sqlite:{}", main.display()), keys).await?;
    let p = store.add_processor("Bench Co.", None, "bench").await?;
    let s = store
        .put_scenario(
            &NewScenarioVersion {
                processor_id: p.id,
                name: "bench".into(),
                manifest: "purpose = \"bench\"\n".into(),
                template_retention_days: 365,
                inactivity_days: None,
            },
            "bench",
        )
        .await?;
    let d = store
        .add_device(
            &NewDevice {
                processor_id: p.id,
                scenario_id: Some(s.scenario_id),
                name: "gate".into(),
                placement: "public_area".into(),
                location: "bench".into(),
            },
            "bench",
        )
        .await?;
    let cipher = Aes256Gcm::new_from_slice(&[9u8; 32]).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // Pre-generate so that only the store is timed.
    let blobs: Vec<Vec<u8>> = (0..n).map(|_| sealed_template(&mut rng, &cipher)).collect();

    println!("bulk import: {n} people in transactions of {batch} (person + consent + sealed template + 3 audit records each), SQLite WAL, synchronous=FULL, secure_delete=ON");
    let t0 = Instant::now();
    let mut done = 0;
    for chunk in blobs.chunks(batch) {
        let items: Vec<NewPersonEnrolment> = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| NewPersonEnrolment {
                processor_id: p.id,
                identity: PersonIdentity {
                    display_name: format!("Bench Person {}", done + i),
                    contact: Some("+86 138 0000 0000".into()),
                    date_of_birth: None,
                },
                scenario_id: s.scenario_id,
                notice_id: None,
                consent_channel: "import".into(),
                consent_evidence: "bench".into(),
                device_id: Some(d.id),
                sealed_template: b.clone(),
            })
            .collect();
        store.import_batch(&items, "bench").await?;
        done += chunk.len();
        if done % (n / 10).max(1) < batch {
            eprintln!(
                "  {done}/{n} ({:.0}/s)",
                done as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    let bulk = t0.elapsed().as_secs_f64();
    println!(
        "  facegate-store import_batch: {n} in {bulk:.1} s = {:.0} people/s",
        n as f64 / bulk
    );

    // Single-transaction enrolments of existing consenting people.
    let mut ids = Vec::new();
    for i in 0..single {
        let pp = store
            .add_person(
                p.id,
                &PersonIdentity {
                    display_name: format!("Single {i}"),
                    ..Default::default()
                },
                "bench",
            )
            .await?;
        store
            .give_consent(
                &NewConsent {
                    person_id: pp.id,
                    scenario_id: s.scenario_id,
                    kind: ConsentKind::Processing,
                    notice_id: None,
                    given_by: ConsentGiver::Subject,
                    channel: "kiosk".into(),
                    evidence: "bench".into(),
                },
                "bench",
            )
            .await?;
        ids.push(pp.id);
    }
    let t1 = Instant::now();
    for (i, pid) in ids.iter().enumerate() {
        store
            .enrol(
                &Enrolment {
                    person_id: *pid,
                    scenario_id: s.scenario_id,
                    device_id: Some(d.id),
                    sealed_template: blobs[i % blobs.len()].clone(),
                },
                "bench",
            )
            .await?;
    }
    let one = t1.elapsed().as_secs_f64();
    println!("  facegate-store enrol (one transaction each, {single} into a store of {n}): {:.0} enrolments/s, {:.2} ms each", single as f64 / one, one * 1000.0 / single as f64);

    let t2 = Instant::now();
    let rep = store.check_integrity().await?;
    println!(
        "  check_integrity (chain of {} records, {} templates, headcount {}): {:.2} s, ok={}",
        rep.chain.records,
        rep.templates,
        rep.headcount_actual,
        t2.elapsed().as_secs_f64(),
        rep.is_ok()
    );
    store.close().await;

    // Peer: the same blobs with plain INSERTs, same pragmas, same batches.
    let peer = dir.join("peer.db");
    let _ = std::fs::remove_file(&peer);
    let mut c =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", peer.display())).await?;
    c.execute("PRAGMA journal_mode = WAL").await?;
    c.execute("PRAGMA synchronous = FULL").await?;
    c.execute("PRAGMA secure_delete = ON").await?;
    c.execute("CREATE TABLE t (id TEXT PRIMARY KEY, blob BLOB NOT NULL)")
        .await?;
    let t3 = Instant::now();
    for chunk in blobs.chunks(batch) {
        let mut tx = c.begin().await?;
        for b in chunk {
            sqlx::query("INSERT INTO t (id, blob) VALUES ($1, $2)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(b.as_slice())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    let raw = t3.elapsed().as_secs_f64();
    println!(
        "  peer, plain sqlx INSERT of the sealed blobs only: {n} in {raw:.1} s = {:.0} rows/s",
        n as f64 / raw
    );
    println!(
        "  ratio facegate-store / plain insert: {:.2}x the time",
        bulk / raw
    );
    Ok(())
}
