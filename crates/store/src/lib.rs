//! facegate-store: persistence for facegate on SQLite (default, one site) or
//! PostgreSQL (shared deployment), chosen at run time by the connection
//! string.
//!
//! What it keeps and how:
//! - **Identity and biometrics apart** (DESIGN principle 5): persons, consents,
//!   credentials, events live in the main database; templates live in a
//!   separate store (`biometric`: a second SQLite file, or a separate
//!   PostgreSQL schema) holding only the sealed blob and a random link ID.
//!   Names and contacts are encrypted with the *identity key* ([`StoreKeys`]);
//!   templates arrive already sealed with the gallery's biometric key, which
//!   the store never sees.
//! - **Consent before face** (R7/R8): [`Store::enrol`] checks the processing
//!   consent, inserts the template, updates the headcount and appends the
//!   audit record in one transaction; withdrawing processing consent deletes
//!   the person's templates in the same transaction and returns a
//!   [`DeletionReceipt`].
//! - **Tamper-evident audit chain** (R14/R20): every record holds the SHA-256
//!   of its predecessor; a keyed anchor is kept for the head and every
//!   [`ANCHOR_EVERY`] records; [`Store::verify_chain`] names the first
//!   altered, removed, inserted or reordered record. Never an image or
//!   template ([`StoreError::AuditPayloadRejected`]); never deleted by the
//!   store (retention ≥ [`AUDIT_RETENTION_DAYS_MIN`] days).
//! - **Headcount** (R21): distinct persons with stored face information,
//!   maintained in the enrolment/deletion transactions, with history so the
//!   date 100,000 was reached can be found.
//! - **Retention sweep** (R12): [`Store::sweep`] deletes expired templates and
//!   events in batches and logs the counts to the audit chain.
//! - **Crash safety**: SQLite runs in WAL mode with `synchronous=FULL`,
//!   `secure_delete=ON` and foreign keys on; [`Store::open`] repairs the one
//!   window SQLite's multi-file commit leaves (see [`Store::reconcile`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), facegate_store::StoreError> {
//! use facegate_store::{Store, StoreKeys};
//! let keys = StoreKeys::from_file("/etc/facegate/identity.key".as_ref())?;
//! let store = Store::open("sqlite:/var/lib/facegate/facegate.db", keys).await?;
//! let report = store.verify_chain().await?;
//! assert!(report.fault.is_none());
//! # Ok(()) }
//! ```

mod access;
mod audit;
mod desk;
mod error;
mod hub_manifests;
mod hub_sync;
mod keys;
mod liveness;
mod people;
mod records;
mod registry;
mod schema;
mod signage;
mod sweep;
mod templates;

pub use access::{ApiKeyRecord, Attempt, AttemptPolicy};
pub use audit::{
    verify_jsonl, verify_records, AuditAnchor, AuditEntry, AuditHead, AuditRecord, ChainCursor,
    ChainFault, ChainFaultKind, ChainReport, ANCHOR_EVERY, AUDIT_RETENTION_DAYS_MIN, GENESIS_HASH,
};
pub use desk::{room_key, CheckCount, Resident, StaffedCheck, StaffedDecision};
pub use error::{Refusal, Result, StoreError};
pub use hub_manifests::HubManifestRow;
pub use hub_sync::HubInboxRow;
pub use keys::{StoreKeys, IDENTITY_KEY_ENV};
pub use liveness::LivenessChallenge;
pub use records::*;
pub use signage::SignagePhoto;
pub use sweep::SweepReport;
pub use templates::{
    EnrolReceipt, Enrolment, Headcount, HeadcountPoint, IntegrityReport, NewPersonEnrolment,
    FILING_THRESHOLD, MAX_SEALED_TEMPLATE,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use uuid::Uuid;

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite files (main + `.biometric` file), WAL mode.
    Sqlite,
    /// A PostgreSQL server (main tables + `biometric` schema).
    Postgres,
}

