//! `facegate hub …` (the governance hub, its keys and its operator's
//! queries), the `--hub` flags of `facegate serve`, and `facegate bench hub`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use facegate_hub::keys::{self, PseudonymKey, SiteKey};
use facegate_hub::server::{router, HubConfig};
use facegate_hub::tls_http::{HubConn, HubUrl};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// `facegate serve` flags that connect the site to a hub (all optional:
/// without `--hub`, serve runs alone).
#[derive(clap::Args, Debug, Clone)]
pub struct SiteArgs {
    /// The hub, `https://host:port`; the site syncs with it in the background.
    #[arg(long)]
    pub hub: Option<String>,
    /// This site's id at the hub (from `facegate hub register-site`).
    #[arg(long, requires = "hub")]
    pub hub_site_id: Option<Uuid>,
    /// This site's Ed25519 key file (from `facegate hub site-key`).
    #[arg(long, requires = "hub")]
    pub hub_site_key: Option<PathBuf>,
    /// The processor's pseudonym key file (the same at every site and the hub).
    #[arg(long, requires = "hub")]
    pub hub_pseudonym_key: Option<PathBuf>,
    /// The hub's certificate (PEM) to trust.
    #[arg(long, requires = "hub")]
    pub hub_ca: Option<PathBuf>,
    /// Milliseconds between syncs.
    #[arg(long, default_value_t = 1000)]
    pub hub_interval_ms: u64,
    /// Shortcut for one machine: the directory `facegate hub init` wrote
    /// (its hub.crt, pseudonym.key and admin.token). Without --hub-site-id
    /// the site creates its key in its data directory and registers itself
    /// once with the admin token; the id is kept in `hub-site.id`.
    #[arg(long, requires = "hub")]
    pub hub_dir: Option<PathBuf>,
    /// The hub's manifest public key file (`manifest.pub`, written by
    /// `facegate hub init`; from --hub-dir by default). Pinned at the site:
    /// it then deploys only manifests the hub signed, and refuses a local
    /// upload.
    #[arg(long, requires = "hub")]
    pub hub_manifest_key: Option<PathBuf>,
}

