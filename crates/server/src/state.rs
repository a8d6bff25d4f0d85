//! The shared state every handler receives: one struct, cloned cheaply.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use facegate_core::{deploy, CaptureLimits, Core, CoreConfig, SystemClock};
use facegate_store::{AuditHead, ChainReport, StoreKeys};

use crate::auth::Auth;
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
    /// The manifest as text, in place of `scenario` (a site attached to a
    /// hub starts with the newest hub-signed manifest its store holds).
    pub manifest_text: Option<String>,
    pub limits: Limits,
    /// ONNX Runtime threads per model call.
    pub engine_threads: usize,
    /// Per-model ONNX Runtime tuning (the CLI turns it off with
    /// `FACEGATE_ORT_TUNING=plain`): [`facegate_vision::EngineOptions::ort_tuning`].
    pub engine_ort_tuning: bool,
    /// Subnormals flushed (the CLI keeps them with `FACEGATE_DENORMALS=keep`):
    /// [`facegate_vision::EngineOptions::flush_denormals`].
    pub engine_flush_denormals: bool,
    /// Which embedding models decide (the CLI reads
    /// `FACEGATE_RECOGNITION=first|pair|three`; default the pair):
    /// [`facegate_core::Recognition`].
    pub recognition: facegate_core::Recognition,
    /// The identity key (`FACEGATE_IDENTITY_KEY` or `--key-file`, resolved
    /// by the caller); default: `data_dir/identity.key`, created if missing.
    pub identity_key: Option<StoreKeys>,
    /// The template KEK (the CLI reads `FACEGATE_KEK` once); default: the
    /// data directory's `template.kek`, created if missing.
    pub kek: Option<facegate_gallery::Kek>,
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            scenario: None,
            manifest_text: None,
            limits: Limits::default(),
            engine_threads: 1,
            engine_ort_tuning: true,
            engine_flush_denormals: true,
            recognition: facegate_core::Recognition::default(),
            identity_key: None,
            kek: None,
        }
    }
}

pub struct Inner {
    pub config: ServerConfig,
    pub auth: Auth,
    pub metrics: Arc<Metrics>,
    pub per_key: RateLimiter,
    /// The decision core: store, engine, key ring, scenarios, galleries.
    pub core: Arc<Core>,
    /// The last full audit-chain verification and the head it was made at
    /// (see [`crate::api::console::chain_report`]).
    pub chain_checked: Mutex<Option<(AuditHead, ChainReport)>>,
}

/// Handlers reach the core's parts (`s.store`, `s.scenario(..)`) directly.
impl std::ops::Deref for Inner {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
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
    /// Open (or create) everything under `config.data_dir`: the core (keys,
    /// store, scenario, notice, PIA, devices, galleries, face engine) and
    /// the HTTP side (keys, metrics, rate limits).
    pub async fn open(config: ServerConfig) -> Result<Self, ApiError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let manifest = match (&config.manifest_text, &config.scenario) {
            (Some(m), _) => m.clone(),
            (None, Some(p)) => std::fs::read_to_string(p).map_err(|e| {
                ApiError::bad(
                    format!("无法读取场景清单 {}：{e}", p.display()),
                    format!("cannot read scenario manifest {}: {e}", p.display()),
                )
            })?,
            (None, None) => deploy::demo_manifest(),
        };
        let metrics = Arc::new(Metrics::new());
        let core = Core::open(
            CoreConfig {
                data_dir: dir.clone(),
                database_url: config.database_url.clone(),
                identity_key: config.identity_key.clone(),
                kek: config.kek.clone(),
                manifest,
                engine_threads: config.engine_threads,
                engine_ort_tuning: config.engine_ort_tuning,
                engine_flush_denormals: config.engine_flush_denormals,
                recognition: config.recognition,
                capture: CaptureLimits {
                    max_image_bytes: config.limits.max_body_bytes,
                    max_image_pixels: config.limits.max_image_pixels,
                },
            },
            Arc::new(SystemClock),
            metrics.clone(),
        )
        .await?;
        let auth = Auth::new(core.store.clone());
        auth.import_legacy_file(&dir.join("keys.json")).await?;
        let limits = config.limits.clone();
        Ok(AppState(Arc::new(Inner {
            auth,
            metrics,
            per_key: RateLimiter::new(limits.per_key_per_minute),
            core: Arc::new(core),
            chain_checked: Mutex::new(None),
            config,
        })))
    }
}
