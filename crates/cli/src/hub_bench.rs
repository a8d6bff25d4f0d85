//! `facegate bench hub`: a hub instance on this machine (HTTPS on loopback,
//! PostgreSQL) and simulated sites as real HTTPS clients signing their
//! requests. Phase 1 uploads every site's enrolment events (event
//! throughput); phase 2 keeps every site polling at its interval and times
//! central withdrawals from the request to the last holding site's receipt
//! reaching the hub (propagation p50/p99). Prints figures; asserts nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use facegate_hub::keys::{self, PseudonymKey, SiteKey};
use facegate_hub::proto::*;
use facegate_hub::server::{router, HubConfig};
use facegate_hub::site::signed_post;
use facegate_hub::tls_http::{HubConn, HubUrl};
use sha2::{Digest, Sha256};
use uuid::Uuid;

struct Sim {
    id: Uuid,
    key: SiteKey,
    persons: Vec<Hash32>,
    /// Receipts owed on the next sync.
    owed: Vec<CommandReceipt>,
    seen: std::collections::HashSet<Uuid>,
}

/// Requests in flight: when sent and how many receipts are still due (a
/// receipt may reach the hub before the request's answer reaches the
/// bench: the count then goes negative until the request is entered).
type Pending = Arc<Mutex<HashMap<Uuid, (Option<Instant>, i64)>>>;

