//! Shared test set-up: a fresh store on SQLite (temp dir) and, when
//! FACEGATE_TEST_DATABASE_URL is set, on a fresh PostgreSQL database.
#![allow(dead_code)]

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use facegate_store::*;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

pub struct Db {
    pub store: Store,
    pub url: String,
    pub master: [u8; 32],
    _dir: Option<tempfile::TempDir>,
    /// The server's own URL, for a PostgreSQL database this test made and
    /// drops when it ends.
    pg_base: Option<String>,
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some(base) = self.pg_base.take() else {
            return;
        };
        let path = self.url.split('?').next().unwrap_or_default();
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        // A thread of its own: the test's runtime may be the one dropping.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                        let _ = sqlx::Executor::execute(
                            &mut c,
                            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                        )
                        .await;
                    }
                })
        })
        .join();
    }
}

impl Db {
    pub fn keys(&self) -> StoreKeys {
        StoreKeys::from_master(&self.master)
    }

    pub async fn reopen(&self) -> Store {
        Store::open(&self.url, self.keys()).await.expect("reopen")
    }

    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("facegate.db").display());
        let master: [u8; 32] = rand::random();
        let store = Store::open(&url, StoreKeys::from_master(&master))
            .await
            .expect("open sqlite");
        Db {
            store,
            url,
            master,
            _dir: Some(dir),
            pg_base: None,
        }
    }

    /// A fresh database on the test server, or `None` (with a printed skip
    /// line) when FACEGATE_TEST_DATABASE_URL is not set.
    pub async fn postgres() -> Option<Db> {
        let url = postgres_url()?;
        let master: [u8; 32] = rand::random();
        let store = Store::open(&url, StoreKeys::from_master(&master))
            .await
            .expect("open postgres");
        Some(Db {
            store,
            url,
            master,
            _dir: None,
            pg_base: std::env::var("FACEGATE_TEST_DATABASE_URL").ok(),
        })
    }
}

/// Create a fresh database on the test server and return its URL.
pub fn postgres_url() -> Option<String> {
    let Ok(base) = std::env::var("FACEGATE_TEST_DATABASE_URL") else {
        println!("SKIP postgres: FACEGATE_TEST_DATABASE_URL is not set (scripts/test.sh sets it)");
        return None;
    };
    let name = format!("fg_{}", Uuid::new_v4().simple());
    let rt = std::thread::spawn({
        let base = base.clone();
        let name = name.clone();
        move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    use sqlx::Connection;
                    let mut c = sqlx::PgConnection::connect(&base)
                        .await
                        .expect("connect to test server");
                    sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
                        .await
                        .expect("create database");
                })
        }
    });
    rt.join().unwrap();
    // Replace the database name (the path) in the URL.
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h.to_string(), format!("?{q}")),
        None => (base.clone(), String::new()),
    };
    let scheme_end = head.find("://").unwrap() + 3;
    let host_end = head[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(head.len());
    Some(format!("{}/{name}{query}", &head[..host_end]))
}

/// Run an async test body against SQLite and (if configured) PostgreSQL.
#[macro_export]
#[allow(clippy::crate_in_macro_def)]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::common::Db::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = crate::common::Db::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

/// A realistic synthetic face template: 512 f32, L2-normalised.
pub fn template_f32(seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..512).map(|_| rng.gen::<f32>() * 2.0 - 1.0).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// The same template quantised to int8.
pub fn template_i8(v: &[f32]) -> Vec<u8> {
    v.iter()
        .map(|x| ((x * 127.0 / 0.2).clamp(-127.0, 127.0) as i8) as u8)
        .collect()
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Seal template bytes the way the gallery does (AEAD under a biometric
/// key the store never sees).
pub fn seal(bio_key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    let c = Aes256Gcm::new_from_slice(bio_key).unwrap();
    let nonce: [u8; 12] = rand::random();
    let mut out = b"FGT1".to_vec();
    out.extend_from_slice(&nonce);
    out.extend(c.encrypt(Nonce::from_slice(&nonce), plain).unwrap());
    out
}

/// A processor, a scenario and a device.
pub struct World {
    pub processor: Uuid,
    pub scenario: Uuid,
    pub device: Uuid,
}

pub async fn world(store: &Store) -> World {
    let p = store
        .add_processor("Test Property Co.", Some("dpo@example.test"), "test")
        .await
        .unwrap();
    let (scenario, devices) = scenario_with_devices(store, p.id, "gate", &["north gate"]).await;
    World {
        processor: p.id,
        scenario,
        device: devices[0],
    }
}

/// A scenario `name` of `processor` with devices registered under `devices`
/// (as a deploy registers a manifest's): its id and theirs.
pub async fn scenario_with_devices(
    store: &Store,
    processor: Uuid,
    name: &str,
    devices: &[&str],
) -> (Uuid, Vec<Uuid>) {
    let s = store
        .put_scenario(
            &NewScenarioVersion {
                processor_id: processor,
                name: name.into(),
                manifest: "purpose = \"building access\"\n".into(),
                template_retention_days: 365,
                inactivity_days: Some(90),
            },
            "test",
        )
        .await
        .unwrap();
    let mut ids = vec![];
    for device in devices {
        let d = store
            .add_device(
                &NewDevice {
                    processor_id: processor,
                    scenario_id: Some(s.scenario_id),
                    name: (*device).into(),
                    placement: "public_area".into(),
                    location: "Building A".into(),
                },
                "test",
            )
            .await
            .unwrap();
        ids.push(d.id);
    }
    (s.scenario_id, ids)
}

/// A person with an active processing consent for the world's scenario.
pub async fn consenting_person(store: &Store, w: &World, name: &str) -> (Person, Consent) {
    let p = store
        .add_person(
            w.processor,
            &PersonIdentity {
                display_name: name.into(),
                contact: Some("13800000000".into()),
                date_of_birth: None,
            },
            "test",
        )
        .await
        .unwrap();
    let c = store
        .give_consent(
            &NewConsent {
                person_id: p.id,
                scenario_id: w.scenario,
                kind: ConsentKind::Processing,
                notice_id: None,
                given_by: ConsentGiver::Subject,
                channel: "kiosk".into(),
                evidence: "ui-event:consent-button".into(),
            },
            "test",
        )
        .await
        .unwrap();
    (p, c)
}

pub fn enrolment(w: &World, person: Uuid, sealed: Vec<u8>) -> Enrolment {
    Enrolment {
        person_id: person,
        scenario_id: w.scenario,
        device_id: Some(w.device),
        sealed_template: sealed,
    }
}
