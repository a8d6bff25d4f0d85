//! The hash-chained audit log (R14, R20).
//!
//! Each record stores `prev_hash` (the previous record's `hash`) and
//! `hash = SHA-256(prev_hash || "\n" || canonical JSON of its fields)`; the
//! first record links to [`GENESIS_HASH`]. The sequence number is *not* in
//! the hash: order is proven by the links, so renumbering, swapping or
//! inserting rows breaks a link that [`verify_records`] names.
//!
//! A hash chain alone cannot stop someone who rewrites every hash after an
//! edit, or who cuts off the tail. So the store also keeps a *head* (latest
//! seq and hash) and an *anchor* every [`ANCHOR_EVERY`] records, each with
//! an HMAC under a key derived from the identity key, which is not in the
//! database. Export anchors ([`Store::anchor_now`]) to paper or another
//! system to protect against someone who also holds the key.
//!
//! Records never hold images or templates: [`check_payload`] rejects
//! details that look like binary or vector data.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::keys::StoreKeys;
use crate::{ts, RowExt, Store};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// An anchor is written every this many records (and by [`Store::anchor_now`]).
pub const ANCHOR_EVERY: i64 = 256;
/// Audit records are kept at least this long (R14: 3 years); the store never
/// deletes them.
pub const AUDIT_RETENTION_DAYS_MIN: i64 = 1095;

/// What to log. No images, templates or names: refer to people by their
/// pseudonymous person ID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Event type ("enrol", "verify", "consent_withdrawn", "sweep"...).
    pub event: String,
    /// Who did it (`"operator:<id>"`, `"device:<id>"`, `"system:sweep"`).
    pub actor: String,
    /// Pseudonymous subject (person ID).
    pub subject: Option<Uuid>,
    /// Scenario (deployment / purpose).
    pub scenario_id: Option<Uuid>,
    /// Device.
    pub device_id: Option<Uuid>,
    /// Small JSON object with the rest (counts, receipt IDs, scores).
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// An entry with no subject, scenario or device.
    pub fn new(event: &str, actor: &str, details: serde_json::Value) -> AuditEntry {
        AuditEntry {
            event: event.into(),
            actor: actor.into(),
            subject: None,
            scenario_id: None,
            device_id: None,
            details,
        }
    }
    /// Set the subject.
    pub fn subject(mut self, id: Uuid) -> Self {
        self.subject = Some(id);
        self
    }
    /// Set the scenario.
    pub fn scenario(mut self, id: Uuid) -> Self {
        self.scenario_id = Some(id);
        self
    }
    /// Set the device.
    pub fn device(mut self, id: Option<Uuid>) -> Self {
        self.device_id = id;
        self
    }
}

/// A stored audit record, as exported (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// UTC time, RFC 3339 with microseconds.
    pub at: String,
    /// Event type.
    pub event: String,
    /// Actor.
    pub actor: String,
    /// Pseudonymous subject ID.
    pub subject: Option<String>,
    /// Scenario ID.
    pub scenario_id: Option<String>,
    /// Device ID.
    pub device_id: Option<String>,
    /// Details as canonical JSON text (exactly what was hashed).
    pub details: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

#[derive(Serialize)]
struct Body<'a> {
    at: &'a str,
    event: &'a str,
    actor: &'a str,
    subject: Option<&'a str>,
    scenario_id: Option<&'a str>,
    device_id: Option<&'a str>,
    details: &'a str,
}

impl AuditRecord {
    /// Recompute this record's hash from its fields and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let body = Body {
            at: &self.at,
            event: &self.event,
            actor: &self.actor,
            subject: self.subject.as_deref(),
            scenario_id: self.scenario_id.as_deref(),
            device_id: self.device_id.as_deref(),
            details: &self.details,
        };
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(b"\n");
        h.update(serde_json::to_vec(&body).expect("plain struct serialises"));
        hex::encode(h.finalize())
    }

    /// Parsed details.
    pub fn details_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.details).unwrap_or(serde_json::Value::Null)
    }
}

