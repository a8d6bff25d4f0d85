//! The site's side of the hub protocol (see the `facegate-hub` crate): the
//! pseudonym a person was announced under, and the inbox of hub commands.
//! Nothing here holds face information.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::{now, ts, RowExt, Store};

/// One hub command as the site recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubInboxRow {
    pub command_id: Uuid,
    pub seq: i64,
    pub kind: String,
    pub pseudonym: String,
    pub applied: bool,
    pub status: Option<String>,
    pub templates_deleted: Option<i64>,
    pub site_receipt_id: Option<Uuid>,
    pub applied_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn row(r: &sqlx::any::AnyRow) -> Result<HubInboxRow> {
    Ok(HubInboxRow {
        command_id: r.id("command_id")?,
        seq: r.i("seq")?,
        kind: r.s("kind")?,
        pseudonym: r.s("pseudonym")?,
        applied: r.os("applied_at")?.is_some(),
        status: r.os("status")?,
        templates_deleted: r.oi("templates_deleted")?,
        site_receipt_id: r.oid("site_receipt_id")?,
        applied_at: r.ot("applied_at")?,
    })
}

const COLS: &str =
    "command_id, seq, kind, pseudonym, applied_at, status, templates_deleted, site_receipt_id";

impl Store {
    /// Remember the pseudonym a person was announced to the hub under.
    pub async fn hub_remember_pseudonym(&self, person: Uuid, pseudonym: &str) -> Result<()> {
        sqlx::query("INSERT INTO hub_pseudonyms (person_id, pseudonym) VALUES ($1, $2) ON CONFLICT (person_id) DO NOTHING")
            .bind(person.to_string())
            .bind(pseudonym)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The pseudonym a person was announced under, if any.
    pub async fn hub_pseudonym_of(&self, person: Uuid) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT pseudonym FROM hub_pseudonyms WHERE person_id = $1")
                .bind(person.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The persons announced under a pseudonym.
    pub async fn hub_persons_of(&self, pseudonym: &str) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT person_id FROM hub_pseudonyms WHERE pseudonym = $1 ORDER BY person_id",
        )
        .bind(pseudonym)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.id("person_id")).collect()
    }

    /// How many templates a person has now (any scenario).
    pub async fn hub_template_count(&self, person: Uuid) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM template_links WHERE person_id = $1")
                .bind(person.to_string())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Record a hub command (idempotent: its id is the key).
    pub async fn hub_inbox_receive(
        &self,
        command_id: Uuid,
        seq: i64,
        kind: &str,
        pseudonym: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO hub_inbox (command_id, seq, kind, pseudonym, received_at) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (command_id) DO NOTHING")
            .bind(command_id.to_string())
            .bind(seq)
            .bind(kind)
            .bind(pseudonym)
            .bind(ts(now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Commands received and not applied yet, in the hub's order.
    pub async fn hub_inbox_unapplied(&self) -> Result<Vec<HubInboxRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM hub_inbox WHERE applied_at IS NULL ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    /// Mark a command applied with its result (once: a second call changes
    /// nothing and returns false).
    pub async fn hub_inbox_applied(
        &self,
        command_id: Uuid,
        status: &str,
        templates_deleted: i64,
        site_receipt_id: Option<Uuid>,
    ) -> Result<bool> {
        let n = sqlx::query("UPDATE hub_inbox SET applied_at = $1, status = $2, templates_deleted = $3, site_receipt_id = $4 WHERE command_id = $5 AND applied_at IS NULL")
            .bind(ts(now()))
            .bind(status)
            .bind(templates_deleted)
            .bind(site_receipt_id.map(|u| u.to_string()))
            .bind(command_id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Applied commands whose receipt the hub has not acknowledged.
    pub async fn hub_inbox_unacknowledged(&self) -> Result<Vec<HubInboxRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM hub_inbox WHERE applied_at IS NOT NULL AND acknowledged_at IS NULL ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    /// The hub no longer lists these commands: their receipts arrived.
    pub async fn hub_inbox_acknowledge(&self, command_ids: &[Uuid]) -> Result<()> {
        for id in command_ids {
            sqlx::query("UPDATE hub_inbox SET acknowledged_at = $1 WHERE command_id = $2 AND acknowledged_at IS NULL")
                .bind(ts(now()))
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Access requests from the hub opened here and not yet answered
    /// (`site_receipt_id` is this site's request).
    pub async fn hub_inbox_awaiting_answer(&self) -> Result<Vec<HubInboxRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM hub_inbox WHERE kind = 'access' AND status = 'received' ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    /// The site answered a hub access request at `at`: its second receipt
    /// (answered, with the time) goes to the hub at the next sync.
    pub async fn hub_inbox_answered(&self, command_id: Uuid, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE hub_inbox SET status = 'answered', applied_at = $1, acknowledged_at = NULL WHERE command_id = $2 AND status = 'received'")
            .bind(ts(at))
            .bind(command_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