impl SiteArgs {
    /// Fill in what `--hub-dir` implies, registering the site at the hub
    /// the first time (its id and key then live in `data_dir`).
    pub async fn resolve(&mut self, data_dir: &Path) -> Result<()> {
        let (Some(hub), Some(dir)) = (self.hub.clone(), self.hub_dir.clone()) else {
            return Ok(());
        };
        self.hub_ca.get_or_insert(dir.join("hub.crt"));
        self.hub_pseudonym_key
            .get_or_insert(dir.join("pseudonym.key"));
        self.hub_manifest_key = self.manifest_key_file();
        if self.hub_site_id.is_some() {
            return Ok(());
        }
        let key = self
            .hub_site_key
            .get_or_insert(data_dir.join("hub-site.key"))
            .clone();
        let id_file = data_dir.join("hub-site.id");
        if let Ok(id) = std::fs::read_to_string(&id_file) {
            self.hub_site_id = Some(id.trim().parse()?);
            return Ok(());
        }
        let k = if key.exists() {
            SiteKey::load(&key)
        } else {
            SiteKey::create_file(&key)
        }
        .map_err(hub_err)?;
        let client = Client {
            hub,
            ca: dir.join("hub.crt"),
            admin_token_file: dir.join("admin.token"),
        };
        let name = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf())
            .display()
            .to_string();
        // The hub may still be starting (three commands on one machine).
        let body = json!({"name": name, "public_key": k.public_hex()});
        let mut tries = 0;
        let v = loop {
            match call(&client, "POST", "/v1/sites", Some(body.clone())).await {
                Ok(v) => break v,
                Err(e) if tries < 30 => {
                    tries += 1;
                    tracing::info!("registering at the hub: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e.context("registering this site at the hub")),
            }
        };
        let id: Uuid = v["id"].as_str().unwrap_or_default().parse()?;
        std::fs::write(&id_file, format!("{id}\n"))?;
        self.hub_site_id = Some(id);
        Ok(())
    }

    /// The hub's manifest key file: `--hub-manifest-key`, else the one in
    /// `--hub-dir` if it is there.
    fn manifest_key_file(&self) -> Option<PathBuf> {
        self.hub_manifest_key.clone().or_else(|| {
            self.hub_dir
                .as_ref()
                .map(|d| d.join("manifest.pub"))
                .filter(|p| p.exists())
        })
    }

    pub fn config(&self) -> Result<Option<facegate_hub::site::SiteConfig>> {
        let Some(hub) = &self.hub else {
            return Ok(None);
        };
        let need =
            |v: &Option<PathBuf>, f: &str| v.clone().with_context(|| format!("--hub needs {f}"));
        Ok(Some(facegate_hub::site::SiteConfig {
            hub: hub.clone(),
            site_id: self.hub_site_id.context("--hub needs --hub-site-id")?,
            site_key: need(&self.hub_site_key, "--hub-site-key")?,
            pseudonym_key: need(&self.hub_pseudonym_key, "--hub-pseudonym-key")?,
            hub_ca: need(&self.hub_ca, "--hub-ca")?,
            interval: Duration::from_millis(self.hub_interval_ms.max(10)),
            manifest_key: self.hub_manifest_key.clone(),
        }))
    }
}

/// A site attached to a hub: its local manifest (`--scenario` or the demo)
/// is only the first bootstrap. When the store already holds a deployed
/// hub-signed manifest of the same scenario whose signature still verifies
/// with the hub's manifest key, `serve` starts with the newest of those and
/// skips the local file (else every restart would deploy the local file
/// as a new scenario version before the hub's was deployed again).
/// Returns that manifest's text, or `None` to use the local file.
pub async fn hub_bootstrap(
    cfg: &facegate_server::ServerConfig,
    args: &SiteArgs,
) -> Result<Option<String>> {
    if args.hub.is_none() {
        return Ok(None);
    }
    let Some(key_file) = args.manifest_key_file() else {
        return Ok(None);
    };
    let key = facegate_hub::site::load_manifest_key(&key_file)?;
    let local = match &cfg.scenario {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("scenario manifest {}", p.display()))?,
        None => facegate_core::deploy::demo_manifest(),
    };
    // A local file that does not parse is reported by the deploy itself.
    let Ok(local) = facegate_policy::parse_manifest(&local) else {
        return Ok(None);
    };
    let url = facegate_core::store_url(&cfg.data_dir, cfg.database_url.as_deref());
    let keys = match cfg.identity_key.clone() {
        Some(k) => k,
        None => {
            let f = cfg.data_dir.join("identity.key");
            if !f.exists() {
                return Ok(None);
            }
            facegate_store::StoreKeys::from_file(&f)?
        }
    };
    let store = facegate_store::Store::open(&url, keys).await?;
    // Pinned before the core opens: its start deploys the hub-governed
    // scenarios that verify under the pinned key, which must be this hub's
    // key, not the one an earlier start pinned.
    store.hub_pin_manifest_key(&key).await?;
    let stored = facegate_hub::site::stored_hub_manifests(&store, Some(&key)).await;
    store.close().await;
    let Some(m) = stored?.into_iter().find(|m| m.signed.scenario == local.id) else {
        return Ok(None);
    };
    let sm = m.signed;
    if !m.verifies {
        println!(
            "scenario: the stored hub manifest of {} (hub version {}) no longer verifies with the hub key; bootstrapping from the local manifest",
            sm.scenario, sm.version
        );
        return Ok(None);
    }
    println!(
        "scenario: {} runs hub-signed version {} (signature checked); the local manifest is only the first bootstrap and is not deployed",
        sm.scenario, sm.version
    );
    Ok(Some(sm.manifest))
}