/// A keyed checkpoint of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditAnchor {
    /// Sequence number anchored.
    pub seq: i64,
    /// Hash of that record.
    pub hash: String,
    /// When anchored.
    pub at: String,
    /// HMAC-SHA256 of (seq, hash) under the audit key.
    pub mac: String,
}

/// What kind of tampering [`verify_records`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainFaultKind {
    /// A record's content (or sequence number) was edited.
    Altered,
    /// A record was deleted.
    Removed,
    /// A record was added that the store did not write.
    Inserted,
    /// Records were moved out of order.
    Reordered,
    /// The chain was recomputed after an edit: it no longer matches a keyed
    /// anchor or the head.
    Rewritten,
    /// An anchor or the head carries a MAC the key did not make.
    AnchorForged,
}

/// The first fault found in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainFault {
    /// Kind.
    pub kind: ChainFaultKind,
    /// The record it names (for `Removed`, the seq the missing record had).
    pub seq: i64,
    /// Human explanation.
    pub message: String,
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record seq {}: {:?}: {}",
            self.seq, self.kind, self.message
        )
    }
}

/// How far an incremental check of the chain got ([`Store::verify_chain_since`]):
/// the last record found intact. Start from [`ChainCursor::default`] (the
/// empty chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCursor {
    /// Sequence number of the last record checked (0: none yet).
    pub seq: i64,
    /// Its hash ([`GENESIS_HASH`] for none).
    pub hash: String,
}

impl Default for ChainCursor {
    fn default() -> Self {
        ChainCursor {
            seq: 0,
            hash: GENESIS_HASH.into(),
        }
    }
}

/// Result of [`Store::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// Records checked.
    pub records: u64,
    /// Anchors checked.
    pub anchors: u64,
    /// Sequence number of the head.
    pub head_seq: i64,
    /// Hash of the head.
    pub head_hash: String,
    /// The first fault, if any. `None` means the chain is intact.
    pub fault: Option<ChainFault>,
}

/// The chain's head as the store keeps it: the newest record's sequence
/// number and hash, and the keyed MAC over both. Every append changes it; a
/// cheap key for "has the chain moved since it was last verified".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the newest record (0 for an empty chain).
    pub seq: i64,
    /// Its hash ([`GENESIS_HASH`] for an empty chain).
    pub hash: String,
    /// MAC over `seq` and `hash` under the store's key (empty when empty).
    pub mac: String,
}

impl ChainReport {
    /// True when no fault was found.
    pub fn is_intact(&self) -> bool {
        self.fault.is_none()
    }
}

fn fault(kind: ChainFaultKind, seq: i64, message: String) -> Option<ChainFault> {
    Some(ChainFault { kind, seq, message })
}

/// Check a chain given in ascending `seq` order, with the anchors and head
/// that are already known to be genuine (MAC checked). Returns the first
/// fault, or `None` when intact.
pub fn verify_records(
    recs: &[AuditRecord],
    anchors: &[AuditAnchor],
    head: Option<(i64, &str)>,
) -> Option<ChainFault> {
    verify_links(recs).or_else(|| verify_anchors_and_head(recs, anchors, head))
}