pub async fn run(
    url: &str,
    n_sites: usize,
    n_persons: usize,
    withdrawals: usize,
    interval: Duration,
    connections: usize,
) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("facegate-hub-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let (crt, key) = (tmp.join("hub.crt"), tmp.join("hub.key"));
    keys::write_self_signed(&crt, &key, &["localhost".into()]).map_err(crate::hub_cmd::herr)?;
    let db = facegate_hub::db::HubDb::open(url)
        .await
        .map_err(crate::hub_cmd::herr)?;
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hub_sites")
        .fetch_one(&db.pool)
        .await?;
    if have > 0 {
        bail!("the bench needs an empty hub database (found {have} sites)");
    }
    let pkey = PseudonymKey::from_bytes(rand::random());
    let token = Uuid::new_v4().to_string();
    let cfg = HubConfig {
        db: db.clone(),
        admin_token_sha256: hex::encode(Sha256::digest(token.as_bytes())),
        pseudonym_key: pkey.clone(),
        processor_name: "bench processor".into(),
        body_log: None,
        manifest_key: None,
    };
    let listener = facegate_hub::tls_http::bind("127.0.0.1:0".parse()?)
        .await
        .map_err(crate::hub_cmd::herr)?;
    let port = listener.local_addr()?.port();
    let tls = keys::server_tls(&crt, &key).map_err(crate::hub_cmd::herr)?;
    tokio::spawn(facegate_hub::tls_http::serve_tls(
        listener,
        tls,
        router(Arc::new(cfg)),
    ));
    let hub = HubUrl::parse(&format!("https://localhost:{port}")).map_err(crate::hub_cmd::herr)?;
    let ctls = keys::client_tls(&crt).map_err(crate::hub_cmd::herr)?;

    // Sites and persons: every person at one site, every fifth at a second
    // one too (the headcount must count them once).
    println!("bench hub: {n_sites} sites, {n_persons} persons, {connections} connections, sync every {} ms", interval.as_millis());
    let mut sims: Vec<Sim> = Vec::with_capacity(n_sites);
    for i in 0..n_sites {
        let k = SiteKey::generate();
        let id = db
            .add_site(&format!("site-{i}"), &k.public_hex(), &[])
            .await
            .map_err(crate::hub_cmd::herr)?;
        sims.push(Sim {
            id,
            key: k,
            persons: vec![],
            owed: vec![],
            seen: Default::default(),
        });
    }
    let mut expected_at: Vec<usize> = Vec::with_capacity(n_persons);
    for p in 0..n_persons {
        let h = pkey.pseudonym(&format!("person {p}"), None, None);
        sims[p % n_sites].persons.push(h);
        let mut at = 1;
        if p % 5 == 0 && n_sites > 1 {
            sims[(p * 7 + 1) % n_sites].persons.push(h);
            at += 1;
        }
        expected_at.push(at);
    }
    let total_events: usize = sims.iter().map(|s| s.persons.len()).sum();

    // Phase 1: upload.
    let sims: Vec<Arc<tokio::sync::Mutex<Sim>>> = sims
        .into_iter()
        .map(|s| Arc::new(tokio::sync::Mutex::new(s)))
        .collect();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..connections {
        let mine: Vec<_> = sims.iter().skip(w).step_by(connections).cloned().collect();
        let (hub, ctls) = (hub.clone(), ctls.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = HubConn::connect(&hub, ctls).await?;
            for s in mine {
                let s = s.lock().await;
                for (b, chunk) in s.persons.chunks(500).enumerate() {
                    let events: Vec<SiteEvent> = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, p)| SiteEvent {
                            seq: (b * 500 + i + 1) as i64,
                            record_hash: Hash32(Sha256::digest(p.0).into()),
                            kind: EventKind::FaceStored,
                            pseudonym: Some(*p),
                            still_holds: false,
                            at: chrono::Utc::now(),
                            event: facegate_hub::proto::EventWord::parse("enrol"),
                        })
                        .collect();
                    let head = events.last().map(|e| ChainHead {
                        seq: e.seq,
                        hash: e.record_hash,
                    });
                    let body = serde_json::to_vec(&SyncRequest {
                        events,
                        head,
                        recheck: vec![],
                        receipts: vec![],
                        consents: vec![],
                    })?;
                    let (st, out) = signed_post(&mut conn, &s.key, s.id, "/v1/sync", body).await;
                    if st.map_err(crate::hub_cmd::herr)? != 200 {
                        bail!("sync refused: {}", String::from_utf8_lossy(&out));
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let up = t0.elapsed();
    let hc = db.headcount().await.map_err(crate::hub_cmd::herr)?;
    println!(
        "events: {total_events} in {:.2} s = {:.0} events/s (signed HTTPS, batches of 500); headcount {} (expected {n_persons})",
        up.as_secs_f64(),
        total_events as f64 / up.as_secs_f64(),
        hc.headcount
    );

    // Phase 2: every site polls; time central withdrawals.
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let done: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let syncs = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..connections {
        let mine: Vec<_> = sims.iter().skip(w).step_by(connections).cloned().collect();
        let (hub, ctls, pending, done, stop, syncs) = (
            hub.clone(),
            ctls.clone(),
            pending.clone(),
            done.clone(),
            stop.clone(),
            syncs.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = HubConn::connect(&hub, ctls).await?;
            let mut next = Instant::now();
            // Spread the sites over the interval.
            tokio::time::sleep(interval.mul_f64(w as f64 / connections as f64)).await;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in &mine {
                    let mut s = s.lock().await;
                    loop {
                        let receipts = std::mem::take(&mut s.owed);
                        let body = serde_json::to_vec(&SyncRequest {
                            events: vec![],
                            head: None,
                            recheck: vec![],
                            receipts: receipts.clone(),
                            consents: vec![],
                        })?;
                        let (st, out) =
                            signed_post(&mut conn, &s.key, s.id, "/v1/sync", body).await;
                        syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if st.map_err(crate::hub_cmd::herr)? != 200 {
                            bail!("sync refused: {}", String::from_utf8_lossy(&out));
                        }
                        let resp: SyncResponse = serde_json::from_slice(&out)?;
                        // The hub has these receipts now.
                        for r in &receipts {
                            let mut p = pending.lock().unwrap();
                            let key = r.site_receipt_id.expect("request id carried");
                            let e = p.entry(key).or_insert((None, 0));
                            e.1 -= 1;
                            if let (Some(t), 0) = (e.0, e.1) {
                                done.lock().unwrap().push(t.elapsed());
                                p.remove(&key);
                            }
                        }
                        let mut fresh = false;
                        for c in resp.commands {
                            if s.seen.insert(c.id) {
                                fresh = true;
                                // A simulated site applies at once; the receipt
                                // carries the request id so the bench can time it.
                                s.owed.push(CommandReceipt {
                                    command_id: c.id,
                                    status: ReceiptStatus::Applied,
                                    templates_deleted: 1,
                                    site_receipt_id: Some(c.request_id),
                                    applied_at: chrono::Utc::now(),
                                });
                            }
                        }
                        if !fresh {
                            break;
                        }
                    }
                }
                next += interval;
                tokio::time::sleep_until(next.into()).await;
            }
            anyhow::Ok(())
        }));
    }
    let admin = HubConn::connect(&hub, ctls.clone())
        .await
        .map_err(crate::hub_cmd::herr)?;
    let admin = Arc::new(tokio::sync::Mutex::new(admin));
    let t1 = Instant::now();
    let s0 = syncs.load(std::sync::atomic::Ordering::Relaxed);
    for i in 0..withdrawals {
        let p = (i * 7919) % n_persons;
        let body = serde_json::json!({"kind": "withdraw", "display_name": format!("person {p}")});
        let t = Instant::now();
        let (st, out) = admin
            .lock()
            .await
            .send(
                "POST",
                "/v1/requests",
                &[("authorization", format!("Bearer {token}"))],
                body.to_string().into_bytes(),
            )
            .await
            .map_err(crate::hub_cmd::herr)?;
        if st != 200 {
            bail!("request refused: {}", String::from_utf8_lossy(&out));
        }
        let v: serde_json::Value = serde_json::from_slice(&out)?;
        let rid = Uuid::parse_str(v["id"].as_str().unwrap_or_default())?;
        let n = v["sites"].as_array().map(|a| a.len()).unwrap_or(0);
        if n != expected_at[p] {
            bail!(
                "person {p}: routed to {n} sites, expected {}",
                expected_at[p]
            );
        }
        {
            let mut p = pending.lock().unwrap();
            let e = p.entry(rid).or_insert((None, 0));
            e.0 = Some(t);
            e.1 += n as i64;
            if e.1 == 0 {
                done.lock().unwrap().push(t.elapsed());
                p.remove(&rid);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + interval * 10 + Duration::from_secs(30);
    while !pending.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = t1.elapsed();
    let s1 = syncs.load(std::sync::atomic::Ordering::Relaxed);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let mut d = done.lock().unwrap().clone();
    d.sort();
    let left = pending.lock().unwrap().len();
    let q = |f: f64| {
        d.get(
            ((d.len() as f64 * f).ceil() as usize)
                .saturating_sub(1)
                .min(d.len().saturating_sub(1)),
        )
        .map(|x| x.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
    };
    println!(
        "withdrawals: {} timed, {left} unfinished; propagation to every holding site's receipt: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        d.len(),
        q(0.5),
        q(0.99),
        d.last().map(|x| x.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
    );
    println!(
        "polling: {:.0} signed syncs/s from {n_sites} sites during phase 2",
        (s1 - s0) as f64 / wall.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
