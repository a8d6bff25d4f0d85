//! The hub's PostgreSQL schema and queries. Every decision reads the
//! database, so several hub instances share one and a restart loses
//! nothing. No table has a column that could hold an image, an embedding or
//! a template: sites send pseudonyms and hashes only.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use uuid::Uuid;

use crate::proto::*;
use crate::{ts, HubError, Result};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS hub_sites (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL UNIQUE,
        next_seq BIGINT NOT NULL DEFAULT 1,
        recheck_from BIGINT NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        last_sync_at TEXT)",
    "CREATE TABLE IF NOT EXISTS hub_devices (
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        device_id TEXT NOT NULL,
        placement TEXT NOT NULL,
        location TEXT NOT NULL,
        PRIMARY KEY (site_id, device_id))",
    "CREATE TABLE IF NOT EXISTS hub_events (
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        seq BIGINT NOT NULL,
        kind TEXT NOT NULL,
        pseudonym TEXT,
        still_holds BOOLEAN NOT NULL,
        record_hash TEXT NOT NULL,
        at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (site_id, seq))",
    "CREATE TABLE IF NOT EXISTS hub_holdings (
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        pseudonym TEXT NOT NULL,
        since TEXT NOT NULL,
        PRIMARY KEY (site_id, pseudonym))",
    "CREATE INDEX IF NOT EXISTS hub_holdings_pseudonym ON hub_holdings (pseudonym)",
    "CREATE TABLE IF NOT EXISTS hub_headcount_days (
        day TEXT PRIMARY KEY,
        headcount BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hub_anchors (
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (site_id, seq))",
    "CREATE TABLE IF NOT EXISTS hub_anchor_faults (
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        seq BIGINT NOT NULL,
        anchored TEXT NOT NULL,
        found TEXT,
        detected_at TEXT NOT NULL,
        PRIMARY KEY (site_id, seq))",
    "CREATE TABLE IF NOT EXISTS hub_requests (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        pseudonym TEXT NOT NULL,
        created_at TEXT NOT NULL,
        due_date TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hub_commands (
        id TEXT PRIMARY KEY,
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        seq BIGINT NOT NULL,
        request_id TEXT NOT NULL REFERENCES hub_requests(id),
        kind TEXT NOT NULL,
        pseudonym TEXT NOT NULL,
        created_at TEXT NOT NULL,
        status TEXT,
        templates_deleted BIGINT,
        site_receipt_id TEXT,
        applied_at TEXT,
        receipted_at TEXT,
        UNIQUE (site_id, seq))",
    // The central portal (crate::portal): single-use site-issued tokens,
    // person sessions (any instance serves them), the text, answer and
    // closing of requests and complaints, and the sites' consent records.
    "CREATE TABLE IF NOT EXISTS hub_portal_token_uses (
        jti TEXT PRIMARY KEY,
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        expires_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hub_portal_sessions (
        token_sha256 TEXT PRIMARY KEY,
        pseudonym TEXT NOT NULL,
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hub_request_cases (
        request_id TEXT PRIMARY KEY REFERENCES hub_requests(id),
        origin TEXT NOT NULL,
        text TEXT,
        reply TEXT,
        replied_at TEXT,
        closed_at TEXT)",
    "CREATE TABLE IF NOT EXISTS hub_consents (
        site_id TEXT NOT NULL REFERENCES hub_sites(id),
        consent_id TEXT NOT NULL,
        pseudonym TEXT,
        scenario_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        notice_id TEXT,
        notice_version BIGINT,
        notice_sha256 TEXT,
        given_at TEXT NOT NULL,
        withdrawn_at TEXT,
        received_at TEXT NOT NULL,
        PRIMARY KEY (site_id, consent_id))",
    // The site's event name of each record (processing records, R24).
    "ALTER TABLE hub_events ADD COLUMN IF NOT EXISTS event TEXT",
    // When a site answered an access request (its second receipt).
    "ALTER TABLE hub_commands ADD COLUMN IF NOT EXISTS answered_at TEXT",
];

/// Working days a request or complaint is due in (R13/R14 practice: 15).
pub const REQUEST_WORKING_DAYS: u32 = 15;

