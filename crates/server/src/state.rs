//! The shared state every handler receives: one struct, cloned cheaply.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use facegate_gallery::{Gallery, Kek, Keyring};
use facegate_store::{AuditHead, ChainReport, Store, StoreKeys};
use uuid::Uuid;

use crate::auth::Auth;
use crate::deploy::{self, Deployed};
use crate::error::ApiError;
use crate::limits::{FailureLock, Limits, RateLimiter};
use crate::metrics::Metrics;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the SQLite files, the key files and `keys.json` live.
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…`; default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// A scenario manifest (TOML); default: the built-in demo (小区门禁).
    pub scenario: Option<PathBuf>,
    pub limits: Limits,
    /// ONNX Runtime threads per model call.
    pub engine_threads: usize,
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            scenario: None,
            limits: Limits::default(),
            engine_threads: 1,
        }
    }
}

pub struct Inner {
    pub config: ServerConfig,
    pub auth: Auth,
    pub metrics: Metrics,
    pub per_key: RateLimiter,
    /// Failed alternative credentials (PINs), per person.
    pub credentials: FailureLock,
    /// Wrong portal codes, counted across all callers.
    pub portal_failures: FailureLock,
    pub store: Store,
    pub engine: Arc<facegate_vision::Engine>,
    pub keyring: Keyring,
    pub keyring_path: PathBuf,
    /// Ids of the data keys `keyring_path` holds: the keyring file is
    /// rewritten only when a seal used a key not yet in it (see
    /// [`crate::pipeline::persist_data_key`]).
    pub keys_on_disk: Mutex<HashSet<Uuid>>,
    pub processor_id: Uuid,
    /// Deployed scenarios by manifest id; the first is the default.
    pub scenarios: RwLock<Vec<Arc<Deployed>>>,
    /// One gallery per scenario (store scenario id).
    pub galleries: RwLock<HashMap<Uuid, Gallery>>,
    /// When a person last declined face, per scenario (R17 quiet period).
    pub declines: Mutex<HashMap<(Uuid, Uuid), DateTime<Utc>>>,
    /// The last full audit-chain verification and the head it was made at
    /// (see [`crate::api::console::chain_report`]).
    pub chain_checked: Mutex<Option<(AuditHead, ChainReport)>>,
}

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Open (or create) everything under `config.data_dir`: keys, store,
    /// scenario, notice, PIA, devices, galleries and the face engine.
    pub async fn open(config: ServerConfig) -> Result<Self, ApiError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let auth = Auth::open(Some(&dir.join("keys.json"))).map_err(ApiError::internal)?;

        // Identity key (store) and template KEK (gallery): separate keys.
        let id_key = dir.join("identity.key");
        let store_keys = if id_key.exists() {
            StoreKeys::from_file(&id_key)
        } else {
            StoreKeys::create_file(&id_key)
        }
        .map_err(ApiError::internal)?;
        let url = config
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", dir.join("facegate.db").display()));
        let store = Store::open(&url, store_keys)
            .await
            .map_err(ApiError::internal)?;
        let kek = Kek::from_env_or_file(&dir.join("template.kek")).map_err(ApiError::internal)?;
        let keyring_path = dir.join("keyring.bin");
        let keyring = if keyring_path.exists() {
            Keyring::load(&keyring_path, kek).map_err(ApiError::internal)?
        } else {
            Keyring::new(kek)
        };

        let processor_id = match store
            .processors()
            .await
            .map_err(ApiError::internal)?
            .first()
        {
            Some(p) => p.id,
            None => {
                store
                    .add_processor("facegate processor", None, "server:init")
                    .await
                    .map_err(ApiError::internal)?
                    .id
            }
        };
        let manifest = match &config.scenario {
            Some(p) => std::fs::read_to_string(p).map_err(|e| {
                ApiError::bad(
                    format!("无法读取场景清单 {}：{e}", p.display()),
                    format!("cannot read scenario manifest {}: {e}", p.display()),
                )
            })?,
            None => deploy::demo_manifest(),
        };
        let d = deploy::deploy(&store, processor_id, &manifest, &dir).await?;
        let gallery = deploy::load_gallery(&store, &keyring, d.store_id).await?;
        let threads = config.engine_threads.max(1);
        let engine = tokio::task::spawn_blocking(move || {
            facegate_vision::Engine::new(facegate_vision::EngineOptions {
                intra_threads: threads,
                ..Default::default()
            })
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;

        let limits = config.limits.clone();
        let mut galleries = HashMap::new();
        galleries.insert(d.store_id, gallery);
        Ok(AppState(Arc::new(Inner {
            auth,
            metrics: Metrics::new(),
            per_key: RateLimiter::new(limits.per_key_per_minute),
            credentials: FailureLock::new(limits.credential_failures, Duration::from_secs(15 * 60)),
            portal_failures: FailureLock::new(30, Duration::from_secs(15 * 60)),
            store,
            engine: Arc::new(engine),
            keys_on_disk: Mutex::new(keyring.wrapped_keys().iter().map(|w| w.id).collect()),
            keyring,
            keyring_path,
            processor_id,
            scenarios: RwLock::new(vec![Arc::new(d)]),
            galleries: RwLock::new(galleries),
            declines: Mutex::new(HashMap::new()),
            chain_checked: Mutex::new(None),
            config,
        })))
    }

    /// The scenario with manifest id `id`, or the default one.
    pub fn scenario(&self, id: Option<&str>) -> Result<Arc<Deployed>, ApiError> {
        let all = self.scenarios.read().unwrap();
        match id {
            None => all.first().cloned(),
            Some(id) => all.iter().find(|d| d.scenario.id == id).cloned(),
        }
        .ok_or_else(|| ApiError::NotFound(format!("scenario {}", id.unwrap_or("(default)"))))
    }

    /// The deployed scenario with store id `id`.
    pub fn scenario_by_store_id(&self, id: Uuid) -> Option<Arc<Deployed>> {
        self.scenarios
            .read()
            .unwrap()
            .iter()
            .find(|d| d.store_id == id)
            .cloned()
    }
}
