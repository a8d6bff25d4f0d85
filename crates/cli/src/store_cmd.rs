//! `facegate` subcommands for the store: `audit verify|export|verify-file|anchor`,
//! `sweep`, `db migrate|check|headcount`.
//!
//! Where the store is: `--db URL` (or `FACEGATE_DATABASE_URL`), else
//! `sqlite:<data-dir>/facegate.db`; the identity key: `--key-file` (or
//! `FACEGATE_IDENTITY_KEY` holding 64 hex characters), else
//! `<data-dir>/identity.key`; the data directory: `--data-dir` (or
//! `FACEGATE_DATA`, the same as `facegate serve`), else `facegate-data`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use facegate_store::{Store, StoreKeys, AUDIT_RETENTION_DAYS_MIN, IDENTITY_KEY_ENV};

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// The tamper-evident audit log (R14): verify, export, anchor.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Run the retention sweep now (R12): delete expired templates and old
    /// events in batches, logging counts to the audit chain.
    Sweep {
        #[command(flatten)]
        loc: Location,
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch: i64,
        /// Keep verification events this many days (at least 1095, R14).
        #[arg(long, default_value_t = AUDIT_RETENTION_DAYS_MIN)]
        event_retention_days: i64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Detach this site from its hub: local scenario manifests deploy again
    /// (recorded in the audit chain). Starting without `--hub` does not
    /// detach a site.
    HubDetach {
        #[command(flatten)]
        loc: Location,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        cmd: DbCmd,
    },
}

#[derive(clap::Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain, its keyed anchors and head; names the first
    /// altered, removed, inserted or reordered record (exit 1 if any).
    Verify {
        #[command(flatten)]
        loc: Location,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write the audit log as JSON Lines (one record per line).
    Export {
        #[command(flatten)]
        loc: Location,
        /// Output file ("-" for standard output).
        #[arg(short = 'o', long, default_value = "-")]
        output: String,
    },
    /// Check a JSON Lines export without the database or key (links and
    /// hashes only; exit 1 on a fault).
    VerifyFile {
        /// The export.
        file: PathBuf,
    },
    /// Anchor the current head now and print it; keep the printout outside
    /// the system (paper, another organisation) to detect a full rewrite.
    Anchor {
        #[command(flatten)]
        loc: Location,
    },
}