/// The hashes, links and sequence numbers of a chain in `seq` order.
fn verify_links(recs: &[AuditRecord]) -> Option<ChainFault> {
    use ChainFaultKind::*;
    let mut by_hash: HashMap<&str, usize> = HashMap::with_capacity(recs.len());
    for (i, r) in recs.iter().enumerate() {
        by_hash.entry(r.hash.as_str()).or_insert(i);
    }
    for (i, r) in recs.iter().enumerate() {
        let expected_prev = if i == 0 {
            GENESIS_HASH
        } else {
            recs[i - 1].hash.as_str()
        };
        if r.compute_hash() != r.hash {
            if recs
                .get(i + 1)
                .is_some_and(|n| n.prev_hash == expected_prev)
            {
                return fault(
                    Inserted,
                    r.seq,
                    "this record was not written by the store: the next record links past it"
                        .into(),
                );
            }
            return fault(
                Altered,
                r.seq,
                "content does not match its hash: the record was edited".into(),
            );
        }
        if r.prev_hash != expected_prev {
            if r.prev_hash == GENESIS_HASH {
                // It links to the start: everything before it was added.
                return fault(
                    Inserted,
                    recs[0].seq,
                    format!(
                        "records from seq {} to {} are not in the chain (seq {} is the first record written)",
                        recs[0].seq,
                        recs[i - 1].seq,
                        r.seq
                    ),
                );
            }
            match by_hash.get(r.prev_hash.as_str()) {
                Some(&j) if j > i => {
                    return fault(
                        Reordered,
                        r.seq,
                        format!(
                            "it links to the record now at seq {}, which comes after it: records were swapped or moved",
                            recs[j].seq
                        ),
                    )
                }
                Some(&j) if j + 1 < i => {
                    return fault(
                        Inserted,
                        recs[j + 1].seq,
                        format!(
                            "records from seq {} to {} are not in the chain (seq {} links to seq {})",
                            recs[j + 1].seq,
                            recs[i - 1].seq,
                            r.seq,
                            recs[j].seq
                        ),
                    )
                }
                _ => {
                    let prev_seq = if i == 0 { 0 } else { recs[i - 1].seq };
                    let (seq, msg) = if r.seq > prev_seq + 1 {
                        (
                            prev_seq + 1,
                            format!("missing: seq {} links to a record that is gone", r.seq),
                        )
                    } else {
                        (
                            r.seq,
                            format!(
                                "the record before seq {} was removed and the rest renumbered",
                                r.seq
                            ),
                        )
                    };
                    return fault(Removed, seq, msg);
                }
            }
        }
        let expected_seq = if i == 0 { 1 } else { recs[i - 1].seq + 1 };
        if r.seq != expected_seq {
            return fault(
                Altered,
                r.seq,
                format!("sequence number edited (expected {expected_seq})"),
            );
        }
    }
    None
}

/// A linked chain (see [`verify_links`]) against its genuine anchors and
/// head: a chain recomputed after an edit, or cut or extended at the end,
/// no longer matches them.
fn verify_anchors_and_head(
    recs: &[AuditRecord],
    anchors: &[AuditAnchor],
    head: Option<(i64, &str)>,
) -> Option<ChainFault> {
    use ChainFaultKind::*;
    let index: HashMap<i64, usize> = recs.iter().enumerate().map(|(i, r)| (r.seq, i)).collect();
    let mut prev_anchor = 0;
    for a in anchors {
        match index.get(&a.seq) {
            None => {
                return fault(
                    Removed,
                    a.seq,
                    format!("anchored record seq {} is gone", a.seq),
                )
            }
            Some(&i) if recs[i].hash != a.hash => {
                return fault(
                    Rewritten,
                    prev_anchor + 1,
                    format!(
                        "the chain between seq {} and {} was recomputed: seq {} no longer matches its keyed anchor",
                        prev_anchor + 1,
                        a.seq,
                        a.seq
                    ),
                )
            }
            _ => prev_anchor = a.seq,
        }
    }
    let last = recs
        .last()
        .map(|r| (r.seq, r.hash.as_str()))
        .unwrap_or((0, GENESIS_HASH));
    if let Some((hseq, hhash)) = head {
        if last.0 < hseq {
            return fault(
                Removed,
                last.0 + 1,
                format!(
                    "records after seq {} were removed (the head is at seq {hseq})",
                    last.0
                ),
            );
        }
        if last.0 > hseq {
            return fault(
                Inserted,
                hseq + 1,
                format!("records after the head (seq {hseq}) were added outside the store"),
            );
        }
        if last.1 != hhash {
            return fault(
                Rewritten,
                prev_anchor + 1,
                format!(
                    "the chain after seq {prev_anchor} was recomputed: the last record no longer matches the keyed head"
                ),
            );
        }
    }
    None
}

