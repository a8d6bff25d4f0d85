//! Templates (sealed blobs in the separate `biometric` store), enrolment,
//! deletion, headcount and crash repair.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::audit::{append, write_audited, AuditEntry, ChainReport};
use crate::error::{Refusal, Result, StoreError};
use crate::records::DeletionReceipt;
use crate::{new_id, ts, RowExt, Store};

/// Filing threshold (R21): distinct persons with stored face information.
pub const FILING_THRESHOLD: i64 = 100_000;

/// Largest sealed template the store accepts (bytes).
pub const MAX_SEALED_TEMPLATE: usize = 64 * 1024;

/// One enrolment: a sealed template for a person in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolment {
    /// The person (must exist, not erased).
    pub person_id: Uuid,
    /// The scenario (the person needs an active processing consent for it).
    pub scenario_id: Uuid,
    /// Capturing device (device-first storage, R11).
    pub device_id: Option<Uuid>,
    /// The template as sealed by `facegate-gallery` (AEAD under the
    /// biometric key). The store never sees plaintext templates.
    #[serde(skip)]
    pub sealed_template: Vec<u8>,
}

/// A new person with their processing consent and template, for
/// [`Store::import_batch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPersonEnrolment {
    /// Operator.
    pub processor_id: Uuid,
    /// Identity (encrypted at rest).
    pub identity: crate::records::PersonIdentity,
    /// Scenario consented to and enrolled in.
    pub scenario_id: Uuid,
    /// Notice the person saw.
    pub notice_id: Option<Uuid>,
    /// Where consent was given.
    pub consent_channel: String,
    /// Evidence of the consent.
    pub consent_evidence: String,
    /// Capturing device.
    pub device_id: Option<Uuid>,
    /// Template sealed by the gallery.
    #[serde(skip)]
    pub sealed_template: Vec<u8>,
}

/// A data key wrapped (encrypted) by the gallery's key-encryption key,
/// kept in the template store beside the templates it seals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrappedKeyRecord {
    /// The data key's ID (as recorded in the templates it seals).
    pub key_id: Uuid,
    /// The wrapped bytes, opaque to the store.
    #[serde(skip)]
    pub wrapped: Vec<u8>,
    /// Stored.
    pub created_at: DateTime<Utc>,
    /// Retired (no longer used to seal; kept while templates need it).
    pub retired_at: Option<DateTime<Utc>>,
}

/// What [`Store::enrol`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolReceipt {
    /// Random ID joining the person to the sealed blob.
    pub link_id: Uuid,
    /// The person.
    pub person_id: Uuid,
    /// Headcount after this enrolment.
    pub headcount: i64,
    /// Audit record written.
    pub audit_seq: i64,
    /// Commit time.
    pub at: DateTime<Utc>,
}

/// The headcount (R21).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headcount {
    /// Distinct persons with stored face information now.
    pub count: i64,
    /// First moment the count reached [`FILING_THRESHOLD`], if ever.
    pub threshold_reached_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One change of the headcount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadcountPoint {
    /// When.
    pub at: DateTime<Utc>,
    /// Count after the change.
    pub count: i64,
    /// +1 or −n.
    pub delta: i64,
}

/// Consistency of the store: what [`Store::check_integrity`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrityReport {
    /// Sealed blobs with no link (no person).
    pub orphan_templates: i64,
    /// Links with no sealed blob.
    pub links_without_template: i64,
    /// Templates whose person has no active processing consent for the scenario.
    pub templates_without_consent: i64,
    /// Templates of erased persons.
    pub templates_of_erased_persons: i64,
    /// Headcount as stored.
    pub headcount_stored: i64,
    /// Distinct persons with at least one template, counted now.
    pub headcount_actual: i64,
    /// Number of templates.
    pub templates: i64,
    /// The audit chain.
    pub chain: ChainReport,
}

impl IntegrityReport {
    /// True when every check passed.
    pub fn is_ok(&self) -> bool {
        self.orphan_templates == 0
            && self.links_without_template == 0
            && self.templates_without_consent == 0
            && self.templates_of_erased_persons == 0
            && self.headcount_stored == self.headcount_actual
            && self.chain.is_intact()
    }
}