/// Start the site's background sync (called by `facegate serve`); returns
/// the site's route that issues hub portal tokens to its signed-in persons.
pub async fn spawn_site_sync(
    core: Arc<facegate_core::Core>,
    args: &SiteArgs,
) -> Result<Option<facegate_hub::portal::SiteRouter>> {
    let mut args = args.clone();
    args.resolve(&core.data_dir).await?;
    if let Some(cfg) = args.config()? {
        let s = facegate_hub::site::SiteSync::new(core.clone(), &cfg)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let redeployed = s.start().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "hub:     {} (site {}; manifests {}, {redeployed} hub manifest(s) deployed)",
            cfg.hub,
            cfg.site_id,
            if cfg.manifest_key.is_some() {
                "only as signed by the hub"
            } else {
                "not taken from the hub (no --hub-manifest-key)"
            }
        );
        tokio::spawn(s.run(cfg.interval));
        let issuer = facegate_hub::portal::TokenIssuer {
            core,
            site_id: cfg.site_id,
            key: facegate_hub::keys::SiteKey::load(&cfg.site_key)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            pseudonym_key: facegate_hub::keys::PseudonymKey::load(&cfg.pseudonym_key)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            hub: cfg.hub.clone(),
        };
        return Ok(Some(facegate_hub::portal::site_router(issuer)));
    }
    // Alone. A pin left by an earlier start with --hub stays: this may be
    // a replica, or a restart without the flag, of a hub-managed site, and
    // local uploads stay refused until `facegate hub-detach`.
    if core
        .store
        .hub_manifest_key()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_some()
    {
        println!(
            "hub: this site is attached to a hub (its manifest key is pinned): local scenario uploads stay refused; `facegate hub-detach` detaches it"
        );
    }
    Ok(None)
}

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// The governance hub for many sites (PostgreSQL; several instances may share one database).
    #[command(subcommand)]
    Hub(HubCmd),
}

/// Where the operator's commands reach the hub.
#[derive(clap::Args, Clone)]
pub struct Client {
    /// The hub, `https://host:port`.
    #[arg(long)]
    hub: String,
    /// The hub's certificate (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// File with the admin token.
    #[arg(long)]
    admin_token_file: PathBuf,
}

#[derive(clap::Subcommand)]
pub enum HubCmd {
    /// Write a hub's secrets into DIR: TLS certificate and key for --name
    /// (self-signed; use the operator's own in production), admin token and
    /// the processor's pseudonym key.
    Init {
        dir: PathBuf,
        #[arg(long, default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        name: Vec<String>,
    },
    /// Run a hub instance.
    Serve {
        /// PostgreSQL URL [env FACEGATE_HUB_DATABASE_URL].
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value = "127.0.0.1:8443")]
        bind: SocketAddr,
        /// The directory `facegate hub init` wrote.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "facegate processor")]
        processor_name: String,
    },
    /// Create a site key file and print its public key.
    SiteKey { file: PathBuf },
    /// Register a site (and its devices, `id:placement:location`) and print its id.
    RegisterSite {
        #[command(flatten)]
        client: Client,
        #[arg(long)]
        name: String,
        /// The site's public key (`facegate hub site-key` prints it).
        #[arg(long)]
        public_key: String,
        #[arg(long = "device")]
        devices: Vec<String>,
    },
    /// A person's withdrawal, deletion, access request or complaint, taken once for every site.
    Request {
        #[command(flatten)]
        client: Client,
        /// withdraw, erase, access or complaint.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        contact: Option<String>,
        #[arg(long)]
        date_of_birth: Option<String>,
    },
    /// Print a hub view: headcount, pending, anchors, sites, requests/ID, dossier.
    Show {
        #[command(flatten)]
        client: Client,
        what: String,
    },
    /// Check an inspection dossier's integrity manifest.
    CheckDossier { file: PathBuf },
    /// Upload a scenario manifest (TOML) to the hub, which lints and signs
    /// it, and push it to each --site (its id); `hub show manifests` shows
    /// which version each site runs and what is pending.
    PushManifest {
        #[command(flatten)]
        client: Client,
        file: PathBuf,
        #[arg(long = "site")]
        sites: Vec<Uuid>,
    },
    /// Answer a request or complaint (the person reads it in the central
    /// portal); it is closed unless --keep-open.
    Answer {
        #[command(flatten)]
        client: Client,
        /// The request's id (`facegate hub show desk/requests?open=true`).
        #[arg(long)]
        id: Uuid,
        #[arg(long)]
        reply: String,
        #[arg(long)]
        keep_open: bool,
    },
}