/// The files a SQLite store consists of.
#[derive(Debug, Clone)]
pub struct SqliteFiles {
    /// Identity database (persons, consents, audit...).
    pub main: PathBuf,
    /// Template database (sealed blobs, wrapped keys only).
    pub biometric: PathBuf,
}

impl SqliteFiles {
    /// The template file that goes with a main file: `x.db` → `x.biometric.db`.
    pub fn for_main(main: &Path) -> SqliteFiles {
        let stem = main
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "facegate".into());
        let name = match main.extension() {
            Some(ext) => format!("{stem}.biometric.{}", ext.to_string_lossy()),
            None => format!("{stem}.biometric"),
        };
        SqliteFiles {
            main: main.to_path_buf(),
            biometric: main.with_file_name(name),
        }
    }

    /// Every file that may hold store data: both databases with their WAL
    /// and shared-memory files (those that exist now).
    pub fn all_existing(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for base in [&self.main, &self.biometric] {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let p = PathBuf::from(format!("{}{suffix}", base.display()));
                if p.exists() {
                    v.push(p);
                }
            }
        }
        v
    }
}

/// The store: a connection pool plus the identity keys. Cheap to clone;
/// share one per process.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) keys: Arc<StoreKeys>,
    pub(crate) files: Option<SqliteFiles>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

fn parse_url(url: &str) -> Result<Target> {
    let bad = |reason: &str| StoreError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let url = url.trim();
    if url.is_empty() {
        return Err(bad("empty"));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_string()));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(bad(
            "use a SQLite file path, a sqlite: URL or a postgres:// URL",
        ));
    } else {
        url
    };
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Err(bad(
            "SQLite needs a file path (an in-memory database would lose every record)",
        ));
    }
    Ok(Target::Sqlite(PathBuf::from(path)))
}

impl Store {
    /// Open (creating if needed) the store at `url` and run the migrations.
    ///
    /// `url` is a SQLite file path, a `sqlite:PATH` URL, or a
    /// `postgres://user@host/db` URL. For SQLite, the template store is the
    /// file next to it named `<stem>.biometric.<ext>`; for PostgreSQL, the
    /// `biometric` schema of the same database. Opening also repairs any
    /// enrolment or deletion a crash left half-done ([`Store::reconcile`]).
    pub async fn open(url: &str, keys: StoreKeys) -> Result<Store> {
        let store = Store::connect(url, keys, true).await?;
        store.migrate().await?;
        store.reconcile().await?;
        Ok(store)
    }

