//! The retention sweep (R12): delete what has expired, in batches, and log
//! the counts to the audit chain. Audit records are never swept (R14).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{append, AuditEntry, AUDIT_RETENTION_DAYS_MIN};
use crate::error::{Refusal, Result, StoreError};
use crate::{ts, RowExt, Store};
use facegate_policy::RuleId;

/// What one sweep deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Templates past their scenario's retention period.
    pub expired_templates: u64,
    /// Templates of persons inactive longer than the scenario allows.
    pub inactive_templates: u64,
    /// Persons who no longer have any face information (headcount drop).
    pub persons_left_headcount: u64,
    /// Verification events older than the event retention.
    pub events_deleted: u64,
    /// Rows repaired after a crash (see [`Store::reconcile`]).
    pub repaired: u64,
    /// Transactions (batches) used.
    pub batches: u64,
    /// Audit records written for the sweep (one per batch plus a summary).
    pub audit_seqs: Vec<i64>,
}

/// Templates older than the scenario's retention period.
const EXPIRED: &str = "SELECT l.link_id AS link_id, l.person_id AS person_id FROM template_links l
     WHERE l.scenario_id = $1 AND l.created_at < $2 ORDER BY l.created_at LIMIT $3";

/// Templates of persons not seen for the scenario's inactivity period.
const INACTIVE: &str = "SELECT l.link_id AS link_id, l.person_id AS person_id FROM template_links l
     JOIN persons p ON p.id = l.person_id
     WHERE l.scenario_id = $1 AND p.last_seen_at < $2 ORDER BY p.last_seen_at LIMIT $3";

impl Store {
    /// Run a retention sweep as of `now`: templates older than their
    /// scenario's `template_retention_days`, templates of persons not seen
    /// for the scenario's `inactivity_days`, and verification events older
    /// than `event_retention_days` (at least [`AUDIT_RETENTION_DAYS_MIN`],
    /// as events are processing records, R14). Each batch of at most
    /// `batch` rows is one transaction that logs its counts to the audit
    /// chain.
    pub async fn sweep(
        &self,
        now: DateTime<Utc>,
        batch: i64,
        event_retention_days: i64,
        actor: &str,
    ) -> Result<SweepReport> {
        if batch < 1 {
            return Err(StoreError::Invalid("sweep batch must be at least 1".into()));
        }
        if event_retention_days < AUDIT_RETENTION_DAYS_MIN {
            return Err(StoreError::Refused(Refusal::new(
                RuleId::R14,
                format!("processing records are kept at least {AUDIT_RETENTION_DAYS_MIN} days (3 years); an event retention of {event_retention_days} days is too short"),
                format!("处理情况记录至少保存{AUDIT_RETENTION_DAYS_MIN}天（3年）；{event_retention_days}天的事件保存期限过短"),
            )));
        }
        let mut rep = SweepReport {
            repaired: self.reconcile().await?,
            ..Default::default()
        };
        // Expired liveness challenges and capture frame hashes (no audit
        // record: they are not personal information, only keyed hashes).
        self.sweep_liveness(now).await?;
        for s in self.scenarios().await? {
            let cutoff = ts(now - Duration::days(s.template_retention_days));
            let n = self
                .sweep_templates(
                    &mut rep,
                    s.scenario_id,
                    EXPIRED,
                    &cutoff,
                    batch,
                    "template_retention",
                    actor,
                )
                .await?;
            rep.expired_templates += n;
            if let Some(days) = s.inactivity_days {
                let cutoff = ts(now - Duration::days(days));
                let n = self
                    .sweep_templates(
                        &mut rep,
                        s.scenario_id,
                        INACTIVE,
                        &cutoff,
                        batch,
                        "inactivity",
                        actor,
                    )
                    .await?;
                rep.inactive_templates += n;
            }
        }
        let cutoff = ts(now - Duration::days(event_retention_days));
        loop {
            let mut tx = self.begin().await?;
            let n = sqlx::query(
                "DELETE FROM verification_events WHERE id IN
                 (SELECT id FROM verification_events WHERE at < $1 ORDER BY at LIMIT $2)",
            )
            .bind(&cutoff)
            .bind(batch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                break;
            }
            let seq = append(
                self,
                &mut tx,
                &AuditEntry::new(
                    "retention_sweep",
                    actor,
                    json!({ "reason": "event_retention", "events_deleted": n }),
                ),
                crate::now(),
            )
            .await?;
            tx.commit().await?;
            rep.events_deleted += n;
            rep.batches += 1;
            rep.audit_seqs.push(seq);
        }
        let seq = self
            .audit(&AuditEntry::new(
                "retention_sweep_done",
                actor,
                json!({
                    "as_of": ts(now),
                    "expired_templates": rep.expired_templates,
                    "inactive_templates": rep.inactive_templates,
                    "persons_left_headcount": rep.persons_left_headcount,
                    "events_deleted": rep.events_deleted,
                    "batches": rep.batches,
                }),
            ))
            .await?;
        rep.audit_seqs.push(seq);
        if rep.expired_templates + rep.inactive_templates + rep.events_deleted > 0 {
            self.checkpoint_best_effort().await;
        }
        Ok(rep)
    }

    /// Delete, batch by batch, the scenario's templates that `select` picks
    /// (binds: scenario, cutoff, limit), adding the persons who left the
    /// headcount, the batches and their audit records to `rep`. Returns the
    /// number of templates deleted.
    #[allow(clippy::too_many_arguments)]
    async fn sweep_templates(
        &self,
        rep: &mut SweepReport,
        scenario: Uuid,
        select: &str,
        cutoff: &str,
        batch: i64,
        reason: &str,
        actor: &str,
    ) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let now = crate::now();
            let mut tx = self.begin().await?;
            let rows = sqlx::query(select)
                .bind(scenario.to_string())
                .bind(cutoff)
                .bind(batch)
                .fetch_all(&mut *tx)
                .await?;
            if rows.is_empty() {
                tx.rollback().await?;
                return Ok(deleted);
            }
            let links = rows
                .iter()
                .map(|r| Ok((r.id("link_id")?, r.id("person_id")?)))
                .collect::<Result<Vec<_>>>()?;
            let gone = self.delete_links_in(&mut tx, &links, now).await?;
            let seq = append(
                self,
                &mut tx,
                &AuditEntry::new(
                    "retention_sweep",
                    actor,
                    json!({ "reason": reason, "templates_deleted": links.len(), "persons_left_headcount": gone }),
                )
                .scenario(scenario),
                now,
            )
            .await?;
            tx.commit().await?;
            deleted += links.len() as u64;
            rep.persons_left_headcount += gone;
            rep.batches += 1;
            rep.audit_seqs.push(seq);
        }
    }
}