/// Reject details that could carry an image or a template (R14).
pub(crate) fn check_payload(details: &serde_json::Value) -> Result<String> {
    fn walk(v: &serde_json::Value, path: &str) -> std::result::Result<(), String> {
        use serde_json::Value::*;
        match v {
            String(s) if s.len() > 512 => Err(format!("{path}: string of {} bytes", s.len())),
            Array(a) if a.len() > 32 => Err(format!("{path}: array of {} items", a.len())),
            Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            Object(m) => m.iter().try_for_each(|(k, x)| {
                let lk = k.to_ascii_lowercase();
                for bad in [
                    "image",
                    "photo",
                    "template",
                    "embedding",
                    "feature",
                    "sealed",
                    "pixels",
                    "frame",
                ] {
                    if lk.contains(bad)
                        && !matches!(x, Null | Bool(_) | Number(_))
                        && !lk.ends_with("_id")
                        && !lk.ends_with("_ids")
                    {
                        return Err(format!("{path}.{k}: field named like face data"));
                    }
                }
                walk(x, &format!("{path}.{k}"))
            }),
            _ => Ok(()),
        }
    }
    walk(details, "details").map_err(StoreError::AuditPayloadRejected)?;
    let text = serde_json::to_string(details).expect("Value serialises");
    if text.len() > 8192 {
        return Err(StoreError::AuditPayloadRejected(format!(
            "details of {} bytes (limit 8192)",
            text.len()
        )));
    }
    Ok(text)
}

/// One write and its audit record, committed together, or neither.
/// `query` must touch a row, else nothing is written and
/// `NotFound { kind, id }` is returned: an INSERT always does; an UPDATE
/// whose WHERE names the row and its expected state (e.g. `AND retired_at
/// IS NULL`) does only while that state holds.
pub(crate) async fn write_audited<'q>(
    store: &Store,
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    kind: &'static str,
    id: impl ToString,
    entry: &AuditEntry,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut tx = store.begin().await?;
    if query.execute(&mut *tx).await?.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            kind,
            id: id.to_string(),
        });
    }
    append(store, &mut tx, entry, at).await?;
    tx.commit().await?;
    Ok(())
}

/// Append `entry` inside `tx`. Locks the head row first, so on PostgreSQL
/// every writer that appends serialises here. Returns the new seq.
pub(crate) async fn append(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    entry: &AuditEntry,
    at: DateTime<Utc>,
) -> Result<i64> {
    let details = check_payload(&entry.details)?;
    let head = sqlx::query(&format!(
        "SELECT seq, hash FROM audit_head WHERE id = 1{}",
        store.for_update()
    ))
    .fetch_one(&mut **tx)
    .await?;
    let seq = head.i("seq")? + 1;
    let mut rec = AuditRecord {
        seq,
        at: ts(at),
        event: entry.event.clone(),
        actor: entry.actor.clone(),
        subject: entry.subject.map(|u| u.to_string()),
        scenario_id: entry.scenario_id.map(|u| u.to_string()),
        device_id: entry.device_id.map(|u| u.to_string()),
        details,
        prev_hash: head.s("hash")?,
        hash: String::new(),
    };
    rec.hash = rec.compute_hash();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, event, actor, subject, scenario_id, device_id, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(rec.seq)
    .bind(&rec.at)
    .bind(&rec.event)
    .bind(&rec.actor)
    .bind(rec.subject.clone())
    .bind(rec.scenario_id.clone())
    .bind(rec.device_id.clone())
    .bind(&rec.details)
    .bind(&rec.prev_hash)
    .bind(&rec.hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, mac = $3 WHERE id = 1")
        .bind(seq)
        .bind(&rec.hash)
        .bind(store.keys.anchor_mac(seq, &rec.hash))
        .execute(&mut **tx)
        .await?;
    if seq % ANCHOR_EVERY == 0 {
        insert_anchor(&store.keys, tx, seq, &rec.hash, &rec.at).await?;
    }
    Ok(seq)
}

async fn insert_anchor(
    keys: &StoreKeys,
    tx: &mut Transaction<'static, Any>,
    seq: i64,
    hash: &str,
    at: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_anchors (seq, hash, at, mac) VALUES ($1, $2, $3, $4)")
        .bind(seq)
        .bind(hash)
        .bind(at)
        .bind(keys.anchor_mac(seq, hash))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn record_from_row(r: &sqlx::any::AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.i("seq")?,
        at: r.s("at")?,
        event: r.s("event")?,
        actor: r.s("actor")?,
        subject: r.os("subject")?,
        scenario_id: r.os("scenario_id")?,
        device_id: r.os("device_id")?,
        details: r.s("details")?,
        prev_hash: r.s("prev_hash")?,
        hash: r.s("hash")?,
    })
}

