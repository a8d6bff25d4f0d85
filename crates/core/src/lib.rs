//! facegate-core: the decision core. It owns the store, the face engine, the
//! key ring, the deployed scenarios and their in-memory galleries (kept in
//! step with the store inside this one type), and a clock. Operations here
//! decide, act and write their audit record in one place; the HTTP server
//! and the CLI call them and only translate requests and answers.
//!
//! Every piece of state a decision depends on (consents, declines, portal
//! codes and sessions, lock-out counters, API keys, wrapped data keys) lives
//! in the store, so re-opening a [`Core`] on the same database, or a second
//! process on the same PostgreSQL database, changes nothing.
//!
//! No HTTP and no environment variables: callers pass values
//! ([`CoreConfig`]).

pub mod cards;
pub mod deploy;
pub mod devices;
pub mod evidence;
pub mod hub_trust;
pub mod liveness;
pub mod ops;
pub mod pipeline;
pub mod receipts;
pub mod requests;
pub mod residents;
pub mod staffed;
pub mod stats;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Duration, Utc};
use facegate_gallery::{FusedGallery, Kek, Keyring, PersonId, SealedTemplate, WrappedKey};
use facegate_policy as policy;
use facegate_store::{Attempt, AttemptPolicy, Store, StoreError, StoreKeys};
use uuid::Uuid;

pub use deploy::Deployed;

/// The store a data directory opens: `database_url` when given, else the
/// directory's own SQLite file. One rule for the core and for anything that
/// reads the same store before it starts (a hub-attached site's bootstrap).
pub fn store_url(data_dir: &std::path::Path, database_url: Option<&str>) -> String {
    database_url.map_or_else(
        || format!("sqlite:{}", data_dir.join("facegate.db").display()),
        str::to_string,
    )
}

/// What a core operation can answer besides success. The server maps each
/// variant to one HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A rule of the Measures refuses (names R-ID and article, zh and en).
    #[error("{0}")]
    Refused(policy::Refusal),
    /// The caller may not do this (not a rule of the Measures).
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The thing is no longer in a state that allows this (answered,
    /// decided, expired).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("bad request: {en}")]
    BadRequest { zh: String, en: String },
    #[error("too large: {0}")]
    TooLarge(String),
    /// Too many failed attempts: locked until then.
    #[error("locked until {until}")]
    Locked { until: DateTime<Utc> },
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn bad(zh: impl Into<String>, en: impl Into<String>) -> Self {
        CoreError::BadRequest {
            zh: zh.into(),
            en: en.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        CoreError::Internal(e.to_string())
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused(r) => CoreError::Refused(r),
            StoreError::NotFound { kind, .. } => CoreError::NotFound(kind.to_string()),
            StoreError::Invalid(m) => {
                CoreError::bad(format!("输入无效：{m}"), format!("invalid input: {m}"))
            }
            e => CoreError::internal(e),
        }
    }
}

impl From<policy::Refusal> for CoreError {
    fn from(r: policy::Refusal) -> Self {
        CoreError::Refused(r)
    }
}

pub type CoreResult<T> = Result<T, CoreError>;

/// Where "now" comes from: the system clock, or one a test moves.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is put (tests, the model-based test).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(at))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Counts what happens (the server exports them as metrics).
pub trait Observer: Send + Sync {
    fn inc(&self, name: &str, labels: &[(&str, &str)]);
}

/// An observer that counts nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn inc(&self, _name: &str, _labels: &[(&str, &str)]) {}
}

/// Limits on one capture request.
#[derive(Debug, Clone, Copy)]
pub struct CaptureLimits {
    /// Largest decoded image, in bytes.
    pub max_image_bytes: usize,
    /// Largest image, in pixels (checked from the header before decoding).
    pub max_image_pixels: u64,
}

impl Default for CaptureLimits {
    fn default() -> Self {
        CaptureLimits {
            max_image_bytes: 8 * 1024 * 1024,
            max_image_pixels: 4096 * 4096,
        }
    }
}

