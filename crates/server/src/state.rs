//! The shared state every handler receives: one struct, cloned cheaply.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use facegate_gallery::{Gallery, Kek, Keyring};
use facegate_store::{AuditHead, ChainReport, Store, StoreKeys};
use uuid::Uuid;

use crate::auth::Auth;
use crate::deploy::{self, Deployed};
use crate::error::ApiError;
use crate::limits::{Limits, RateLimiter};
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
    /// The identity key (`FACEGATE_IDENTITY_KEY` or `--key-file`, resolved
    /// by the caller); default: `data_dir/identity.key`, created if missing.
    pub identity_key: Option<StoreKeys>,
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            scenario: None,
            limits: Limits::default(),
            engine_threads: 1,
            identity_key: None,
        }
    }
}

pub struct Inner {
    pub config: ServerConfig,
    pub auth: Auth,
    pub metrics: Metrics,
    pub per_key: RateLimiter,
    pub store: Store,
    pub engine: Arc<facegate_vision::Engine>,
    pub keyring: Keyring,
    /// Ids of the data keys already in the store's `wrapped_keys` table (the
    /// one place they are kept): a key is written there only when a seal
    /// used one not yet stored (see [`crate::pipeline::persist_data_key`]).
    pub keys_in_store: Mutex<HashSet<Uuid>>,
    pub processor_id: Uuid,
    /// Deployed scenarios by manifest id.
    pub scenarios: RwLock<Vec<Arc<Deployed>>>,
    /// The manifest id of the scenario a request without `scenario` goes
    /// to: the one `serve` started with, explicitly; uploads never change it.
    pub default_scenario: String,
    /// One gallery per scenario (store scenario id).
    pub galleries: RwLock<HashMap<Uuid, Gallery>>,
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
        // Identity key (store) and template KEK (gallery): separate keys.
        let store_keys = match config.identity_key.clone() {
            Some(k) => k,
            None => {
                let id_key = dir.join("identity.key");
                if id_key.exists() {
                    StoreKeys::from_file(&id_key)
                } else {
                    StoreKeys::create_file(&id_key)
                }
                .map_err(ApiError::internal)?
            }
        };
        let url = config
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", dir.join("facegate.db").display()));
        let store = Store::open(&url, store_keys)
            .await
            .map_err(ApiError::internal)?;
        let auth = Auth::new(store.clone());
        auth.import_legacy_file(&dir.join("keys.json")).await?;
        let kek = Kek::from_env_or_file(&dir.join("template.kek")).map_err(ApiError::internal)?;
        let keyring = load_keyring(&store, kek, &dir.join("keyring.bin")).await?;

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
            store,
            engine: Arc::new(engine),
            keys_in_store: Mutex::new(keyring.wrapped_keys().iter().map(|w| w.id).collect()),
            keyring,
            processor_id,
            default_scenario: d.scenario.id.clone(),
            scenarios: RwLock::new(vec![Arc::new(d)]),
            galleries: RwLock::new(galleries),
            chain_checked: Mutex::new(None),
            config,
        })))
    }

    /// The scenario with manifest id `id`, or the default one.
    pub fn scenario(&self, id: Option<&str>) -> Result<Arc<Deployed>, ApiError> {
        let all = self.scenarios.read().unwrap();
        let id = id.unwrap_or(&self.default_scenario);
        all.iter()
            .find(|d| d.scenario.id == id)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("scenario {id}")))
    }

    /// The store id of a device (manifest id), in any deployed scenario.
    pub fn device_uuid(&self, device: &str) -> Option<Uuid> {
        self.scenarios
            .read()
            .unwrap()
            .iter()
            .find_map(|d| d.devices.get(device).copied())
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

/// The key ring from the store's `wrapped_keys` table, the one place data
/// keys are kept. A `keyring.bin` written by an earlier version is moved
/// into the store once and removed.
async fn load_keyring(store: &Store, kek: Kek, legacy: &Path) -> Result<Keyring, ApiError> {
    use facegate_gallery::WrappedKey;
    if legacy.exists() {
        let old = Keyring::load(legacy, kek.clone()).map_err(ApiError::internal)?;
        let have: HashSet<Uuid> = store
            .wrapped_keys()
            .await?
            .into_iter()
            .map(|w| w.key_id)
            .collect();
        for w in old.wrapped_keys() {
            if !have.contains(&w.id) {
                store
                    .put_wrapped_key(w.id, &w.to_bytes(), "server:import-keyring")
                    .await?;
            }
        }
        std::fs::remove_file(legacy).map_err(ApiError::internal)?;
    }
    let mut keys = Vec::new();
    for r in store.wrapped_keys().await? {
        keys.push(WrappedKey::from_bytes(&r.wrapped).map_err(ApiError::internal)?);
    }
    Keyring::with_wrapped(kek, &keys).map_err(ApiError::internal)
}
