//! Scenario manifests the hub signed and pushed to this site (issue 16):
//! the hub's pinned manifest key, and every signed manifest received, keyed
//! by the hub command that carried it. Nothing here holds face information.

use uuid::Uuid;

use crate::error::Result;
use crate::{now, ts, RowExt, Store};

/// A signed manifest as the site received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubManifestRow {
    pub command_id: Uuid,
    pub manifest_id: Uuid,
    pub scenario: String,
    pub version: i64,
    pub notice_version: String,
    pub manifest: String,
    pub signature: String,
    pub deployed: bool,
    pub refused: Option<String>,
}

fn row(r: &sqlx::any::AnyRow) -> Result<HubManifestRow> {
    Ok(HubManifestRow {
        command_id: r.id("command_id")?,
        manifest_id: r.id("manifest_id")?,
        scenario: r.s("scenario")?,
        version: r.i("version")?,
        notice_version: r.s("notice_version")?,
        manifest: r.s("manifest")?,
        signature: r.s("signature")?,
        deployed: r.os("deployed_at")?.is_some(),
        refused: r.os("refused")?,
    })
}

const COLS: &str = "command_id, manifest_id, scenario, version, notice_version, manifest, signature, deployed_at, refused";

impl Store {
    /// Pin the hub's manifest-signing public key (replacing an earlier pin:
    /// the operator configures which hub governs the site).
    pub async fn hub_pin_manifest_key(&self, public_key: &str) -> Result<()> {
        sqlx::query("INSERT INTO hub_manifest_pin (id, public_key, pinned_at) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET public_key = EXCLUDED.public_key, pinned_at = EXCLUDED.pinned_at")
            .bind(public_key)
            .bind(ts(now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Detach the site from its hub: remove the pin, so the site's own
    /// manifests deploy again, with an audit record. An explicit act
    /// (`facegate hub-detach`), never the side effect of a start without
    /// `--hub`: a replica or a restart started without the flag must not
    /// reopen local uploads on a hub-managed site. `false` if none was pinned.
    pub async fn hub_detach(&self, actor: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM hub_manifest_pin")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let at = now();
        crate::audit::append(
            self,
            &mut tx,
            &crate::audit::AuditEntry::new("hub_detached", actor, serde_json::json!({})),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The pinned hub manifest key, if the site is attached to a hub.
    pub async fn hub_manifest_key(&self) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT public_key FROM hub_manifest_pin WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Keep a signed manifest a hub command carries (idempotent by command).
    #[allow(clippy::too_many_arguments)]
    pub async fn hub_manifest_receive(
        &self,
        command_id: Uuid,
        manifest_id: Uuid,
        scenario: &str,
        version: i64,
        notice_version: &str,
        manifest: &str,
        signature: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO hub_manifests (command_id, manifest_id, scenario, version, notice_version, manifest, signature, received_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (command_id) DO NOTHING")
            .bind(command_id.to_string())
            .bind(manifest_id.to_string())
            .bind(scenario)
            .bind(version)
            .bind(notice_version)
            .bind(manifest)
            .bind(signature)
            .bind(ts(now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The signed manifest a command carried.
    pub async fn hub_manifest(&self, command_id: Uuid) -> Result<Option<HubManifestRow>> {
        let r = sqlx::query(&format!(
            "SELECT {COLS} FROM hub_manifests WHERE command_id = $1"
        ))
        .bind(command_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(row).transpose()
    }

    /// Record the outcome of deploying a signed manifest: deployed, or
    /// refused with the reason.
    pub async fn hub_manifest_outcome(
        &self,
        command_id: Uuid,
        refused: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE hub_manifests SET deployed_at = $1, refused = $2 WHERE command_id = $3",
        )
        .bind(refused.is_none().then(|| ts(now())))
        .bind(refused)
        .bind(command_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest deployed hub manifest of each scenario (what a restart
    /// deploys again).
    pub async fn hub_manifests_deployed(&self) -> Result<Vec<HubManifestRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM hub_manifests m WHERE deployed_at IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM hub_manifests n WHERE n.scenario = m.scenario AND n.deployed_at IS NOT NULL AND n.version > m.version)
             ORDER BY scenario"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    /// A command the hub sent again although the site applied it and had
    /// its receipt acknowledged: send the receipt again (the command is not
    /// applied again).
    pub async fn hub_inbox_resend_receipt(&self, command_id: Uuid) -> Result<()> {
        sqlx::query("UPDATE hub_inbox SET acknowledged_at = NULL WHERE command_id = $1 AND applied_at IS NOT NULL AND acknowledged_at IS NOT NULL")
            .bind(command_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