/// `facegate bench hub`.
#[derive(clap::Subcommand)]
pub enum Bench {
    /// Simulated sites as real HTTPS clients against a hub on this machine:
    /// event throughput and withdrawal propagation p50/p99.
    Hub {
        /// PostgreSQL URL of an empty database [env FACEGATE_HUB_DATABASE_URL].
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 1000)]
        sites: usize,
        #[arg(long, default_value_t = 100_000)]
        persons: usize,
        /// Central withdrawals timed.
        #[arg(long, default_value_t = 200)]
        withdrawals: usize,
        /// Milliseconds between a simulated site's syncs.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Concurrent connections the simulated sites share.
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
}

pub(crate) fn herr(e: facegate_hub::HubError) -> anyhow::Error {
    hub_err(e)
}

fn hub_err(e: facegate_hub::HubError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub fn run(cmd: Cmd) -> Result<()> {
    let Cmd::Hub(cmd) = cmd;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cmd {
            HubCmd::Init { dir, name } => init(&dir, &name),
            HubCmd::Serve {
                database_url,
                bind,
                dir,
                processor_name,
            } => serve(&db_url(database_url)?, bind, &dir, processor_name).await,
            HubCmd::SiteKey { file } => {
                let k = SiteKey::create_file(&file).map_err(hub_err)?;
                println!("{}", k.public_hex());
                Ok(())
            }
            HubCmd::RegisterSite {
                client,
                name,
                public_key,
                devices,
            } => {
                let mut ds = Vec::new();
                for d in devices {
                    let p: Vec<&str> = d.splitn(3, ':').collect();
                    if p.len() != 3 {
                        bail!("--device wants id:placement:location, got {d:?}");
                    }
                    ds.push(json!({"device_id": p[0], "placement": p[1], "location": p[2]}));
                }
                let v = call(&client, "POST", "/v1/sites", Some(json!({"name": name, "public_key": public_key, "devices": ds}))).await?;
                println!("{}", v["id"].as_str().unwrap_or_default());
                Ok(())
            }
            HubCmd::Request {
                client,
                kind,
                name,
                contact,
                date_of_birth,
            } => {
                let v = call(&client, "POST", "/v1/requests", Some(json!({"kind": kind, "display_name": name, "contact": contact, "date_of_birth": date_of_birth}))).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            }
            HubCmd::Show { client, what } => {
                let v = call(&client, "GET", &format!("/v1/{what}"), None).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            }
            HubCmd::PushManifest {
                client,
                file,
                sites,
            } => {
                let text = std::fs::read(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let v = call_bytes(&client, "POST", "/v1/manifests", text).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                if !sites.is_empty() {
                    let id = v["id"].as_str().unwrap_or_default();
                    let a = call(
                        &client,
                        "POST",
                        &format!("/v1/manifests/{id}/assign"),
                        Some(json!({ "sites": sites })),
                    )
                    .await?;
                    println!("{}", serde_json::to_string_pretty(&a)?);
                }
                Ok(())
            }
            HubCmd::Answer {
                client,
                id,
                reply,
                keep_open,
            } => {
                let v = call(
                    &client,
                    "POST",
                    &format!("/v1/desk/requests/{id}/answer"),
                    Some(json!({"reply": reply, "close": !keep_open})),
                )
                .await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            }
            HubCmd::CheckDossier { file } => {
                let v: Value = serde_json::from_slice(&std::fs::read(&file)?)?;
                match facegate_hub::dossier::check(&v) {
                    Ok(n) => {
                        println!("dossier intact: {n} files match the manifest");
                        Ok(())
                    }
                    Err(e) => bail!("dossier NOT intact: {e}"),
                }
            }
        }
    })
}