const RECORD_COLS: &str =
    "seq, at, event, actor, subject, scenario_id, device_id, details, prev_hash, hash";

impl Store {
    /// Append one audit record in its own transaction; returns its seq.
    /// Rejects details that look like images or templates (R14).
    pub async fn audit(&self, entry: &AuditEntry) -> Result<i64> {
        let mut tx = self.begin().await?;
        let seq = append(self, &mut tx, entry, crate::now()).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Records with `seq >= from`, at most `limit`, in order.
    pub async fn audit_records(&self, from: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2"
        ))
        .bind(from)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The keyed anchors, in order.
    pub async fn audit_anchors(&self) -> Result<Vec<AuditAnchor>> {
        let rows = sqlx::query("SELECT seq, hash, at, mac FROM audit_anchors ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditAnchor {
                    seq: r.i("seq")?,
                    hash: r.s("hash")?,
                    at: r.s("at")?,
                    mac: r.s("mac")?,
                })
            })
            .collect()
    }

    /// Write an anchor for the current head now (call it on a schedule and
    /// at shutdown; print or send the result somewhere outside the store).
    /// Returns `None` when the chain is empty.
    pub async fn anchor_now(&self) -> Result<Option<AuditAnchor>> {
        let mut tx = self.begin().await?;
        let head = sqlx::query(&format!(
            "SELECT seq, hash FROM audit_head WHERE id = 1{}",
            self.for_update()
        ))
        .fetch_one(&mut *tx)
        .await?;
        let (seq, hash) = (head.i("seq")?, head.s("hash")?);
        if seq == 0 {
            return Ok(None);
        }
        let at = ts(crate::now());
        let exists = sqlx::query("SELECT seq FROM audit_anchors WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            insert_anchor(&self.keys, &mut tx, seq, &hash, &at).await?;
        }
        tx.commit().await?;
        Ok(Some(AuditAnchor {
            seq,
            mac: self.keys.anchor_mac(seq, &hash),
            hash,
            at,
        }))
    }

    /// Verify the whole chain, its anchors and its head. The report names
    /// the first altered, removed, inserted or reordered record.
    pub async fn verify_chain(&self) -> Result<ChainReport> {
        let mut recs = Vec::new();
        self.each_record_page(|page| {
            recs.extend(page);
            Ok(())
        })
        .await?;
        let anchors = self.audit_anchors().await?;
        let AuditHead {
            seq: hseq,
            hash: hhash,
            mac: hmac,
        } = self.audit_head().await?;
        let mut report = ChainReport {
            records: recs.len() as u64,
            anchors: anchors.len() as u64,
            head_seq: hseq,
            head_hash: hhash.clone(),
            fault: None,
        };
        let head_genuine = if hseq == 0 {
            hmac.is_empty() && hhash == GENESIS_HASH
        } else {
            self.keys.anchor_mac(hseq, &hhash) == hmac
        };
        // Links first, so an edited record is named as such even when its
        // anchor or the head no longer matches either; each record is hashed
        // once.
        report.fault = verify_links(&recs);
        if report.fault.is_none() {
            if let Some(a) = anchors
                .iter()
                .find(|a| self.keys.anchor_mac(a.seq, &a.hash) != a.mac)
            {
                report.fault = fault(
                    ChainFaultKind::AnchorForged,
                    a.seq,
                    "anchor MAC does not verify under this store's key".into(),
                );
            } else if !head_genuine {
                report.fault = fault(
                    ChainFaultKind::AnchorForged,
                    hseq,
                    "head MAC does not verify under this store's key".into(),
                );
            } else {
                report.fault = verify_anchors_and_head(&recs, &anchors, Some((hseq, &hhash)));
            }
        }
        Ok(report)
    }

    /// Write the chain as JSON Lines (one [`AuditRecord`] per line) to `out`;
    /// returns the number of records written.
    pub async fn export_audit_jsonl<W: std::io::Write>(&self, out: &mut W) -> Result<u64> {
        let mut n = 0u64;
        self.each_record_page(|page| {
            for rec in &page {
                serde_json::to_writer(&mut *out, rec)
                    .map_err(|e| StoreError::Invalid(format!("export: {e}")))?;
                out.write_all(b"\n")
                    .map_err(|e| StoreError::Invalid(format!("export: {e}")))?;
            }
            n += page.len() as u64;
            Ok(())
        })
        .await?;
        Ok(n)
    }

    /// Every row of the audit log in `seq` order, a page at a time, rows a
    /// hand edit gave a seq below 1 included (verification must see them).
    async fn each_record_page(
        &self,
        mut f: impl FnMut(Vec<AuditRecord>) -> Result<()>,
    ) -> Result<()> {
        const PAGE: i64 = 5000;
        let mut from = i64::MIN;
        loop {
            let page = self.audit_records(from, PAGE).await?;
            let last = page.last().map(|r| r.seq);
            let full = page.len() as i64 == PAGE;
            f(page)?;
            match last {
                Some(seq) if full && seq < i64::MAX => from = seq + 1,
                _ => return Ok(()),
            }
        }
    }

    /// Verify only what was written after `from`: each newer record's hash,
    /// its link to the one before (the first to `from`'s hash) and its
    /// sequence number, then the head (its MAC, and that it is the last
    /// record). The cost is that of the new records, so a caller can check
    /// after every step; [`Store::verify_chain`] stays the full check
    /// (anchors, and edits to records before `from`). Returns the new
    /// cursor, or the first fault.
    pub async fn verify_chain_since(
        &self,
        from: &ChainCursor,
    ) -> Result<std::result::Result<ChainCursor, ChainFault>> {
        // The head first: records written after it are left for the next
        // call, so a write in flight is not mistaken for a fault.
        let head = self.audit_head().await?;
        let genuine = if head.seq == 0 {
            head.mac.is_empty() && head.hash == GENESIS_HASH
        } else {
            self.keys.anchor_mac(head.seq, &head.hash) == head.mac
        };
        if !genuine {
            return Ok(Err(ChainFault {
                kind: ChainFaultKind::AnchorForged,
                seq: head.seq,
                message: "the head's MAC does not verify under this store's key".into(),
            }));
        }
        let mut at = from.clone();
        while at.seq < head.seq {
            let page = self.audit_records(at.seq + 1, 5000).await?;
            if page.is_empty() {
                break;
            }
            for r in page.into_iter().take_while(|r| r.seq <= head.seq) {
                if r.seq != at.seq + 1 {
                    return Ok(Err(ChainFault {
                        kind: ChainFaultKind::Removed,
                        seq: at.seq + 1,
                        message: format!("seq {} follows seq {}", r.seq, at.seq),
                    }));
                }
                if r.compute_hash() != r.hash {
                    return Ok(Err(ChainFault {
                        kind: ChainFaultKind::Altered,
                        seq: r.seq,
                        message: "content does not match its hash: the record was edited".into(),
                    }));
                }
                if r.prev_hash != at.hash {
                    return Ok(Err(ChainFault {
                        kind: ChainFaultKind::Inserted,
                        seq: r.seq,
                        message: format!("it does not link to seq {}", at.seq),
                    }));
                }
                at = ChainCursor {
                    seq: r.seq,
                    hash: r.hash,
                };
            }
        }
        if head.seq != at.seq || head.hash != at.hash {
            return Ok(Err(ChainFault {
                kind: ChainFaultKind::Rewritten,
                seq: head.seq,
                message: format!(
                    "the head names seq {} but the last record is seq {}",
                    head.seq, at.seq
                ),
            }));
        }
        Ok(Ok(at))
    }

    /// The chain's head (one row; no record is read).
    pub async fn audit_head(&self) -> Result<AuditHead> {
        let head = sqlx::query("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(AuditHead {
            seq: head.i("seq")?,
            hash: head.s("hash")?,
            mac: head.s("mac")?,
        })
    }

    /// Number of audit records.
    pub async fn audit_len(&self) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get::<i64, _>("n")?)
    }
}

