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

    /// The request this site opened for a hub access command (its channel
    /// names the command) for one person, if it did: one lookup by channel
    /// and person, so a re-applied command finds its request again.
    pub async fn hub_request_opened(&self, channel: &str, person: Uuid) -> Result<Option<Uuid>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM requests WHERE channel = $1 AND person_id = $2 ORDER BY received_at, id LIMIT 1",
        )
        .bind(channel)
        .bind(person.to_string())
        .fetch_optional(&self.pool)
        .await?;
        id.map(|i| crate::parse_id(&i, "requests.id")).transpose()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewRequest, RequestKind, StoreKeys};

    /// Two requests of one hub command (two persons), one of another
    /// command, and one of the person's own: the lookup finds exactly the
    /// request of the command and person asked for, and nothing else.
    async fn finds_the_request_of_one_command_and_person(store: &Store) {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let due = chrono::NaiveDate::from_ymd_opt(2030, 1, 2).unwrap();
        let open = |person, channel: &str| NewRequest {
            person_id: Some(person),
            kind: RequestKind::Access,
            channel: channel.into(),
            due_date: due,
        };
        let mine = store.add_request(&open(a, "hub:1"), "test").await.unwrap();
        let theirs = store.add_request(&open(b, "hub:1"), "test").await.unwrap();
        store.add_request(&open(a, "hub:2"), "test").await.unwrap();
        store.add_request(&open(a, "portal"), "test").await.unwrap();
        assert_eq!(
            store.hub_request_opened("hub:1", a).await.unwrap(),
            Some(mine.id)
        );
        assert_eq!(
            store.hub_request_opened("hub:1", b).await.unwrap(),
            Some(theirs.id)
        );
        assert_eq!(store.hub_request_opened("hub:3", a).await.unwrap(), None);
        assert_eq!(
            store
                .hub_request_opened("hub:1", Uuid::now_v7())
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_hub_access_commands_request_is_found_by_channel_and_person() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("facegate.db").display());
        let store = Store::open(&url, StoreKeys::from_master(&[5; 32]))
            .await
            .unwrap();
        finds_the_request_of_one_command_and_person(&store).await;
        store.close().await;

        let Ok(base) = std::env::var("FACEGATE_TEST_DATABASE_URL") else {
            println!(
                "SKIP postgres: FACEGATE_TEST_DATABASE_URL is not set (scripts/test.sh sets it)"
            );
            return;
        };
        use sqlx::Connection;
        let name = format!("fg_hubreq_{}", Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let (head, query) = base.split_once('?').unwrap_or((base.as_str(), ""));
        let url = format!("{}/{name}?{query}", &head[..head.rfind('/').unwrap()]);
        let store = Store::open(&url, StoreKeys::from_master(&[5; 32]))
            .await
            .unwrap();
        finds_the_request_of_one_command_and_person(&store).await;
        store.close().await;
        sqlx::Executor::execute(
            &mut c,
            format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
        )
        .await
        .unwrap();
    }
}