#[derive(clap::Subcommand)]
pub enum DbCmd {
    /// Create the database (if needed) and apply migrations.
    Migrate {
        #[command(flatten)]
        loc: Location,
    },
    /// Check the invariants: every template has its person and consent,
    /// headcount matches, the audit chain verifies (exit 1 otherwise). Reads
    /// the store as it is on disk (no repair).
    Check {
        #[command(flatten)]
        loc: Location,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Distinct persons with stored face information, and when the filing
    /// threshold (100,000) was reached (R21).
    Headcount {
        #[command(flatten)]
        loc: Location,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Where the store and its identity key are: one set of flags and
/// variables, read here once, for `facegate serve` and every store command.
#[derive(clap::Args, Clone, Default)]
pub struct Location {
    /// Database: a SQLite path, `sqlite:PATH` or `postgres://…` [env: FACEGATE_DATABASE_URL]; default SQLite in the data directory.
    #[arg(long, visible_alias = "database")]
    pub(crate) db: Option<String>,
    /// Identity key file (not the template key) [env: FACEGATE_IDENTITY_KEY holds the key itself]; default <data-dir>/identity.key.
    #[arg(long)]
    pub(crate) key_file: Option<PathBuf>,
    /// Data directory holding facegate.db and identity.key by default [env: FACEGATE_DATA; default ./facegate-data].
    #[arg(long, visible_alias = "data")]
    pub(crate) data_dir: Option<PathBuf>,
}

impl Location {
    pub(crate) fn dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| std::env::var_os("FACEGATE_DATA").map(PathBuf::from))
            .or_else(|| std::env::var_os("FACEGATE_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("facegate-data"))
    }

    pub(crate) fn url(&self) -> String {
        self.db
            .clone()
            .or_else(|| {
                std::env::var("FACEGATE_DATABASE_URL")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| format!("sqlite:{}", self.dir().join("facegate.db").display()))
    }

    /// The identity key; with `create`, a missing key file is created.
    pub(crate) fn keys(&self, create: bool) -> Result<StoreKeys> {
        let path = self
            .key_file
            .clone()
            .unwrap_or_else(|| self.dir().join("identity.key"));
        if std::env::var_os(IDENTITY_KEY_ENV).is_some() || create {
            if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            }
            let hex = std::env::var(IDENTITY_KEY_ENV)
                .ok()
                .map(zeroize::Zeroizing::new);
            return Ok(StoreKeys::from_hex_or_file(
                hex.as_deref().map(String::as_str),
                &path,
            )?);
        }
        StoreKeys::from_file(&path).with_context(|| {
            format!(
                "the identity key is needed to check the keyed anchors: pass --key-file or set {IDENTITY_KEY_ENV}"
            )
        })
    }

    async fn open(&self) -> Result<Store> {
        let url = self.url();
        Store::open(&url, self.keys(false)?)
            .await
            .with_context(|| format!("opening the store at {}", redact(&url)))
    }

    async fn inspect(&self) -> Result<Store> {
        let url = self.url();
        Store::open_for_inspection(&url, self.keys(false)?)
            .await
            .with_context(|| format!("opening the store at {}", redact(&url)))
    }
}

/// Hide a password in a URL before printing it.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub fn run(cmd: Cmd) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let code = rt.block_on(run_async(cmd))?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// `facegate audit verify`: the report as text (or JSON) and the exit code.
/// The one line that reports a broken audit chain, in both languages.
fn tampered(f: &facegate_store::ChainFault) -> String {
    format!(
        "TAMPERED 审计记录被篡改: record seq {} — {:?}: {}",
        f.seq, f.kind, f.message
    )
}

async fn audit_verify(loc: &Location, json: bool) -> Result<(String, i32)> {
    let store = loc.inspect().await?;
    let rep = store.verify_chain().await?;
    store.close().await;
    let code = i32::from(rep.fault.is_some());
    if json {
        return Ok((serde_json::to_string_pretty(&rep)?, code));
    }
    let mut out = format!(
        "{} records, {} anchors, head seq {} ({})\n",
        rep.records,
        rep.anchors,
        rep.head_seq,
        &rep.head_hash[..16.min(rep.head_hash.len())]
    );
    match rep.fault {
        None => out.push_str("audit chain intact 审计链完整"),
        Some(f) => out.push_str(&tampered(&f)),
    }
    Ok((out, code))
}

async fn run_async(cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Audit {
            cmd: AuditCmd::Verify { loc, json },
        } => {
            let (text, code) = audit_verify(&loc, json).await?;
            println!("{text}");
            Ok(code)
        }
        Cmd::Audit {
            cmd: AuditCmd::Export { loc, output },
        } => {
            let store = loc.inspect().await?;
            let n = if output == "-" {
                let stdout = std::io::stdout();
                let mut w = std::io::BufWriter::new(stdout.lock());
                let n = store.export_audit_jsonl(&mut w).await?;
                w.flush()?;
                n
            } else {
                let f =
                    std::fs::File::create(&output).with_context(|| format!("creating {output}"))?;
                let mut w = std::io::BufWriter::new(f);
                let n = store.export_audit_jsonl(&mut w).await?;
                w.flush()?;
                n
            };
            eprintln!("exported {n} audit records");
            Ok(0)
        }
        Cmd::Audit {
            cmd: AuditCmd::VerifyFile { file },
        } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let (n, fault) = facegate_store::verify_jsonl(std::io::BufReader::new(f))?;
            match fault {
                None => {
                    println!("{n} records; chain intact 审计链完整 (links and hashes; anchors need the database and key)");
                    Ok(0)
                }
                Some(f) => {
                    println!("{}", tampered(&f));
                    Ok(1)
                }
            }
        }
        Cmd::Audit {
            cmd: AuditCmd::Anchor { loc },
        } => {
            let store = loc.open().await?;
            match store.anchor_now().await? {
                Some(a) => println!("{}", serde_json::to_string(&a)?),
                None => println!("the audit log is empty: nothing to anchor"),
            }
            Ok(0)
        }
        Cmd::HubDetach { loc } => {
            let store = loc.open().await?;
            if store.hub_detach("cli:hub-detach").await? {
                println!("detached: this site's own scenario manifests deploy again");
            } else {
                println!("this site was not attached to a hub");
            }
            Ok(0)
        }
        Cmd::Sweep {
            loc,
            batch,
            event_retention_days,
            json,
        } => {
            let store = loc.open().await?;
            let rep = store
                .sweep(chrono::Utc::now(), batch, event_retention_days, "cli:sweep")
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                println!(
                    "retention sweep 保存期限清理: {} expired templates, {} of inactive persons, {} persons left the headcount, {} events; {} batches; repaired {}",
                    rep.expired_templates,
                    rep.inactive_templates,
                    rep.persons_left_headcount,
                    rep.events_deleted,
                    rep.batches,
                    rep.repaired
                );
            }
            Ok(0)
        }
        Cmd::Db {
            cmd: DbCmd::Migrate { loc },
        } => {
            let url = loc.url();
            if let Some(p) = url.strip_prefix("sqlite:") {
                if let Some(d) = std::path::Path::new(p)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(d)?;
                }
            }
            let store = Store::open(&url, loc.keys(true)?)
                .await
                .with_context(|| format!("opening the store at {}", redact(&url)))?;
            println!(
                "{} store at {} is at schema version {}",
                match store.backend() {
                    facegate_store::Backend::Sqlite => "SQLite",
                    facegate_store::Backend::Postgres => "PostgreSQL",
                },
                redact(&url),
                store.schema_version().await?
            );
            store.close().await;
            Ok(0)
        }
        Cmd::Db {
            cmd: DbCmd::Check { loc, json },
        } => {
            let store = loc.inspect().await?;
            let rep = store.check_integrity().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                println!(
                    "templates {}, headcount stored {} / counted {}",
                    rep.templates, rep.headcount_stored, rep.headcount_actual
                );
                println!("templates without person: {}, links without template: {}, without consent: {}, of erased persons: {}",
                    rep.orphan_templates, rep.links_without_template, rep.templates_without_consent, rep.templates_of_erased_persons);
                match &rep.chain.fault {
                    None => println!("audit chain intact ({} records)", rep.chain.records),
                    Some(f) => println!("audit chain {}", tampered(f)),
                }
            }
            if !rep.is_ok() {
                if rep.chain.is_intact()
                    && rep.templates_without_consent == 0
                    && rep.templates_of_erased_persons == 0
                {
                    eprintln!("a crash left a half-committed enrolment or deletion: `facegate db migrate` (or any open) repairs it");
                }
                return Ok(1);
            }
            Ok(0)
        }
        Cmd::Db {
            cmd: DbCmd::Headcount { loc, json },
        } => {
            let store = loc.inspect().await?;
            let h = store.headcount().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&h)?);
            } else {
                println!("headcount 人脸信息存储人数: {}", h.count);
                match h.threshold_reached_at {
                    Some(t) => {
                        println!("filing threshold (100,000) first reached 达到备案门槛: {t}")
                    }
                    None => println!(
                        "filing threshold (100,000) not reached; 80% reached: {}",
                        store
                            .first_reached(80_000)
                            .await?
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "no".into())
                    ),
                }
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_store::AuditEntry;

    /// `facegate audit verify` names the record whose bytes were edited in
    /// the SQLite file with no database tool at all (R14). Deletion,
    /// insertion and swaps are covered by facegate-store's tamper tests.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn r14_audit_verify_names_a_record_edited_in_the_file() {
        let dir = std::env::temp_dir().join(format!(
            "facegate-cli-store-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let loc = Location {
            db: None,
            key_file: None,
            data_dir: Some(dir.clone()),
        };
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&loc.url(), loc.keys(true).unwrap())
            .await
            .unwrap();
        let first = store
            .audit(&AuditEntry::new(
                "tick",
                "test",
                serde_json::json!({ "n": "start" }),
            ))
            .await
            .unwrap();
        for i in 0..12 {
            store
                .audit(&AuditEntry::new(
                    "tick",
                    "test",
                    serde_json::json!({ "n": format!("value-{i:02}") }),
                ))
                .await
                .unwrap();
        }
        store.close().await; // checkpoints: everything is in facegate.db
        let (text, code) = audit_verify(&loc, false).await.unwrap();
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("intact"), "{text}");

        // Edit one record's bytes in the file: "value-07" becomes "value-70".
        let db = dir.join("facegate.db");
        let mut bytes = std::fs::read(&db).unwrap();
        let needle = b"value-07";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("record bytes in the file");
        bytes[at + 6..at + 8].copy_from_slice(b"70");
        std::fs::write(&db, bytes).unwrap();
        let (text, code) = audit_verify(&loc, false).await.unwrap();
        assert_eq!(code, 1, "{text}");
        let seq = first + 1 + 7;
        assert!(
            text.contains(&format!("record seq {seq} — Altered")),
            "expected record {seq} named: {text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