/// Verify a JSON Lines export (as written by [`Store::export_audit_jsonl`])
/// without the database or key: links and hashes only.
pub fn verify_jsonl<R: std::io::BufRead>(input: R) -> Result<(u64, Option<ChainFault>)> {
    let mut recs = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| StoreError::Invalid(format!("line {}: {e}", i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: AuditRecord = serde_json::from_str(&line)
            .map_err(|e| StoreError::Invalid(format!("line {}: {e}", i + 1)))?;
        recs.push(r);
    }
    let n = recs.len() as u64;
    Ok((n, verify_records(&recs, &[], None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut v: Vec<AuditRecord> = Vec::new();
        for seq in 1..=n {
            let mut r = AuditRecord {
                seq,
                at: format!("2026-01-01T00:00:{:02}.000000Z", seq % 60),
                event: "test".into(),
                actor: "unit".into(),
                subject: None,
                scenario_id: None,
                device_id: None,
                details: format!("{{\"n\":{seq}}}"),
                prev_hash: v
                    .last()
                    .map(|r| r.hash.clone())
                    .unwrap_or(GENESIS_HASH.into()),
                hash: String::new(),
            };
            r.hash = r.compute_hash();
            v.push(r);
        }
        v
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_records(&chain(10), &[], None), None);
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let c = chain(10);
        let mut e = c.clone();
        e[4].details = "{\"n\":99}".into();
        let f = verify_records(&e, &[], None).unwrap();
        assert_eq!((f.kind, f.seq), (ChainFaultKind::Altered, 5));

        let mut d = c.clone();
        d.remove(4);
        let f = verify_records(&d, &[], None).unwrap();
        assert_eq!((f.kind, f.seq), (ChainFaultKind::Removed, 5));

        let mut s = c.clone();
        s.swap(3, 4);
        s[3].seq = 4;
        s[4].seq = 5;
        let f = verify_records(&s, &[], None).unwrap();
        assert_eq!((f.kind, f.seq), (ChainFaultKind::Reordered, 4));

        let mut ins = c.clone();
        let mut forged = ins[3].clone();
        forged.details = "{\"forged\":true}".into();
        ins.insert(4, forged);
        for (i, r) in ins.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        let f = verify_records(&ins, &[], None).unwrap();
        assert_eq!((f.kind, f.seq), (ChainFaultKind::Inserted, 5));
    }

    #[test]
    fn r14_audit_payload_rejects_template_like_data() {
        let vec: Vec<f32> = (0..512).map(|i| i as f32 / 512.0).collect();
        assert!(check_payload(&json!({ "v": vec })).is_err());
        assert!(check_payload(&json!({ "template": "AAAA" })).is_err());
        assert!(check_payload(&json!({ "note": "x".repeat(600) })).is_err());
        assert!(check_payload(&json!({ "templates_deleted": 3, "link_ids": ["a"] })).is_ok());
        assert!(check_payload(&json!({ "score": 0.71, "threshold": 0.5 })).is_ok());
    }
}