pub(crate) fn r7_no_consent() -> StoreError {
    StoreError::Refused(Refusal::new(
        facegate_policy::RuleId::R7,
        "This person has no valid separate consent to face processing for this scenario; the face cannot be enrolled.",
        "此人没有有效的人脸处理单独同意，不能录入人脸。",
    ))
}

/// Any template added or deleted: the galleries of every instance follow
/// ([`Store::template_generation`]).
async fn bump_generation(tx: &mut Transaction<'static, Any>) -> Result<()> {
    sqlx::query("UPDATE template_generation SET generation = generation + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn count(tx: &mut Transaction<'static, Any>, sql: &str, id: &str) -> Result<i64> {
    let r = sqlx::query(sql).bind(id).fetch_one(&mut **tx).await?;
    Ok(r.try_get::<i64, _>(0)?)
}

impl Store {
    /// Add `delta` to the headcount, record the history point, and set the
    /// threshold date the first time the count reaches 100,000.
    pub(crate) async fn bump_headcount(
        &self,
        tx: &mut Transaction<'static, Any>,
        delta: i64,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        let row = sqlx::query("SELECT count, threshold_reached_at FROM headcount WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
        let new = row.i("count")? + delta;
        let reached = match row.os("threshold_reached_at")? {
            Some(s) => Some(s),
            None if new >= FILING_THRESHOLD => Some(ts(at)),
            None => None,
        };
        sqlx::query("UPDATE headcount SET count = $1, threshold_reached_at = $2, updated_at = $3 WHERE id = 1")
            .bind(new)
            .bind(reached)
            .bind(ts(at))
            .execute(&mut **tx)
            .await?;
        let seq =
            sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS s FROM headcount_history")
                .fetch_one(&mut **tx)
                .await?
                .i("s")?
                + 1;
        sqlx::query(
            "INSERT INTO headcount_history (seq, at, count, delta) VALUES ($1, $2, $3, $4)",
        )
        .bind(seq)
        .bind(ts(at))
        .bind(new)
        .bind(delta)
        .execute(&mut **tx)
        .await?;
        Ok(new)
    }

    async fn enrol_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        e: &Enrolment,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<EnrolReceipt> {
        if e.sealed_template.is_empty() || e.sealed_template.len() > MAX_SEALED_TEMPLATE {
            return Err(StoreError::Invalid(format!(
                "sealed template of {} bytes (expected 1..={MAX_SEALED_TEMPLATE})",
                e.sealed_template.len()
            )));
        }
        let pid = e.person_id.to_string();
        let person = sqlx::query("SELECT erased_at FROM persons WHERE id = $1")
            .bind(&pid)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "person",
                id: pid.clone(),
            })?;
        if person.os("erased_at")?.is_some() {
            return Err(StoreError::Invalid(format!("person {pid} was erased")));
        }
        let consent = sqlx::query(
            "SELECT id FROM consents WHERE person_id = $1 AND scenario_id = $2
             AND kind = 'processing' AND withdrawn_at IS NULL ORDER BY given_at DESC LIMIT 1",
        )
        .bind(&pid)
        .bind(e.scenario_id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(r7_no_consent)?
        .s("id")?;
        if let Some(d) = e.device_id {
            let row = sqlx::query("SELECT retired_at FROM devices WHERE id = $1")
                .bind(d.to_string())
                .fetch_optional(&mut **tx)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "device",
                    id: d.to_string(),
                })?;
            if row.os("retired_at")?.is_some() {
                return Err(StoreError::Invalid(format!("device {d} is retired")));
            }
        }
        let before = count(
            tx,
            "SELECT COUNT(*) FROM template_links WHERE person_id = $1",
            &pid,
        )
        .await?;
        let link_id = new_id();
        sqlx::query(
            "INSERT INTO template_links (link_id, person_id, scenario_id, device_id, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(link_id.to_string())
        .bind(&pid)
        .bind(e.scenario_id.to_string())
        .bind(e.device_id.map(|d| d.to_string()))
        .bind(ts(at))
        .execute(&mut **tx)
        .await?;
        sqlx::query("INSERT INTO biometric.templates (link_id, sealed) VALUES ($1, $2)")
            .bind(link_id.to_string())
            .bind(e.sealed_template.as_slice())
            .execute(&mut **tx)
            .await?;
        bump_generation(tx).await?;
        let headcount = if before == 0 {
            self.bump_headcount(tx, 1, at).await?
        } else {
            sqlx::query("SELECT count FROM headcount WHERE id = 1")
                .fetch_one(&mut **tx)
                .await?
                .i("count")?
        };
        sqlx::query("UPDATE persons SET last_seen_at = $1 WHERE id = $2")
            .bind(ts(at))
            .bind(&pid)
            .execute(&mut **tx)
            .await?;
        let audit_seq = append(
            self,
            tx,
            &AuditEntry::new(
                "enrol",
                actor,
                json!({ "link_id": link_id, "consent_id": consent, "headcount": headcount }),
            )
            .subject(e.person_id)
            .scenario(e.scenario_id)
            .device(e.device_id),
            at,
        )
        .await?;
        Ok(EnrolReceipt {
            link_id,
            person_id: e.person_id,
            headcount,
            audit_seq,
            at,
        })
    }

    /// Enrol one template, in one transaction: check the person and their
    /// active processing consent (R7, refused otherwise), insert the link and
    /// the sealed blob, update the headcount, append the audit record.
    pub async fn enrol(&self, e: &Enrolment, actor: &str) -> Result<EnrolReceipt> {
        let mut tx = self.begin().await?;
        let r = self.enrol_in(&mut tx, e, actor, crate::now()).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// Enrol many templates in one transaction (bulk import). All or
    /// nothing: the first refusal or error rolls the whole batch back.
    pub async fn enrol_batch(&self, es: &[Enrolment], actor: &str) -> Result<Vec<EnrolReceipt>> {
        let mut tx = self.begin().await?;
        let at = crate::now();
        let mut out = Vec::with_capacity(es.len());
        for e in es {
            out.push(self.enrol_in(&mut tx, e, actor, at).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Register new people and enrol them in one transaction per call
    /// (bulk import from a paper or legacy consent process): for each item,
    /// the person (identity encrypted), their processing consent and their
    /// template, each with its audit record. All or nothing.
    pub async fn import_batch(
        &self,
        items: &[NewPersonEnrolment],
        actor: &str,
    ) -> Result<Vec<EnrolReceipt>> {
        let mut tx = self.begin().await?;
        let at = crate::now();
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            let p = self
                .add_person_in(&mut tx, it.processor_id, &it.identity, actor, at)
                .await?;
            self.give_consent_in(
                &mut tx,
                &crate::records::NewConsent {
                    person_id: p.id,
                    scenario_id: it.scenario_id,
                    kind: crate::records::ConsentKind::Processing,
                    notice_id: it.notice_id,
                    given_by: crate::records::ConsentGiver::Subject,
                    channel: it.consent_channel.clone(),
                    evidence: it.consent_evidence.clone(),
                },
                actor,
                at,
            )
            .await?;
            let e = Enrolment {
                person_id: p.id,
                scenario_id: it.scenario_id,
                device_id: it.device_id,
                sealed_template: it.sealed_template.clone(),
            };
            out.push(self.enrol_in(&mut tx, &e, actor, at).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Store a wrapped data key (or replace its bytes after a KEK rotation).
    pub async fn put_wrapped_key(&self, key_id: Uuid, wrapped: &[u8], actor: &str) -> Result<()> {
        if wrapped.is_empty() || wrapped.len() > 4096 {
            return Err(StoreError::Invalid(
                "wrapped key must be 1..=4096 bytes".into(),
            ));
        }
        let now = crate::now();
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE biometric.wrapped_keys SET wrapped = $1 WHERE key_id = $2")
            .bind(wrapped)
            .bind(key_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            sqlx::query("INSERT INTO biometric.wrapped_keys (key_id, wrapped, created_at) VALUES ($1, $2, $3)")
                .bind(key_id.to_string())
                .bind(wrapped)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
        }
        append(
            self,
            &mut tx,
            &AuditEntry::new(
                if n == 0 {
                    "data_key_stored"
                } else {
                    "data_key_rewrapped"
                },
                actor,
                json!({ "key_id": key_id }),
            ),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// All wrapped data keys, oldest first.
    pub async fn wrapped_keys(&self) -> Result<Vec<WrappedKeyRecord>> {
        let rows = sqlx::query("SELECT key_id, wrapped, created_at, retired_at FROM biometric.wrapped_keys ORDER BY created_at, key_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(WrappedKeyRecord {
                    key_id: r.id("key_id")?,
                    wrapped: r.try_get::<Vec<u8>, _>("wrapped")?,
                    created_at: r.t("created_at")?,
                    retired_at: r.ot("retired_at")?,
                })
            })
            .collect()
    }

    /// The template generation: it changes with every template added or
    /// deleted, in the same transaction (one row read; cheap enough to ask
    /// before every face decision).
    pub async fn template_generation(&self) -> Result<i64> {
        let r = sqlx::query("SELECT generation FROM template_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        r.i("generation")
    }

    /// Sealed templates by link ID (those still stored), for a gallery that
    /// applies what changed since it was built. Logged like
    /// [`Store::scenario_templates`].
    pub async fn templates_by_link(
        &self,
        links: &[Uuid],
        actor: &str,
    ) -> Result<Vec<(Uuid, Uuid, Vec<u8>)>> {
        let mut out = Vec::with_capacity(links.len());
        for chunk in links.chunks(200) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT l.link_id AS link_id, l.person_id AS person_id, t.sealed AS sealed
                 FROM template_links l JOIN biometric.templates t ON t.link_id = l.link_id
                 WHERE l.link_id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for l in chunk {
                q = q.bind(l.to_string());
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push((
                    r.id("link_id")?,
                    r.id("person_id")?,
                    r.try_get::<Vec<u8>, _>("sealed")?,
                ));
            }
        }
        if !out.is_empty() {
            self.audit(&AuditEntry::new(
                "templates_read",
                actor,
                json!({ "templates": out.len() }),
            ))
            .await?;
        }
        Ok(out)
    }

    /// Claim `key_id` (wrapped: `wrapped`) as the data key `scenario_id`
    /// seals with, unless another instance claimed one first; either way
    /// returns the winner's ID and wrapped bytes. Insert-if-absent and the
    /// re-read of the winner are one transaction, so two instances never
    /// seal one scenario's templates under two keys.
    pub async fn claim_data_key(
        &self,
        scenario_id: Uuid,
        key_id: Uuid,
        wrapped: &[u8],
        actor: &str,
    ) -> Result<(Uuid, Vec<u8>)> {
        let now = crate::now();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO scenario_data_keys (scenario_id, key_id, claimed_at) VALUES ($1, $2, $3)
             ON CONFLICT (scenario_id) DO NOTHING",
        )
        .bind(scenario_id.to_string())
        .bind(key_id.to_string())
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let winner = sqlx::query("SELECT key_id FROM scenario_data_keys WHERE scenario_id = $1")
            .bind(scenario_id.to_string())
            .fetch_one(&mut *tx)
            .await?
            .id("key_id")?;
        let stored = sqlx::query("SELECT wrapped FROM biometric.wrapped_keys WHERE key_id = $1")
            .bind(winner.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<Vec<u8>, _>("wrapped"))
            .transpose()?;
        let bytes = match stored {
            Some(b) => b,
            None if winner == key_id => {
                if wrapped.is_empty() || wrapped.len() > 4096 {
                    return Err(StoreError::Invalid(
                        "wrapped key must be 1..=4096 bytes".into(),
                    ));
                }
                sqlx::query("INSERT INTO biometric.wrapped_keys (key_id, wrapped, created_at) VALUES ($1, $2, $3)")
                    .bind(key_id.to_string())
                    .bind(wrapped)
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
                append(
                    self,
                    &mut tx,
                    &AuditEntry::new("data_key_stored", actor, json!({ "key_id": key_id }))
                        .scenario(scenario_id),
                    now,
                )
                .await?;
                wrapped.to_vec()
            }
            None => {
                return Err(StoreError::Invalid(format!(
                    "the data key {winner} claimed for scenario {scenario_id} is not stored"
                )))
            }
        };
        tx.commit().await?;
        Ok((winner, bytes))
    }

    /// Whether the data key `key_id` is in the `wrapped_keys` table.
    pub async fn has_wrapped_key(&self, key_id: Uuid) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM biometric.wrapped_keys WHERE key_id = $1")
            .bind(key_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Mark a data key retired (kept until no template needs it).
    pub async fn retire_wrapped_key(&self, key_id: Uuid, actor: &str) -> Result<()> {
        let now = crate::now();
        write_audited(
            self,
            sqlx::query("UPDATE biometric.wrapped_keys SET retired_at = $1 WHERE key_id = $2 AND retired_at IS NULL")
            .bind(ts(now))
            .bind(key_id.to_string()),
            "active data key",
            key_id,
            &AuditEntry::new("data_key_retired", actor, json!({ "key_id": key_id })),
            now,
        )
        .await
    }

    /// Replace a template's sealed bytes (after re-sealing under a new data
    /// key), keeping its link.
    pub async fn reseal_template(&self, link_id: Uuid, sealed: &[u8], actor: &str) -> Result<()> {
        if sealed.is_empty() || sealed.len() > MAX_SEALED_TEMPLATE {
            return Err(StoreError::Invalid(format!(
                "sealed template of {} bytes",
                sealed.len()
            )));
        }
        let now = crate::now();
        write_audited(
            self,
            sqlx::query("UPDATE biometric.templates SET sealed = $1 WHERE link_id = $2")
                .bind(sealed)
                .bind(link_id.to_string()),
            "template",
            link_id,
            &AuditEntry::new("template_resealed", actor, json!({ "link_id": link_id })),
            now,
        )
        .await
    }

    /// The sealed templates of a person (link ID, blob), for matching on
    /// the device. Reading face data is audited (R20).
    pub async fn person_templates(
        &self,
        person_id: Uuid,
        scenario_id: Option<Uuid>,
        actor: &str,
    ) -> Result<Vec<(Uuid, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT l.link_id AS link_id, t.sealed AS sealed FROM template_links l
             JOIN biometric.templates t ON t.link_id = l.link_id
             WHERE l.person_id = $1 AND ($2 = '' OR l.scenario_id = $2) ORDER BY l.created_at",
        )
        .bind(person_id.to_string())
        .bind(scenario_id.map(|s| s.to_string()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        let out = rows
            .iter()
            .map(|r| Ok((r.id("link_id")?, r.try_get::<Vec<u8>, _>("sealed")?)))
            .collect::<Result<Vec<_>>>()?;
        self.audit(
            &AuditEntry::new("templates_read", actor, json!({ "templates": out.len() }))
                .subject(person_id),
        )
        .await?;
        Ok(out)
    }

    /// Every template link of a scenario (link, person, enrolled at), without
    /// the sealed bytes: what a retention decision needs and nothing more.
    pub async fn scenario_template_links(
        &self,
        scenario_id: Uuid,
    ) -> Result<Vec<(Uuid, Uuid, DateTime<Utc>)>> {
        let rows = sqlx::query(
            "SELECT link_id, person_id, created_at FROM template_links WHERE scenario_id = $1 ORDER BY created_at",
        )
        .bind(scenario_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.id("link_id")?, r.id("person_id")?, r.t("created_at")?)))
            .collect()
    }

    /// Every sealed template of a scenario with its person, for building a
    /// 1:N gallery in memory. Reading face data is audited (R20).
    pub async fn scenario_templates(
        &self,
        scenario_id: Uuid,
        actor: &str,
    ) -> Result<Vec<(Uuid, Uuid, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT l.link_id AS link_id, l.person_id AS person_id, t.sealed AS sealed
             FROM template_links l JOIN biometric.templates t ON t.link_id = l.link_id
             WHERE l.scenario_id = $1 ORDER BY l.created_at",
        )
        .bind(scenario_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let out = rows
            .iter()
            .map(|r| {
                Ok((
                    r.id("link_id")?,
                    r.id("person_id")?,
                    r.try_get::<Vec<u8>, _>("sealed")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.audit(
            &AuditEntry::new("templates_read", actor, json!({ "templates": out.len() }))
                .scenario(scenario_id),
        )
        .await?;
        Ok(out)
    }

    /// Delete these templates (link ID, person ID), link and sealed blob,
    /// inside `tx`, and take the persons left with no template off the
    /// headcount. Returns how many persons left it.
    pub(crate) async fn delete_links_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        links: &[(Uuid, Uuid)],
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut persons = std::collections::BTreeSet::new();
        for (link, person) in links {
            persons.insert(person.to_string());
            sqlx::query("DELETE FROM template_links WHERE link_id = $1")
                .bind(link.to_string())
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM biometric.templates WHERE link_id = $1")
                .bind(link.to_string())
                .execute(&mut **tx)
                .await?;
        }
        if !links.is_empty() {
            bump_generation(tx).await?;
        }
        let mut gone = 0u64;
        for p in &persons {
            let left = count(
                tx,
                "SELECT COUNT(*) FROM template_links WHERE person_id = $1",
                p,
            )
            .await?;
            if left == 0 {
                gone += 1;
            }
        }
        if gone > 0 {
            self.bump_headcount(tx, -(gone as i64), at).await?;
        }
        Ok(gone)
    }

    /// Delete a person's templates (all, or one scenario's) inside `tx`,
    /// adjust the headcount and log it. Returns the receipt.
    pub(crate) async fn delete_templates_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        person_id: Uuid,
        scenario_id: Option<Uuid>,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<DeletionReceipt> {
        let pid = person_id.to_string();
        let rows = sqlx::query(
            "SELECT link_id FROM template_links WHERE person_id = $1 AND ($2 = '' OR scenario_id = $2)",
        )
        .bind(&pid)
        .bind(scenario_id.map(|s| s.to_string()).unwrap_or_default())
        .fetch_all(&mut **tx)
        .await?;
        let links = rows
            .iter()
            .map(|r| r.id("link_id"))
            .collect::<Result<Vec<_>>>()?;
        let pairs: Vec<_> = links.iter().map(|&l| (l, person_id)).collect();
        self.delete_links_in(tx, &pairs, at).await?;
        let receipt_id = new_id();
        let mut details = json!({
            "receipt_id": receipt_id,
            "reason": reason,
            "templates_deleted": links.len(),
        });
        if links.len() <= 32 {
            details["link_ids"] = json!(links);
        }
        let mut entry = AuditEntry::new("face_data_deleted", actor, details).subject(person_id);
        entry.scenario_id = scenario_id;
        let audit_seq = append(self, tx, &entry, at).await?;
        Ok(DeletionReceipt {
            receipt_id,
            person_id,
            scenario_id,
            templates_deleted: links.len() as u64,
            link_ids: links,
            reason: reason.into(),
            at,
            audit_seq,
        })
    }

    /// Delete a person's templates (all scenarios, or one) without touching
    /// consents, e.g. for a re-enrolment. Returns the deletion receipt.
    pub async fn delete_templates(
        &self,
        person_id: Uuid,
        scenario_id: Option<Uuid>,
        reason: &str,
        actor: &str,
    ) -> Result<DeletionReceipt> {
        let mut tx = self.begin().await?;
        let r = self
            .delete_templates_in(&mut tx, person_id, scenario_id, reason, actor, crate::now())
            .await?;
        tx.commit().await?;
        self.checkpoint_best_effort().await;
        Ok(r)
    }

    /// The headcount now.
    pub async fn headcount(&self) -> Result<Headcount> {
        let r = sqlx::query(
            "SELECT count, threshold_reached_at, updated_at FROM headcount WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Headcount {
            count: r.i("count")?,
            threshold_reached_at: r.ot("threshold_reached_at")?,
            updated_at: r.t("updated_at")?,
        })
    }

    /// Headcount changes in `[from, to)`, in order.
    pub async fn headcount_history(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HeadcountPoint>> {
        let rows = sqlx::query(
            "SELECT at, count, delta FROM headcount_history WHERE at >= $1 AND at < $2 ORDER BY seq",
        )
        .bind(ts(from))
        .bind(ts(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HeadcountPoint {
                    at: r.t("at")?,
                    count: r.i("count")?,
                    delta: r.i("delta")?,
                })
            })
            .collect()
    }

    /// The first moment the headcount reached `n` (e.g. 80,000 for an early
    /// alert, 100,000 for the filing threshold), from the history.
    pub async fn first_reached(&self, n: i64) -> Result<Option<DateTime<Utc>>> {
        let r =
            sqlx::query("SELECT at FROM headcount_history WHERE count >= $1 ORDER BY seq LIMIT 1")
                .bind(n)
                .fetch_optional(&self.pool)
                .await?;
        r.map(|r| r.t("at")).transpose()
    }

    /// Check the invariants: every template has its person and an active
    /// processing consent, the headcount matches the real count, the audit
    /// chain verifies.
    pub async fn check_integrity(&self) -> Result<IntegrityReport> {
        let one = |sql: &'static str| async move {
            let r = sqlx::query(sql).fetch_one(&self.pool).await?;
            Ok::<i64, StoreError>(r.try_get::<i64, _>(0)?)
        };
        Ok(IntegrityReport {
            orphan_templates: one(
                "SELECT COUNT(*) FROM biometric.templates t
                 WHERE NOT EXISTS (SELECT 1 FROM template_links l WHERE l.link_id = t.link_id)",
            )
            .await?,
            links_without_template: one(
                "SELECT COUNT(*) FROM template_links l
                 WHERE NOT EXISTS (SELECT 1 FROM biometric.templates t WHERE t.link_id = l.link_id)",
            )
            .await?,
            templates_without_consent: one(
                "SELECT COUNT(*) FROM template_links l WHERE NOT EXISTS (
                    SELECT 1 FROM consents c WHERE c.person_id = l.person_id
                    AND c.scenario_id = l.scenario_id AND c.kind = 'processing'
                    AND c.withdrawn_at IS NULL)",
            )
            .await?,
            templates_of_erased_persons: one(
                "SELECT COUNT(*) FROM template_links l JOIN persons p ON p.id = l.person_id
                 WHERE p.erased_at IS NOT NULL",
            )
            .await?,
            headcount_stored: one("SELECT count FROM headcount WHERE id = 1").await?,
            headcount_actual: one("SELECT COUNT(DISTINCT person_id) FROM template_links").await?,
            templates: one("SELECT COUNT(*) FROM biometric.templates").await?,
            chain: self.verify_chain().await?,
        })
    }

    /// Repair what a crash can leave behind, and log it. On SQLite the two
    /// files commit one after the other (main first), so a process killed
    /// in between leaves a link without its blob (enrolment) or a blob
    /// without its link (deletion); both are undone here, under the write
    /// lock, with the headcount corrected. Runs at every [`Store::open`]
    /// and sweep. Returns the number of rows repaired.
    pub async fn reconcile(&self) -> Result<u64> {
        let mut tx = self.begin().await?;
        let orphans = sqlx::query(
            "DELETE FROM biometric.templates WHERE NOT EXISTS
             (SELECT 1 FROM template_links l WHERE l.link_id = biometric.templates.link_id)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let dangling = sqlx::query(
            "DELETE FROM template_links WHERE NOT EXISTS
             (SELECT 1 FROM biometric.templates t WHERE t.link_id = template_links.link_id)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if orphans + dangling > 0 {
            bump_generation(&mut tx).await?;
        }
        let stored = sqlx::query("SELECT count FROM headcount WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .i("count")?;
        let actual = sqlx::query("SELECT COUNT(DISTINCT person_id) FROM template_links")
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>(0)?;
        let now = crate::now();
        if actual != stored {
            self.bump_headcount(&mut tx, actual - stored, now).await?;
        }
        let fixed = orphans + dangling + (actual - stored).unsigned_abs();
        if fixed > 0 {
            append(
                self,
                &mut tx,
                &AuditEntry::new(
                    "recovered",
                    "system:reconcile",
                    json!({
                        "orphan_templates_deleted": orphans,
                        "incomplete_enrolments_removed": dangling,
                        "headcount_corrected_by": actual - stored,
                    }),
                ),
                now,
            )
            .await?;
            tx.commit().await?;
            if orphans > 0 {
                self.checkpoint_best_effort().await;
            }
        } else {
            tx.rollback().await?;
        }
        Ok(fixed)
    }
}