    /// Open an existing store for inspection (audit verification, integrity
    /// checks): no migrations and no crash repair, so what you see is what
    /// is on disk. Fails if the schema is missing or of another version.
    pub async fn open_for_inspection(url: &str, keys: StoreKeys) -> Result<Store> {
        let store = Store::connect(url, keys, false).await?;
        let found = store
            .schema_version()
            .await
            .map_err(|e| StoreError::BadUrl {
                url: url.to_string(),
                reason: format!("not a facegate store: {e}"),
            })?;
        let supported = schema::MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        if found < supported {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: format!(
                    "schema version {found} is older than this build's {supported}: migrate it first (`facegate db migrate`)"
                ),
            });
        }
        Ok(store)
    }

    async fn connect(url: &str, keys: StoreKeys, create: bool) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let store = match parse_url(url)? {
            Target::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    if !dir.as_os_str().is_empty() && !dir.is_dir() {
                        return Err(StoreError::BadUrl {
                            url: url.to_string(),
                            reason: format!("directory {} does not exist", dir.display()),
                        });
                    }
                }
                let files = SqliteFiles::for_main(&path);
                let bio = Arc::new(files.biometric.display().to_string());
                if !create && !path.exists() {
                    return Err(StoreError::BadUrl {
                        url: url.to_string(),
                        reason: "no such database file".into(),
                    });
                }
                let mode = if create { "rwc" } else { "rw" };
                let any_url = format!("sqlite://{}?mode={mode}", path.display());
                let pool = AnyPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(move |conn, _meta| {
                        let bio = bio.clone();
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 60000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            sqlx::query("ATTACH DATABASE $1 AS biometric")
                                .bind(bio.as_str())
                                .execute(&mut *conn)
                                .await?;
                            for db in ["main", "biometric"] {
                                conn.execute(format!("PRAGMA {db}.journal_mode = WAL").as_str())
                                    .await?;
                                conn.execute(format!("PRAGMA {db}.synchronous = FULL").as_str())
                                    .await?;
                                conn.execute(format!("PRAGMA {db}.secure_delete = ON").as_str())
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&any_url)
                    .await?;
                Store {
                    pool,
                    backend: Backend::Sqlite,
                    keys: Arc::new(keys),
                    files: Some(files),
                }
            }
            Target::Postgres(u) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(60))
                    .connect(&u)
                    .await?;
                Store {
                    pool,
                    backend: Backend::Postgres,
                    keys: Arc::new(keys),
                    files: None,
                }
            }
        };
        Ok(store)
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// For SQLite, the files that make up the store; `None` for PostgreSQL.
    pub fn sqlite_files(&self) -> Option<&SqliteFiles> {
        self.files.as_ref()
    }

    /// Close the pool, waiting for connections to finish. On SQLite this
    /// also checkpoints and truncates the WAL files.
    pub async fn close(self) {
        if self.backend == Backend::Sqlite {
            let _ = self.checkpoint().await;
        }
        self.pool.close().await;
    }

    /// SQLite: copy the WAL into the database files and truncate the WALs,
    /// so deleted pages do not linger in them. No-op on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            let mut conn = self.pool.acquire().await?;
            for db in ["main", "biometric"] {
                conn.execute(format!("PRAGMA {db}.wal_checkpoint(TRUNCATE)").as_str())
                    .await?;
            }
        }
        Ok(())
    }

    /// Checkpoint after a deletion has committed: a failure (e.g. a long
    /// reader elsewhere) must not turn a committed deletion into an error,
    /// so it is logged and retried at the next deletion or close.
    pub(crate) async fn checkpoint_best_effort(&self) {
        if let Err(e) = self.checkpoint().await {
            tracing::warn!("WAL checkpoint after deletion failed, will retry later: {e}");
        }
    }

    /// The schema version this database is at.
    pub async fn schema_version(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM schema_migrations",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("v")?)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.begin_unlocked().await?;
        if self.backend == Backend::Postgres {
            // Serialise concurrent first opens.
            sqlx::query("SELECT pg_advisory_xact_lock(7246012)")
                .execute(&mut *tx)
                .await?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                applied_at TEXT NOT NULL)",
        )
        .await?;
        let applied =
            sqlx::query("SELECT version, name, sha256 FROM schema_migrations ORDER BY version")
                .fetch_all(&mut *tx)
                .await?;
        let supported = schema::MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
        let mut have = std::collections::HashMap::new();
        for r in &applied {
            let v: i64 = r.try_get("version")?;
            if v > supported {
                return Err(StoreError::SchemaTooNew {
                    found: v,
                    supported,
                });
            }
            have.insert(v, r.try_get::<String, _>("sha256")?);
        }
        for m in schema::MIGRATIONS {
            let sum = migration_sum(m);
            match have.get(&m.version) {
                Some(s) if *s == sum => continue,
                Some(_) => {
                    return Err(StoreError::MigrationMismatch {
                        version: m.version,
                        name: m.name.into(),
                    })
                }
                None => {}
            }
            for stmt in m.statements {
                if let Some(pg) = stmt.strip_prefix(schema::PG_ONLY) {
                    if self.backend == Backend::Postgres {
                        tx.execute(pg).await?;
                    }
                } else {
                    tx.execute(*stmt).await?;
                }
            }
            sqlx::query("INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES ($1, $2, $3, $4)")
                .bind(m.version)
                .bind(m.name)
                .bind(sum)
                .bind(ts(crate::now()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Begin a write transaction holding the store's single writer lock, so
    /// writers never deadlock and every check a writer makes (consent,
    /// erasure, device) still holds when it commits. On SQLite
    /// `BEGIN IMMEDIATE` takes the write lock on both files at once; on
    /// PostgreSQL the audit head row is locked first (every write appends to
    /// the chain anyway, see `audit::append`).
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>> {
        let mut tx = self.begin_unlocked().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// [`Store::begin`] without the PostgreSQL head-row lock, for the
    /// migrations (which run before that row exists and serialise on an
    /// advisory lock instead).
    async fn begin_unlocked(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// `" FOR UPDATE"` on PostgreSQL, empty on SQLite (whose write lock
    /// already covers the whole database).
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

fn migration_sum(m: &schema::Migration) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for s in m.statements {
        h.update(s.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Timestamps are stored as fixed-width RFC 3339 UTC text (microseconds), so
/// text order is time order on both engines.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn parse_ts(s: &str, what: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("{what}: timestamp {s:?}")))
}

pub(crate) fn new_id() -> Uuid {
    Uuid::now_v7()
}

pub(crate) fn parse_id(s: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("{what}: id {s:?}")))
}

/// Small helpers to read typed columns out of an `AnyRow`.
pub(crate) trait RowExt {
    fn s(&self, col: &str) -> Result<String>;
    fn os(&self, col: &str) -> Result<Option<String>>;
    fn i(&self, col: &str) -> Result<i64>;
    fn oi(&self, col: &str) -> Result<Option<i64>>;
    fn t(&self, col: &str) -> Result<DateTime<Utc>>;
    fn ot(&self, col: &str) -> Result<Option<DateTime<Utc>>>;
    fn id(&self, col: &str) -> Result<Uuid>;
    fn oid(&self, col: &str) -> Result<Option<Uuid>>;
}

impl RowExt for AnyRow {
    fn s(&self, col: &str) -> Result<String> {
        Ok(self.try_get::<String, _>(col)?)
    }
    fn os(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get::<Option<String>, _>(col)?)
    }
    fn i(&self, col: &str) -> Result<i64> {
        Ok(self.try_get::<i64, _>(col)?)
    }
    fn oi(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.try_get::<Option<i64>, _>(col)?)
    }
    fn t(&self, col: &str) -> Result<DateTime<Utc>> {
        parse_ts(&self.s(col)?, col)
    }
    fn ot(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.os(col)?.map(|s| parse_ts(&s, col)).transpose()
    }
    fn id(&self, col: &str) -> Result<Uuid> {
        parse_id(&self.s(col)?, col)
    }
    fn oid(&self, col: &str) -> Result<Option<Uuid>> {
        self.os(col)?.map(|s| parse_id(&s, col)).transpose()
    }
}

/// Now, truncated to the microseconds that are stored.
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert!(matches!(
            parse_url("postgres://u@h/db").unwrap(),
            Target::Postgres(_)
        ));
        assert!(
            matches!(parse_url("sqlite:/tmp/x.db").unwrap(), Target::Sqlite(p) if p == Path::new("/tmp/x.db"))
        );
        assert!(
            matches!(parse_url("sqlite:///tmp/x.db?mode=rwc").unwrap(), Target::Sqlite(p) if p == Path::new("/tmp/x.db"))
        );
        assert!(matches!(parse_url("data/x.db").unwrap(), Target::Sqlite(_)));
        assert!(parse_url("mysql://x").is_err());
        assert!(parse_url("sqlite::memory:").is_err());
        assert!(parse_url("").is_err());
    }

    #[test]
    fn biometric_file_sits_beside_main() {
        let f = SqliteFiles::for_main(Path::new("/var/lib/fg/facegate.db"));
        assert_eq!(f.biometric, Path::new("/var/lib/fg/facegate.biometric.db"));
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a = ts(DateTime::from_timestamp(1_000_000_000, 5_000).unwrap());
        let b = ts(DateTime::from_timestamp(1_000_000_001, 0).unwrap());
        assert!(a < b);
        assert_eq!(parse_ts(&a, "t").unwrap().timestamp(), 1_000_000_000);
    }
}