/// How to open a core: values only.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Directory for the key files the store does not hold (template KEK)
    /// and the device map.
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…`; default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The identity key; default: `data_dir/identity.key`, created if missing.
    pub identity_key: Option<StoreKeys>,
    /// The template KEK; default: `data_dir/template.kek`, created if missing.
    pub kek: Option<Kek>,
    /// The manifest (TOML) of the default scenario.
    pub manifest: String,
    /// ONNX Runtime threads per model call.
    pub engine_threads: usize,
    /// [`facegate_vision::EngineOptions::ort_tuning`].
    pub engine_ort_tuning: bool,
    /// [`facegate_vision::EngineOptions::flush_denormals`].
    pub engine_flush_denormals: bool,
    /// Which embedding models decide ([`Recognition`]; default the pair).
    pub recognition: Recognition,
    /// Limits on one capture request.
    pub capture: CaptureLimits,
}

/// Which embedding models a deployment enrols and decides with. Templates
/// of every kind stay matchable whichever is chosen
/// ([`facegate_gallery::FusedGallery::add`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Recognition {
    /// The first model alone (about 1.5 ms less per enrolment; no fusion).
    First,
    /// The first model fused with dlib's ResNet descriptor (MIT and CC0
    /// weights, which a company may ship): templates carry both
    /// embeddings, decisions use the calibrated pair fusion as a cascade
    /// (the second model runs only where the first model's score leaves
    /// the answer open).
    #[default]
    Pair,
    /// The pair plus MobileFaceNet. Its weights were trained on research-only
    /// data (see the README's model licences): for evaluation, not for a
    /// deployment that must use weights a company may ship.
    Three,
}

impl Recognition {
    pub const ALL: [Recognition; 3] = [Recognition::First, Recognition::Pair, Recognition::Three];

    pub fn as_str(self) -> &'static str {
        match self {
            Recognition::First => "first",
            Recognition::Pair => "pair",
            Recognition::Three => "three",
        }
    }

    pub fn parse(s: &str) -> Option<Recognition> {
        Recognition::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// One line for an operator: what decides.
    pub fn describe(self) -> &'static str {
        match self {
            Recognition::First => "first: the first embedding model alone",
            Recognition::Pair => {
                "pair: the first model fused with dlib's ResNet (the second runs only where the first leaves the answer open)"
            }
            Recognition::Three => {
                "three: the pair plus MobileFaceNet (research-only weights: see the README's model licences)"
            }
        }
    }
}

/// A device a request comes from: its manifest id, and the scenario (store
/// id) its key is bound to. Two scenarios may each have a device of the same
/// name; a device key acts only as the one of its own scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAt<'a> {
    pub name: &'a str,
    /// `None`: the one deployed device of that name, if only one scenario
    /// has it (the model-based test's single scenario; the server always
    /// binds a device key's scenario).
    pub scenario: Option<Uuid>,
}

/// How recently a device must have verified a person to issue their portal code.
pub const PORTAL_CODE_CHECK_SECONDS: i64 = 60;
/// How recently a device must have verified a person to act for them (withdrawal).
pub const DEVICE_SCOPE_SECONDS: i64 = 300;

/// The decision core. Cheap to share behind an `Arc`.
pub struct Core {
    pub store: Store,
    pub engine: Arc<facegate_vision::Engine>,
    pub keyring: Keyring,
    pub processor_id: Uuid,
    /// Deployed scenarios by manifest id.
    pub scenarios: RwLock<Vec<Arc<Deployed>>>,
    /// The manifest id of the scenario a request without `scenario` goes
    /// to: the one the core was opened with, explicitly; uploads never
    /// change it.
    pub default_scenario: String,
    /// One gallery per scenario (store scenario id), in step with the store:
    /// before each face decision the store's template generation is
    /// compared with the one the gallery was brought to, and what another
    /// instance (or a sweep) added or deleted is applied
    /// ([`Core::sync_gallery`]).
    pub galleries: RwLock<HashMap<Uuid, FusedGallery>>,
    /// Which models decide; the galleries are made for it.
    pub recognition: Recognition,
    /// What each gallery holds from the store: generation and link → person.
    gallery_sync: tokio::sync::Mutex<HashMap<Uuid, GallerySync>>,
    /// The store's scenario-version count the deployed scenarios reflect
    /// ([`Core::sync_scenarios`]; a cache of the store, rebuilt at start).
    scenarios_seen: tokio::sync::Mutex<i64>,
    pub clock: Arc<dyn Clock>,
    pub observer: Arc<dyn Observer>,
    pub limits: CaptureLimits,
    pub data_dir: PathBuf,
    /// Signs receipts with the deployment's key (derived from the identity key).
    pub receipts: receipts::ReceiptSigner,
}

impl Core {
    /// Open (or create) the store, keys, default scenario, galleries and the
    /// face engine.
    pub async fn open(
        config: CoreConfig,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
    ) -> CoreResult<Core> {
        Core::open_with_engine(config, clock, observer, None).await
    }

    /// [`Core::open`] reusing a face engine already loaded (a restart in
    /// tests, several cores in one process).
    pub async fn open_with_engine(
        config: CoreConfig,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
        engine: Option<Arc<facegate_vision::Engine>>,
    ) -> CoreResult<Core> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(CoreError::internal)?;
        let store_keys = match config.identity_key.clone() {
            Some(k) => k,
            None => {
                let id_key = dir.join("identity.key");
                if id_key.exists() {
                    StoreKeys::from_file(&id_key)
                } else {
                    StoreKeys::create_file(&id_key)
                }
                .map_err(CoreError::internal)?
            }
        };
        let receipt_signer = receipts::ReceiptSigner::from_seed(&store_keys.receipt_signing_seed());
        let url = store_url(&dir, config.database_url.as_deref());
        let store = Store::open(&url, store_keys)
            .await
            .map_err(CoreError::internal)?;
        let kek = match config.kek.clone() {
            Some(k) => k,
            None => Kek::load_or_create(&dir.join("template.kek")).map_err(CoreError::internal)?,
        };
        let keyring = load_keyring(&store, kek, &dir.join("keyring.bin")).await?;
        let processor_id = match store.processors().await?.first() {
            Some(p) => p.id,
            None => {
                store
                    .add_processor("facegate processor", None, "server:init")
                    .await?
                    .id
            }
        };
        let manifest = devices::startup_manifest(&store, processor_id, &config.manifest).await?;
        let d = deploy::deploy(&store, processor_id, &manifest, &dir).await?;
        // Every other scenario deployed here before runs again (state a
        // restart lost would stop its gates and its retention sweeps).
        let mut deployed = vec![Arc::new(d)];
        for (name, text) in
            devices::startup_others(&store, processor_id, &deployed[0].scenario.id).await?
        {
            match deploy::deploy(&store, processor_id, &text, &dir).await {
                Ok(o) => deployed.push(Arc::new(o)),
                Err(e) => tracing::warn!(
                    scenario = name,
                    "a stored scenario no longer deploys ({e}); its devices are refused until it is uploaded again"
                ),
            }
        }
        let engine = match engine {
            Some(e) => e,
            None => {
                let opts = facegate_vision::EngineOptions {
                    intra_threads: config.engine_threads.max(1),
                    ort_tuning: config.engine_ort_tuning,
                    flush_denormals: config.engine_flush_denormals,
                    second_embedding: config.recognition != Recognition::First,
                    third_embedding: config.recognition == Recognition::Three,
                    // Run on demand: enrolment always, a decision when the
                    // gallery's cascade asks (FusedGallery::verify_cascade).
                    defer_other_embeddings: true,
                    ..Default::default()
                };
                Arc::new(
                    tokio::task::spawn_blocking(move || facegate_vision::Engine::new(opts))
                        .await
                        .map_err(CoreError::internal)?
                        .map_err(CoreError::internal)?,
                )
            }
        };
        let sids: Vec<Uuid> = deployed.iter().map(|d| d.store_id).collect();
        let seen = store.scenario_version_count().await?;
        let core = Core {
            store,
            engine,
            keyring,
            processor_id,
            default_scenario: deployed[0].scenario.id.clone(),
            scenarios: RwLock::new(deployed),
            galleries: RwLock::new(HashMap::new()),
            recognition: config.recognition,
            gallery_sync: Default::default(),
            scenarios_seen: tokio::sync::Mutex::new(seen),
            clock,
            observer,
            limits: config.capture,
            data_dir: dir,
            receipts: receipt_signer,
        };
        for sid in sids {
            core.sync_gallery(sid).await?;
        }
        Ok(core)
    }

    /// The signed receipt of a stored decision: what it states and its code.
    /// Made again from the store on every call (Ed25519 is deterministic, so
    /// the code is the same each time and nothing but the event is stored).
    pub fn receipt(&self, ev: &facegate_store::VerificationEvent) -> (receipts::Receipt, String) {
        let scenario = self.scenario_by_store_id(ev.event.scenario_id);
        let device = ev.event.device_id.map(|d| {
            scenario
                .as_ref()
                .and_then(|s| s.device_names.get(&d).cloned())
                .unwrap_or_else(|| d.to_string())
        });
        let r = receipts::Receipt {
            receipt_id: ev.id,
            at: chrono::TimeZone::timestamp_opt(&Utc, ev.at.timestamp(), 0)
                .single()
                .unwrap_or(ev.at),
            decision: ev.event.result.clone(),
            method: ev.event.method.clone(),
            scenario: scenario
                .map(|s| s.scenario.id.clone())
                .unwrap_or_else(|| ev.event.scenario_id.to_string()),
            device,
            refusal_rule: ev.event.refusal_rule.clone(),
            person: ev.event.person_id.map(|p| self.receipts.pseudonym(p)),
        };
        let code = self.receipts.sign(&r);
        (r, code)
    }

    /// Count one event.
    pub fn observe(&self, name: &str, labels: &[(&str, &str)]) {
        self.observer.inc(name, labels);
    }

    /// Now, by the core's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The scenario with manifest id `id`, or the default one.
    pub fn scenario(&self, id: Option<&str>) -> CoreResult<Arc<Deployed>> {
        let all = self.scenarios.read().unwrap();
        let id = id.unwrap_or(&self.default_scenario);
        all.iter()
            .find(|d| d.scenario.id == id)
            .cloned()
            .ok_or_else(|| CoreError::NotFound(format!("scenario {id}")))
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

    /// The store id of device `name` for an operator's act on it (its
    /// signage photo): in `scenario` when named; otherwise in the one
    /// deployed scenario that has a device of that name. A name that several
    /// scenarios share is refused until the caller names the scenario, so
    /// the act never lands on a same-named gate of another scenario.
    /// Answers the scenario's id and the device's store id.
    pub fn device_named(&self, name: &str, scenario: Option<&str>) -> CoreResult<(String, Uuid)> {
        if let Some(id) = scenario {
            let d = self.scenario(Some(id))?;
            return Ok((d.scenario.id.clone(), d.device_id(name)?));
        }
        match self.devices_named(name).as_slice() {
            [] => Err(CoreError::NotFound(format!("device {name}"))),
            [one] => Ok(one.clone()),
            many => {
                let list = many
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                Err(CoreError::bad(
                    format!("设备 {name} 同时属于多个场景（{list}），请用 scenario 参数指明场景"),
                    format!("device {name} is in several scenarios ({list}): name one with the scenario parameter"),
                ))
            }
        }
    }

    /// Every deployed scenario's device called `name`: (scenario id, store id).
    fn devices_named(&self, name: &str) -> Vec<(String, Uuid)> {
        self.scenarios
            .read()
            .unwrap()
            .iter()
            .filter_map(|d| d.devices.get(name).map(|u| (d.scenario.id.clone(), *u)))
            .collect()
    }

    /// The store id of a request's device: the one of its key's scenario
    /// ([`DeviceAt`]), not a same-named device of another scenario.
    /// Without a scenario, the one deployed device of that name; a name
    /// several scenarios share is none of them (never the first one found).
    pub fn device_at(&self, device: DeviceAt<'_>) -> Option<Uuid> {
        let Some(sid) = device.scenario else {
            return match self.devices_named(device.name).as_slice() {
                [(_, u)] => Some(*u),
                _ => None,
            };
        };
        self.scenario_by_store_id(sid)
            .and_then(|d| d.devices.get(device.name).copied())
    }

    /// Deploy a manifest an operator of this site authored (console upload,
    /// a device added or revoked): refused while the site is attached to a
    /// hub, whose signed manifests are then the only ones deployed (issue
    /// 16). Decided here, so every operator path (API, console, CLI) gets
    /// the same answer.
    pub async fn deploy_local(&self, manifest: &str) -> CoreResult<Arc<Deployed>> {
        if self.store.hub_manifest_key().await?.is_some() {
            return Err(CoreError::Conflict(
                "this site is attached to a hub: scenario manifests are deployed only as the hub signs and pushes them (本站点已接入管理中心：场景清单仅接受管理中心签名下发的版本)".into(),
            ));
        }
        let manifest = devices::with_base_mark(&self.store, self.processor_id, manifest).await?;
        self.deploy_scenario(&manifest).await
    }

    /// Bring the deployed scenarios in step with the store: where another
    /// instance on the same store deployed a version (an upload, a device
    /// added or revoked, a hub manifest it checked), deploy it here too, so
    /// no instance keeps deciding under a manifest, notice or liveness level
    /// that was replaced. One count query when nothing changed; called
    /// before every API request.
    pub async fn sync_scenarios(&self) -> CoreResult<()> {
        let n = self.store.scenario_version_count().await?;
        let mut seen = self.scenarios_seen.lock().await;
        if *seen == n {
            return Ok(());
        }
        let hub = hub_trust::HubTrust::load(&self.store).await?;
        for v in self.store.scenarios().await? {
            if v.processor_id != self.processor_id {
                continue;
            }
            let running = self
                .scenario(Some(&v.name))
                .ok()
                .map(|d| (d.store_id, d.version));
            if running == Some((v.scenario_id, v.version)) {
                continue;
            }
            if !hub.may_run(&v.name, &v.manifest) {
                tracing::warn!(
                    scenario = v.name,
                    version = v.version,
                    "a stored version of a hub-governed scenario is not the hub's signed manifest under the pinned key; not deployed here"
                );
                continue;
            }
            if let Err(e) = self.deploy_scenario(&v.manifest).await {
                tracing::warn!(
                    scenario = v.name,
                    "a version deployed by another instance does not deploy here: {e}"
                );
            }
        }
        *seen = n;
        Ok(())
    }

    /// Deploy (or re-deploy) a manifest. A scenario keeps its identity and
    /// place: re-uploading replaces it where it is, and never changes the
    /// default. Its gallery is opened if it is new.
    pub async fn deploy_scenario(&self, manifest: &str) -> CoreResult<Arc<Deployed>> {
        let d = deploy::deploy(&self.store, self.processor_id, manifest, &self.data_dir).await?;
        self.sync_gallery(d.store_id).await?;
        let d = Arc::new(d);
        let mut all = self.scenarios.write().unwrap();
        match all.iter().position(|x| x.scenario.id == d.scenario.id) {
            Some(i) => all[i] = d.clone(),
            None => all.push(d.clone()),
        }
        Ok(d)
    }

    /// The data key scenario `scenario` seals with, agreed in the store
    /// before the first seal: this core's key is claimed insert-if-absent,
    /// and if another instance claimed one first, that winner is re-read
    /// and used instead (never two keys sealing one scenario). The key is
    /// in the store before any template sealed with it is committed.
    pub async fn ensure_data_key(&self, scenario: Uuid) -> CoreResult<()> {
        // Asked of the store on every enrolment (one insert-if-absent), not
        // remembered here: another instance, or a restart, must get the
        // same answer.
        let mine = self
            .keyring
            .data_key(facegate_gallery::ScenarioId(scenario));
        let (winner, bytes) = self
            .store
            .claim_data_key(scenario, mine.id, &mine.to_bytes(), "core:keyring")
            .await?;
        if winner != mine.id {
            let w = WrappedKey::from_bytes(&bytes).map_err(CoreError::internal)?;
            self.keyring.add_wrapped(&w).map_err(CoreError::internal)?;
        }
        Ok(())
    }

    /// Open a sealed template; a data key this core does not hold yet
    /// (another instance's) is read from the store. `None` (logged) for a
    /// template that does not open.
    async fn open_template(&self, blob: &[u8]) -> CoreResult<Option<facegate_gallery::Template>> {
        let Ok(sealed) = SealedTemplate::from_bytes(blob) else {
            return Ok(None);
        };
        if !self.keyring.has_key(sealed.key_id()) {
            for r in self.store.wrapped_keys().await? {
                if r.key_id == sealed.key_id() {
                    let w = WrappedKey::from_bytes(&r.wrapped).map_err(CoreError::internal)?;
                    self.keyring
                        .add_for_opening(&w)
                        .map_err(CoreError::internal)?;
                }
            }
        }
        Ok(self.keyring.open_as_recorded(&sealed).ok())
    }

    /// Bring the gallery of scenario `sid` in step with the store: one read
    /// of the template generation when nothing changed; otherwise the
    /// store's link list is compared with what the gallery holds, templates
    /// added since are opened and added, and persons who lost one are
    /// rebuilt from what is left (enrolment, withdrawal, erasure or sweep,
    /// here or on another instance).
    pub async fn sync_gallery(&self, sid: Uuid) -> CoreResult<()> {
        let generation = self.store.template_generation().await?;
        let mut sync = self.gallery_sync.lock().await;
        let have = self.galleries.read().unwrap().contains_key(&sid);
        if have && sync.get(&sid).is_some_and(|s| s.generation == generation) {
            return Ok(());
        }
        let state = sync.entry(sid).or_default();
        let now: HashMap<Uuid, Uuid> = self
            .store
            .scenario_template_links(sid)
            .await?
            .into_iter()
            .map(|(l, p, _)| (l, p))
            .collect();
        let touched: HashSet<Uuid> = state
            .links
            .iter()
            .filter(|(l, _)| !now.contains_key(l))
            .map(|(_, p)| *p)
            .collect();
        let load: Vec<Uuid> = now
            .iter()
            .filter(|(l, p)| !state.links.contains_key(l) || touched.contains(p))
            .map(|(l, _)| *l)
            .collect();
        let rows = if load.is_empty() {
            Vec::new()
        } else {
            self.store.templates_by_link(&load, "core:gallery").await?
        };
        let mut opened = Vec::with_capacity(rows.len());
        let mut bad = 0usize;
        for (_, _, blob) in rows {
            match self.open_template(&blob).await? {
                Some(t) => opened.push(t),
                None => bad += 1,
            }
        }
        if bad > 0 {
            tracing::warn!(
                bad,
                "templates that did not open were left out of the gallery"
            );
        }
        let fresh = if have {
            None
        } else {
            Some(deploy::empty_gallery(sid, self.recognition)?)
        };
        {
            let mut gs = self.galleries.write().unwrap();
            if let Some(g) = fresh {
                gs.insert(sid, g);
            }
            let g = gs.get_mut(&sid).expect("inserted above");
            for p in &touched {
                g.remove_person(PersonId(*p));
            }
            for t in &opened {
                g.add(t).map_err(CoreError::internal)?;
            }
        }
        state.links = now;
        state.generation = generation;
        Ok(())
    }

    /// Bring every gallery in step with the store (after a sweep).
    pub async fn reload_galleries(&self) -> CoreResult<()> {
        let ids: Vec<Uuid> = self.galleries.read().unwrap().keys().copied().collect();
        for id in ids {
            self.sync_gallery(id).await?;
        }
        Ok(())
    }

    /// Drop a person from the in-memory galleries (all scenarios, or one),
    /// after the store deleted their templates.
    pub fn forget_person(&self, person: Uuid, scenario: Option<Uuid>) {
        let mut gs = self.galleries.write().unwrap();
        for (sid, g) in gs.iter_mut() {
            if scenario.is_none_or(|s| s == *sid) {
                g.remove_person(facegate_gallery::PersonId(person));
            }
        }
    }

    /// The retention sweep (R12) as of the core's clock: the store's
    /// retention and inactivity rules, then each scenario's `[minors]`
    /// retention (R10) for every person under 14 **at the time of the
    /// sweep**, computed from the date of birth. Galleries follow. Returns
    /// the number of templates deleted.
    pub async fn sweep(&self) -> CoreResult<u64> {
        self.sweep_at(self.now()).await
    }

    /// [`Core::sweep`] as of `now`.
    pub async fn sweep_at(&self, now: DateTime<Utc>) -> CoreResult<u64> {
        let days = self
            .scenarios
            .read()
            .unwrap()
            .iter()
            .map(|d| d.scenario.log_retention_days() as i64)
            .max()
            .unwrap_or(1095);
        let r = self.store.sweep(now, 1000, days, "core:sweep").await?;
        let mut deleted = r.expired_templates + r.inactive_templates;
        deleted += self.sweep_minors(now).await?;
        if deleted > 0 {
            self.reload_galleries().await?;
        }
        Ok(deleted)
    }

    async fn sweep_minors(&self, now: DateTime<Utc>) -> CoreResult<u64> {
        let scenarios: Vec<_> = self.scenarios.read().unwrap().iter().cloned().collect();
        let mut deleted = 0;
        for d in scenarios {
            let Some(days) = d.scenario.minors.as_ref().and_then(|m| m.template_days) else {
                continue;
            };
            let cutoff = now - Duration::days(i64::from(days));
            let mut expired = BTreeSet::new();
            for (_, person, created) in self.store.scenario_template_links(d.store_id).await? {
                if created < cutoff {
                    expired.insert(person);
                }
            }
            for person in expired {
                let p = self.store.person(person).await?;
                let minor = p
                    .identity
                    .as_ref()
                    .and_then(|i| i.date_of_birth)
                    .is_some_and(|dob| policy::is_under_14(dob, now));
                if minor {
                    let r = self
                        .store
                        .delete_templates(person, Some(d.store_id), "minor_retention", "core:sweep")
                        .await?;
                    deleted += r.templates_deleted;
                }
            }
        }
        Ok(deleted)
    }

    /// The person declined face in a scenario (R17): kept in the store until
    /// they opt back in. Only for an existing person, and scoped to them: a
    /// device records a decline only for the person who has just completed
    /// an alternative check in front of it (within [`DEVICE_SCOPE_SECONDS`]),
    /// so a device key cannot block anyone else's face for the quiet
    /// period; the person themself (portal) and an operator always may.
    pub async fn decline_face(
        &self,
        person: Uuid,
        d: &Deployed,
        acting: ops::Acting<'_>,
        channel: &str,
        actor: &str,
    ) -> CoreResult<DateTime<Utc>> {
        pipeline::live_person(self, person).await?;
        match acting {
            ops::Acting::Person(me) if me != person => {
                return Err(CoreError::NotFound("person".into()))
            }
            ops::Acting::Device(dv) => {
                let device = self
                    .device_at(dv)
                    .ok_or_else(|| CoreError::NotFound(format!("device {}", dv.name)))?;
                let since = self.now() - Duration::seconds(DEVICE_SCOPE_SECONDS);
                if !self
                    .store
                    .recent_alternative_check(device, person, since)
                    .await?
                {
                    return Err(CoreError::Forbidden(
                        "a device records a decline of face only for the person who has just completed another method at it / 终端仅可为刚在本机使用其他方式的本人记录拒绝人脸识别".into(),
                    ));
                }
            }
            _ => {}
        }
        let now = self.now();
        self.store
            .record_decline(person, d.store_id, now, channel, actor)
            .await?;
        Ok(now + Duration::hours(i64::from(d.scenario.quiet_period_hours)))
    }

    /// The person explicitly asks for face again (R17); recorded. `false`
    /// when there was no decline to lift.
    pub async fn opt_back_in(
        &self,
        person: Uuid,
        d: &Deployed,
        channel: &str,
        actor: &str,
    ) -> CoreResult<bool> {
        Ok(self
            .store
            .opt_back_in(person, d.store_id, self.now(), channel, actor)
            .await?)
    }

    /// The latest passing check of `person` at `device` (manifest id) within
    /// `seconds`: (receipt, method, when).
    pub async fn recent_pass(
        &self,
        device: DeviceAt<'_>,
        person: Uuid,
        seconds: i64,
    ) -> CoreResult<Option<(Uuid, String, DateTime<Utc>)>> {
        let dv = self
            .device_at(device)
            .ok_or_else(|| CoreError::NotFound(format!("device {}", device.name)))?;
        Ok(self
            .store
            .recent_pass(dv, person, self.now() - Duration::seconds(seconds))
            .await?)
    }

    /// Why a portal code may be issued for `person`, for the audit record:
    /// at a device only for the person who passed a check there within the
    /// last minute (face or an alternative); by an operator only with the
    /// identity check written down. Anything else is refused.
    pub async fn portal_code_basis(
        &self,
        person: Uuid,
        issuer: PortalIssuer<'_>,
    ) -> CoreResult<serde_json::Value> {
        match issuer {
            PortalIssuer::Device(dv) => {
                let Some((receipt, method, at)) = self
                    .recent_pass(dv, person, PORTAL_CODE_CHECK_SECONDS)
                    .await?
                else {
                    return Err(CoreError::Forbidden(
                        "a device may issue a portal code only for the person who passed a check at it within the last minute".into(),
                    ));
                };
                Ok(
                    serde_json::json!({ "device": dv.name, "check_receipt": receipt, "method": method, "at": at }),
                )
            }
            PortalIssuer::Operator { identity_check } => {
                if identity_check.is_some_and(|c| c.chars().count() > 500) {
                    return Err(CoreError::bad(
                        "身份核验说明过长（最多 500 字）。",
                        "identity_check is too long (at most 500 characters)",
                    ));
                }
                let check = identity_check
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        CoreError::Forbidden(
                            "an operator may issue a portal code only after recording how the person's identity was checked (identity_check) / 须先记录如何核验了本人身份（identity_check）".into(),
                        )
                    })?;
                if check.chars().count() > 500 {
                    return Err(CoreError::bad(
                        "身份核验说明过长。",
                        "identity_check is too long",
                    ));
                }
                Ok(serde_json::json!({ "operator_identity_check": check }))
            }
        }
    }

    /// A device acts only for the person in front of it: one it verified
    /// within [`DEVICE_SCOPE_SECONDS`].
    pub async fn require_person_at_device(
        &self,
        device: DeviceAt<'_>,
        person: Uuid,
    ) -> CoreResult<()> {
        if self
            .recent_pass(device, person, DEVICE_SCOPE_SECONDS)
            .await?
            .is_none()
        {
            return Err(CoreError::Forbidden(
                "a device acts only for the person it has just verified".into(),
            ));
        }
        Ok(())
    }

    /// Count one credential attempt before the secret is checked (per person
    /// and credential, with back-off, across processes). Not counted — and
    /// never locked — for a person the same device has just verified by
    /// another method, so a lock-out cannot be turned against them.
    pub async fn reserve_credential_attempt(
        &self,
        person: Uuid,
        credential: &str,
        device: Option<DeviceAt<'_>>,
        limit: i64,
    ) -> CoreResult<()> {
        if let Some(dv) = device {
            if let Some((_, m, _)) = self
                .recent_pass(dv, person, PORTAL_CODE_CHECK_SECONDS)
                .await?
            {
                if m != credential {
                    return Ok(());
                }
            }
        }
        let key = format!("{credential}:{person}");
        match self
            .store
            .reserve_attempt(&key, AttemptPolicy::per_15_minutes(limit), self.now())
            .await?
        {
            Attempt::Allowed { .. } => Ok(()),
            Attempt::Locked { until } => Err(CoreError::Locked { until }),
        }
    }

    /// The credential was right: its counter starts again.
    pub async fn credential_succeeded(&self, person: Uuid, credential: &str) -> CoreResult<()> {
        Ok(self
            .store
            .attempt_succeeded(&format!("{credential}:{person}"))
            .await?)
    }
}

/// What a gallery holds from the store.
#[derive(Default)]
struct GallerySync {
    /// The store's template generation it was brought to.
    generation: i64,
    /// Link ID → person of every template it was built from.
    links: HashMap<Uuid, Uuid>,
}

/// Who issues a portal code.
#[derive(Debug, Clone, Copy)]
pub enum PortalIssuer<'a> {
    /// A device key, at this device.
    Device(DeviceAt<'a>),
    /// An operator, with how the identity was checked.
    Operator { identity_check: Option<&'a str> },
}

/// The key ring from the store's `wrapped_keys` table, the one place data
/// keys are kept. A `keyring.bin` written by an earlier version is moved
/// into the store once and removed.
async fn load_keyring(store: &Store, kek: Kek, legacy: &Path) -> CoreResult<Keyring> {
    if legacy.exists() {
        let old = Keyring::load(legacy, kek.clone()).map_err(CoreError::internal)?;
        let have: HashSet<Uuid> = store
            .wrapped_keys()
            .await?
            .into_iter()
            .map(|w| w.key_id)
            .collect();
        for w in old.wrapped_keys() {
            if !have.contains(&w.id) {
                store
                    .put_wrapped_key(w.id, &w.to_bytes(), "core:import-keyring")
                    .await?;
            }
        }
        std::fs::remove_file(legacy).map_err(CoreError::internal)?;
    }
    let mut keys = Vec::new();
    for r in store.wrapped_keys().await? {
        keys.push(WrappedKey::from_bytes(&r.wrapped).map_err(CoreError::internal)?);
    }
    Keyring::with_wrapped(kek, &keys).map_err(CoreError::internal)
}