/// The hub's database handle (cheap to clone).
#[derive(Clone)]
pub struct HubDb {
    pub pool: PgPool,
}

fn shanghai_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&facegate_policy::authorize::china_offset())
        .date_naive()
}

fn kind_word(k: EventKind) -> &'static str {
    match k {
        EventKind::FaceStored => "face_stored",
        EventKind::FaceDeleted => "face_deleted",
        EventKind::Other => "other",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteRow {
    pub id: Uuid,
    pub name: String,
    pub public_key: String,
    pub next_seq: i64,
    pub last_sync_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DeviceRow {
    pub device_id: String,
    pub placement: String,
    pub location: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Headcount {
    pub headcount: i64,
    pub alert_level: facegate_policy::filing::AlertLevel,
    pub threshold_reached_on: Option<NaiveDate>,
    pub filing_deadline: Option<facegate_policy::filing::Deadline>,
    pub history: Vec<(NaiveDate, i64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandProgress {
    pub command_id: Uuid,
    pub site_id: Uuid,
    pub site_name: String,
    pub kind: String,
    pub pending_since: String,
    pub status: Option<String>,
    pub templates_deleted: Option<i64>,
    pub site_receipt_id: Option<String>,
    pub applied_at: Option<String>,
    pub receipted_at: Option<String>,
    /// For an access request: when the site answered it.
    pub answered_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    pub id: Uuid,
    pub kind: String,
    pub created_at: String,
    pub due_date: String,
    pub sites: Vec<CommandProgress>,
    pub done: bool,
}

/// A request with its case (who raised it, the text, the operator's
/// answer) and each site's progress: what the desk, the person's page and
/// the dossier show.
#[derive(Debug, Clone)]
pub struct Case {
    pub request: RequestView,
    /// `portal` or `desk` (no case row: `desk`).
    pub origin: String,
    pub text: Option<String>,
    pub reply: Option<String>,
    pub replied_at: Option<String>,
    pub closed_at: Option<String>,
}

/// Who raised a request ([`HubDb::add_request`]).
#[derive(Debug, Clone, Copy)]
pub enum Raised<'a> {
    /// The operator's staff at the desk (`POST /v1/requests`): no case row.
    Desk,
    /// The person in the central portal, with their note (a complaint's
    /// text), checked by [`crate::portal::check_text`].
    Portal { text: Option<&'a str> },
}

/// Which cases [`HubDb::cases`] reads, in which order.
#[derive(Debug, Clone, Copy)]
pub enum Cases<'a> {
    /// One request.
    One(Uuid),
    /// A person's (by pseudonym), newest first.
    OfPerson(&'a Hash32),
    /// Every request, the earliest due first (the desk).
    DueFirst,
    /// Every request, oldest first (the dossier).
    Oldest,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnchorReport {
    pub site_id: Uuid,
    pub site_name: String,
    pub anchors: i64,
    pub last_anchor: Option<(i64, String)>,
    pub events: i64,
    pub rechecked_through: i64,
    pub faults: Vec<(i64, String, Option<String>, String)>,
    pub intact: bool,
}

/// The columns [`progress_at`] reads (commands `c` joined to sites `s`).
const PROGRESS_COLS: &str = "c.id, c.site_id, s.name, c.kind, c.created_at, c.status, c.templates_deleted, c.site_receipt_id, c.applied_at, c.receipted_at, c.answered_at";

/// One command's progress, read from [`PROGRESS_COLS`] starting at column `at`.
fn progress_at(r: &sqlx::postgres::PgRow, at: usize) -> CommandProgress {
    CommandProgress {
        command_id: Uuid::parse_str(r.get::<&str, _>(at)).expect("uuid column"),
        site_id: Uuid::parse_str(r.get::<&str, _>(at + 1)).expect("uuid column"),
        site_name: r.get(at + 2),
        kind: r.get(at + 3),
        pending_since: r.get(at + 4),
        status: r.get(at + 5),
        templates_deleted: r.get(at + 6),
        site_receipt_id: r.get(at + 7),
        applied_at: r.get(at + 8),
        receipted_at: r.get(at + 9),
        answered_at: r.get(at + 10),
    }
}

/// A request is done when every site has answered it (an access request:
/// receipted with more than "received").
fn all_answered(sites: &[CommandProgress]) -> bool {
    sites.iter().all(|s| {
        s.receipted_at.is_some() && s.status.as_deref() != Some(ReceiptStatus::Received.as_str())
    })
}

impl HubDb {
    /// Connect and create the schema (idempotent; concurrent starts of
    /// several instances serialise on an advisory lock).
    pub async fn open(url: &str) -> Result<HubDb> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(716016)")
            .execute(&mut *tx)
            .await?;
        for s in SCHEMA.iter().chain(crate::manifests::SCHEMA) {
            sqlx::query(s).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(HubDb { pool })
    }

    pub async fn add_site(
        &self,
        name: &str,
        public_key: &str,
        devices: &[DeviceRow],
    ) -> Result<Uuid> {
        if Hash32::parse(public_key).is_none() {
            return Err(HubError::Bad("public key: 64 hex digits expected".into()));
        }
        for d in devices {
            let p: facegate_policy::Placement =
                serde_json::from_value(serde_json::json!(d.placement))
                    .map_err(|_| HubError::Bad(format!("unknown placement {:?}", d.placement)))?;
            if p.is_forbidden() {
                return Err(HubError::Bad(format!(
                    "R19 (第十三条 / Art. 13): no face recognition device may be placed in a {} ({}): device {:?}",
                    d.placement,
                    p.name_zh(),
                    d.device_id
                )));
            }
        }
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "INSERT INTO hub_sites (id, name, public_key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (public_key) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(public_key)
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(HubError::Conflict(
                "a site with this key is registered".into(),
            ));
        }
        for d in devices {
            sqlx::query("INSERT INTO hub_devices (site_id, device_id, placement, location) VALUES ($1, $2, $3, $4)")
                .bind(id.to_string())
                .bind(&d.device_id)
                .bind(&d.placement)
                .bind(&d.location)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn sites(&self) -> Result<Vec<SiteRow>> {
        let rows = sqlx::query("SELECT id, name, public_key, next_seq, last_sync_at FROM hub_sites ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SiteRow {
                    id: Uuid::parse_str(r.get::<&str, _>(0))
                        .map_err(|e| HubError::Bad(e.to_string()))?,
                    name: r.get(1),
                    public_key: r.get(2),
                    next_seq: r.get(3),
                    last_sync_at: r.get(4),
                })
            })
            .collect()
    }

    pub async fn devices(&self, site: Uuid) -> Result<Vec<DeviceRow>> {
        let rows = sqlx::query("SELECT device_id, placement, location FROM hub_devices WHERE site_id = $1 ORDER BY device_id")
            .bind(site.to_string())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| DeviceRow {
                device_id: r.get(0),
                placement: r.get(1),
                location: r.get(2),
            })
            .collect())
    }

    /// The site's public key, for checking its signature.
    pub async fn site_key(&self, site: Uuid) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT public_key FROM hub_sites WHERE id = $1")
                .bind(site.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// One sync, in one transaction that locks the site's row (so two hub
    /// instances never interleave one site's events): events accepted in
    /// order from `next_seq` (earlier ones are duplicates of a retry and
    /// are skipped; a gap stops the batch), holdings and headcount updated,
    /// receipts recorded once, the head anchored, rechecked hashes compared.
    pub async fn sync(&self, site: Uuid, req: &SyncRequest) -> Result<SyncResponse> {
        let now = Utc::now();
        let sid = site.to_string();
        let mut tx = self.pool.begin().await?;
        let row =
            sqlx::query("SELECT next_seq, recheck_from FROM hub_sites WHERE id = $1 FOR UPDATE")
                .bind(&sid)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| HubError::NotFound("site".into()))?;
        let mut next: i64 = row.get(0);
        let recheck_from: i64 = row.get(1);
        // Accept the contiguous run from `next` (a retry's duplicates are
        // skipped, a gap ends the batch), then write it in three statements.
        let mut accepted: Vec<&SiteEvent> = Vec::new();
        for e in &req.events {
            if e.seq < next {
                continue;
            }
            if e.seq != next {
                break;
            }
            accepted.push(e);
            next += 1;
        }
        let mut headcount_changed = false;
        if !accepted.is_empty() {
            sqlx::query(
                "INSERT INTO hub_events (site_id, seq, kind, pseudonym, still_holds, record_hash, at, event, received_at)
                 SELECT $1, * , $9 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[], $8::text[])",
            )
            .bind(&sid)
            .bind(accepted.iter().map(|e| e.seq).collect::<Vec<_>>())
            .bind(accepted.iter().map(|e| kind_word(e.kind).to_string()).collect::<Vec<_>>())
            .bind(accepted.iter().map(|e| e.pseudonym.map(|p| p.hex())).collect::<Vec<_>>())
            .bind(accepted.iter().map(|e| e.still_holds).collect::<Vec<_>>())
            .bind(accepted.iter().map(|e| e.record_hash.hex()).collect::<Vec<_>>())
            .bind(accepted.iter().map(|e| ts(e.at)).collect::<Vec<_>>())
            // The site's own event name (the dossier's processing records).
            .bind(
                accepted
                    .iter()
                    .map(|e| e.event.as_ref().map(|w| w.as_str().to_string()))
                    .collect::<Vec<_>>(),
            )
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
            // The holding each face event leaves, the last one winning.
            let mut last: std::collections::BTreeMap<String, Option<String>> = Default::default();
            for e in &accepted {
                match (e.kind, e.pseudonym) {
                    (EventKind::FaceStored, Some(p)) => {
                        last.insert(p.hex(), Some(ts(e.at)));
                    }
                    (EventKind::FaceDeleted, Some(p)) if !e.still_holds => {
                        last.insert(p.hex(), None);
                    }
                    _ => {}
                }
            }
            headcount_changed = !last.is_empty();
            let (stored, deleted): (Vec<_>, Vec<_>) =
                last.into_iter().partition(|(_, v)| v.is_some());
            if !stored.is_empty() {
                sqlx::query(
                    "INSERT INTO hub_holdings (site_id, pseudonym, since)
                     SELECT $1, * FROM UNNEST($2::text[], $3::text[]) ON CONFLICT DO NOTHING",
                )
                .bind(&sid)
                .bind(stored.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>())
                .bind(
                    stored
                        .iter()
                        .map(|(_, t)| t.clone().unwrap_or_default())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *tx)
                .await?;
            }
            if !deleted.is_empty() {
                sqlx::query("DELETE FROM hub_holdings WHERE site_id = $1 AND pseudonym = ANY($2)")
                    .bind(&sid)
                    .bind(deleted.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for r in &req.receipts {
            sqlx::query(
                // An access request is receipted twice: received, then
                // answered (a late or repeated "received" changes nothing).
                "UPDATE hub_commands SET status = $1, templates_deleted = $2, site_receipt_id = COALESCE($3, site_receipt_id),
                   applied_at = CASE WHEN $1 = 'answered' THEN COALESCE(applied_at, $4) ELSE $4 END,
                   answered_at = CASE WHEN $1 = 'answered' THEN $4 END, receipted_at = $5
                 WHERE id = $6 AND site_id = $7 AND (receipted_at IS NULL OR (status = 'received' AND $1 = 'answered'))",
            )
            .bind(r.status.as_str())
            .bind(r.templates_deleted)
            .bind(r.site_receipt_id.map(|u| u.to_string()))
            .bind(ts(r.applied_at))
            .bind(ts(now))
            .bind(r.command_id.to_string())
            .bind(&sid)
            .execute(&mut *tx)
            .await?;
        }
        crate::portal::record_consents(&mut tx, &sid, &req.consents, now).await?;
        // Anchor the head, and compare rechecked hashes with what the hub
        // was sent when each record was new.
        if let Some(h) = req.head {
            sqlx::query("INSERT INTO hub_anchors (site_id, seq, hash, at) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING")
                .bind(&sid)
                .bind(h.seq)
                .bind(h.hash.hex())
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
            // A chain shorter than what was already anchored: records deleted.
            let max_seen: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM hub_anchors WHERE site_id = $1")
                    .bind(&sid)
                    .fetch_one(&mut *tx)
                    .await?;
            if let Some(m) = max_seen.filter(|m| *m > h.seq) {
                let anchored: String = sqlx::query_scalar(
                    "SELECT hash FROM hub_anchors WHERE site_id = $1 AND seq = $2",
                )
                .bind(&sid)
                .bind(m)
                .fetch_one(&mut *tx)
                .await?;
                self.fault(&mut tx, &sid, m, &anchored, None, now).await?;
            }
        }
        let mut rechecked_to = recheck_from;
        for c in &req.recheck {
            let known: Option<String> = sqlx::query_scalar(
                "SELECT record_hash FROM hub_events WHERE site_id = $1 AND seq = $2",
            )
            .bind(&sid)
            .bind(c.seq)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(k) = known {
                if k != c.hash.hex() {
                    self.fault(&mut tx, &sid, c.seq, &k, Some(c.hash.hex()), now)
                        .await?;
                }
            }
            rechecked_to = rechecked_to.max(c.seq + 1);
        }
        // Ask for the next slice of the chain to be rechecked, wrapping.
        let mut from = rechecked_to;
        if from >= next {
            from = 1;
        }
        let recheck_to = (next - 1).min(from + RECHECK_PER_SYNC - 1);
        sqlx::query("UPDATE hub_sites SET next_seq = $1, recheck_from = $2, last_sync_at = $3 WHERE id = $4")
            .bind(next)
            .bind(from)
            .bind(ts(now))
            .bind(&sid)
            .execute(&mut *tx)
            .await?;
        if headcount_changed {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT pseudonym) FROM hub_holdings")
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO hub_headcount_days (day, headcount) VALUES ($1, $2)
                 ON CONFLICT (day) DO UPDATE SET headcount = GREATEST(hub_headcount_days.headcount, EXCLUDED.headcount)")
                .bind(shanghai_day(now).to_string())
                .bind(n)
                .execute(&mut *tx)
                .await?;
        }
        let cmds = sqlx::query("SELECT id, seq, kind, pseudonym, COALESCE(request_id, manifest_id) FROM hub_commands WHERE site_id = $1 AND receipted_at IS NULL ORDER BY seq LIMIT 500")
            .bind(&sid)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut commands: Vec<HubCommand> = cmds
            .iter()
            .map(|r| HubCommand {
                id: Uuid::parse_str(r.get::<&str, _>(0)).expect("uuid column"),
                seq: r.get(1),
                kind: CommandKind::parse(r.get::<&str, _>(2)).expect("command kind column"),
                pseudonym: Hash32::parse(r.get::<&str, _>(3)).expect("hex column"),
                request_id: Uuid::parse_str(r.get::<&str, _>(4)).expect("uuid column"),
                manifest: None,
            })
            .collect();
        crate::manifests::attach(&self.pool, &mut commands).await?;
        Ok(SyncResponse {
            next_seq: next,
            recheck_from: from,
            recheck_to,
            commands,
        })
    }

    async fn fault(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        sid: &str,
        seq: i64,
        anchored: &str,
        found: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        tracing::warn!(site = sid, seq, "audit anchor mismatch");
        sqlx::query("INSERT INTO hub_anchor_faults (site_id, seq, anchored, found, detected_at) VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING")
            .bind(sid)
            .bind(seq)
            .bind(anchored)
            .bind(found)
            .bind(ts(now))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Headcount across sites, its history, alert level, threshold date and
    /// filing deadline (R21).
    pub async fn headcount(&self) -> Result<Headcount> {
        use facegate_policy::filing;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT pseudonym) FROM hub_holdings")
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query("SELECT day, headcount FROM hub_headcount_days ORDER BY day")
            .fetch_all(&self.pool)
            .await?;
        let history: Vec<(NaiveDate, i64)> = rows
            .iter()
            .filter_map(|r| Some((r.get::<&str, _>(0).parse().ok()?, r.get(1))))
            .collect();
        let series: Vec<(NaiveDate, u64)> = history.iter().map(|(d, n)| (*d, *n as u64)).collect();
        let reached = filing::threshold_reached_on(&series);
        Ok(Headcount {
            headcount: n,
            alert_level: filing::alert_level(n as u64, filing::DEFAULT_ALERT_LEVELS),
            threshold_reached_on: reached,
            filing_deadline: reached
                .map(|d| filing::filing_deadline(d, filing::FilingKind::Initial)),
            history,
        })
    }

    /// Record a person's request once and route a command to every site
    /// that holds their face information (withdraw / erase / access);
    /// complaints stay with the processor's operator here. Every request is
    /// recorded with its due date, and one raised in the portal with its
    /// case row (origin and text), all in one transaction: a crash leaves
    /// the request with its case or neither.
    pub async fn add_request(
        &self,
        kind: &str,
        pseudonym: Hash32,
        raised: Raised<'_>,
    ) -> Result<RequestView> {
        // A person's request is a command of that kind (a deploy is not a
        // person's), or a complaint that stays here.
        let cmd = match CommandKind::parse(kind) {
            Some(CommandKind::Deploy) | None if kind != "complaint" => {
                return Err(HubError::Bad(format!("unknown request kind {kind:?}")))
            }
            k => k,
        };
        let now = Utc::now();
        let (due, _) = facegate_policy::filing::WorkCalendar::official()
            .add_working_days(shanghai_day(now), REQUEST_WORKING_DAYS);
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO hub_requests (id, kind, pseudonym, created_at, due_date) VALUES ($1,$2,$3,$4,$5)")
            .bind(id.to_string())
            .bind(kind)
            .bind(pseudonym.hex())
            .bind(ts(now))
            .bind(due.to_string())
            .execute(&mut *tx)
            .await?;
        if let Raised::Portal { text } = raised {
            sqlx::query(
                "INSERT INTO hub_request_cases (request_id, origin, text) VALUES ($1, 'portal', $2)",
            )
            .bind(id.to_string())
            .bind(text)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(c) = cmd {
            let sites: Vec<String> = sqlx::query_scalar(
                "SELECT site_id FROM hub_holdings WHERE pseudonym = $1 ORDER BY site_id",
            )
            .bind(pseudonym.hex())
            .fetch_all(&mut *tx)
            .await?;
            for s in sites {
                // The site's row lock orders its commands across instances.
                sqlx::query("SELECT id FROM hub_sites WHERE id = $1 FOR UPDATE")
                    .bind(&s)
                    .execute(&mut *tx)
                    .await?;
                let seq: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM hub_commands WHERE site_id = $1",
                )
                .bind(&s)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO hub_commands (id, site_id, seq, request_id, kind, pseudonym, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)")
                    .bind(Uuid::now_v7().to_string())
                    .bind(&s)
                    .bind(seq)
                    .bind(id.to_string())
                    .bind(c.as_str())
                    .bind(pseudonym.hex())
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        self.request(id).await
    }

    /// Requests with their cases and each site's progress, in one query
    /// (requests, cases, commands and sites joined; one row per command).
    pub async fn cases(&self, which: Cases<'_>) -> Result<Vec<Case>> {
        let (filter, order, arg) = match which {
            Cases::One(id) => ("WHERE r.id = $1", "r.id", Some(id.to_string())),
            Cases::OfPerson(p) => (
                "WHERE r.pseudonym = $1",
                "r.created_at DESC, r.id",
                Some(p.hex()),
            ),
            Cases::DueFirst => ("", "r.due_date, r.created_at, r.id", None),
            Cases::Oldest => ("", "r.created_at, r.id", None),
        };
        let q = format!(
            "SELECT r.id, r.kind, r.created_at, r.due_date, k.origin, k.text, k.reply, k.replied_at, k.closed_at,
                    {PROGRESS_COLS}
             FROM hub_requests r
             LEFT JOIN hub_request_cases k ON k.request_id = r.id
             LEFT JOIN hub_commands c ON c.request_id = r.id
             LEFT JOIN hub_sites s ON s.id = c.site_id
             {filter} ORDER BY {order}, c.created_at, s.name"
        );
        let mut q = sqlx::query(&q);
        if let Some(a) = arg {
            q = q.bind(a);
        }
        let mut out: Vec<Case> = Vec::new();
        for r in q.fetch_all(&self.pool).await? {
            let id = Uuid::parse_str(r.get::<&str, _>(0)).expect("uuid column");
            if out.last().is_none_or(|c| c.request.id != id) {
                out.push(Case {
                    request: RequestView {
                        id,
                        kind: r.get(1),
                        created_at: r.get(2),
                        due_date: r.get(3),
                        sites: Vec::new(),
                        done: false,
                    },
                    origin: r
                        .get::<Option<String>, _>(4)
                        .unwrap_or_else(|| "desk".into()),
                    text: r.get(5),
                    reply: r.get(6),
                    replied_at: r.get(7),
                    closed_at: r.get(8),
                });
            }
            if r.get::<Option<&str>, _>(9).is_some() {
                let c = out.last_mut().expect("pushed above");
                c.request.sites.push(progress_at(&r, 9));
            }
        }
        for c in &mut out {
            c.request.done = all_answered(&c.request.sites);
        }
        Ok(out)
    }

    /// One request with its case.
    pub async fn case(&self, id: Uuid) -> Result<Case> {
        self.cases(Cases::One(id))
            .await?
            .pop()
            .ok_or_else(|| HubError::NotFound("request".into()))
    }

    /// A request and each site's progress on it.
    pub async fn request(&self, id: Uuid) -> Result<RequestView> {
        let r = sqlx::query("SELECT kind, created_at, due_date FROM hub_requests WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| HubError::NotFound("request".into()))?;
        let sites = self
            .progress("WHERE c.request_id = $1", Some(id.to_string()))
            .await?;
        Ok(RequestView {
            id,
            kind: r.get(0),
            created_at: r.get(1),
            due_date: r.get(2),
            done: all_answered(&sites),
            sites,
        })
    }

    /// Every command not yet receipted: what is pending where, since when.
    pub async fn pending(&self) -> Result<Vec<CommandProgress>> {
        self.progress("WHERE c.receipted_at IS NULL", None).await
    }

    async fn progress(&self, filter: &str, arg: Option<String>) -> Result<Vec<CommandProgress>> {
        let q = format!(
            "SELECT {PROGRESS_COLS}
             FROM hub_commands c JOIN hub_sites s ON s.id = c.site_id {filter} ORDER BY c.created_at, s.name"
        );
        let mut q = sqlx::query(&q);
        if let Some(a) = arg {
            q = q.bind(a);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| progress_at(r, 0)).collect())
    }

    /// Each site's anchors and any mismatch found (R24 evidence).
    pub async fn anchor_reports(&self) -> Result<Vec<AnchorReport>> {
        let mut out = Vec::new();
        for s in self.sites().await? {
            let sid = s.id.to_string();
            let anchors: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM hub_anchors WHERE site_id = $1")
                    .bind(&sid)
                    .fetch_one(&self.pool)
                    .await?;
            let last = sqlx::query(
                "SELECT seq, hash FROM hub_anchors WHERE site_id = $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(&sid)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)));
            let recheck_from: i64 =
                sqlx::query_scalar("SELECT recheck_from FROM hub_sites WHERE id = $1")
                    .bind(&sid)
                    .fetch_one(&self.pool)
                    .await?;
            let faults = sqlx::query("SELECT seq, anchored, found, detected_at FROM hub_anchor_faults WHERE site_id = $1 ORDER BY seq")
                .bind(&sid)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect::<Vec<_>>();
            out.push(AnchorReport {
                site_id: s.id,
                site_name: s.name,
                anchors,
                last_anchor: last,
                events: s.next_seq - 1,
                rechecked_through: recheck_from - 1,
                intact: faults.is_empty(),
                faults,
            });
        }
        Ok(out)
    }

    /// The hub's event log of one site (seq, kind, record hash, at).
    pub async fn events(&self, site: Uuid) -> Result<Vec<(i64, String, String, String)>> {
        Ok(sqlx::query(
            "SELECT seq, kind, record_hash, at FROM hub_events WHERE site_id = $1 ORDER BY seq",
        )
        .bind(site.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
    }
}

/// Records asked to be rechecked per sync.
pub const RECHECK_PER_SYNC: i64 = 512;