fn db_url(v: Option<String>) -> Result<String> {
    v.or_else(|| std::env::var("FACEGATE_HUB_DATABASE_URL").ok())
        .context("give --database-url or FACEGATE_HUB_DATABASE_URL (a PostgreSQL URL)")
}

fn init(dir: &Path, names: &[String]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    keys::write_self_signed(&dir.join("hub.crt"), &dir.join("hub.key"), names).map_err(hub_err)?;
    let token = hex::encode(rand_bytes());
    std::fs::write(dir.join("admin.token"), format!("{token}\n"))?;
    PseudonymKey::create_file(&dir.join("pseudonym.key")).map_err(hub_err)?;
    facegate_hub::manifests::ManifestKey::load_or_create(dir).map_err(hub_err)?;
    println!("wrote {0}/hub.crt, hub.key, admin.token, pseudonym.key, manifest.key, manifest.pub (give pseudonym.key, hub.crt and manifest.pub to every site)", dir.display());
    Ok(())
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, x) in Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(Uuid::new_v4().as_bytes())
        .enumerate()
    {
        b[i] = *x;
    }
    b
}

async fn serve(url: &str, bind: SocketAddr, dir: &Path, processor_name: String) -> Result<()> {
    let db = facegate_hub::db::HubDb::open(url).await.map_err(hub_err)?;
    let token = std::fs::read_to_string(dir.join("admin.token")).context("admin.token")?;
    let cfg = HubConfig {
        db,
        admin_token_sha256: hex::encode(Sha256::digest(token.trim().as_bytes())),
        pseudonym_key: PseudonymKey::load(&dir.join("pseudonym.key")).map_err(hub_err)?,
        processor_name,
        body_log: std::env::var_os("FACEGATE_HUB_BODY_LOG").map(PathBuf::from),
        manifest_key: Some(
            facegate_hub::manifests::ManifestKey::load_or_create(dir).map_err(hub_err)?,
        ),
    };
    let tls = keys::server_tls(&dir.join("hub.crt"), &dir.join("hub.key")).map_err(hub_err)?;
    let listener = facegate_hub::tls_http::bind(bind).await.map_err(hub_err)?;
    println!("hub: https://{} (PostgreSQL, TLS)", listener.local_addr()?);
    facegate_hub::tls_http::serve_tls(listener, tls, router(Arc::new(cfg)))
        .await
        .map_err(hub_err)
}

async fn call(c: &Client, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    call_bytes(
        c,
        method,
        path,
        body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    )
    .await
}

async fn call_bytes(c: &Client, method: &str, path: &str, body: Vec<u8>) -> Result<Value> {
    let url = HubUrl::parse(&c.hub).map_err(hub_err)?;
    let tls = keys::client_tls(&c.ca).map_err(hub_err)?;
    let mut conn = HubConn::connect(&url, tls).await.map_err(hub_err)?;
    let token = std::fs::read_to_string(&c.admin_token_file)?;
    let (status, out) = conn
        .send(
            method,
            path,
            &[("authorization", format!("Bearer {}", token.trim()))],
            body,
        )
        .await
        .map_err(hub_err)?;
    let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
    if status != 200 {
        bail!("hub answered {status}: {v}");
    }
    Ok(v)
}

pub fn bench(b: Bench) -> Result<()> {
    let Bench::Hub {
        database_url,
        sites,
        persons,
        withdrawals,
        interval_ms,
        connections,
    } = b;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(crate::hub_bench::run(
        &db_url(database_url)?,
        sites,
        persons,
        withdrawals,
        Duration::from_millis(interval_ms),
        connections,
    ))
}
