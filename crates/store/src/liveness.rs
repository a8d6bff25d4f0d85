//! Liveness state a decision depends on (issue 15): the server-issued
//! challenges (nonce hashed, taken once) and keyed hashes of the frames of
//! recent captures (never an image), so that an exact replay is refused
//! after a restart and by a second instance on the same database alike.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::{ts, RowExt, Store};

/// A challenge as issued: what it is bound to and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessChallenge {
    /// Hex SHA-256 of the nonce (the store never sees the nonce).
    pub nonce_sha256: String,
    /// Store id of the scenario.
    pub scenario_id: Uuid,
    /// The device (manifest id) it was issued to; empty when issued to a
    /// caller without a device (an operator at a counter).
    pub device: String,
    /// The person claimed (1:1); `None` for identification (1:N).
    pub person_id: Option<Uuid>,
    /// The actions, in order, as the caller encodes them (JSON).
    pub actions: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Keep an issued challenge; expired ones are swept in the same
    /// transaction.
    pub async fn put_liveness_challenge(&self, c: &LivenessChallenge) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM liveness_challenges WHERE expires_at <= $1")
            .bind(ts(c.issued_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO liveness_challenges (nonce_sha256, scenario_id, device, person_id, actions, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.nonce_sha256)
        .bind(c.scenario_id.to_string())
        .bind(&c.device)
        .bind(c.person_id.map(|p| p.to_string()))
        .bind(&c.actions)
        .bind(ts(c.issued_at))
        .bind(ts(c.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Take a challenge: it is deleted in the same transaction that reads
    /// it, so of two requests carrying one nonce only one gets it (the
    /// other gets `None`, as for an unknown nonce). The caller checks the
    /// deadline and the binding.
    pub async fn take_liveness_challenge(
        &self,
        nonce_sha256: &str,
    ) -> Result<Option<LivenessChallenge>> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(&format!(
            "SELECT nonce_sha256, scenario_id, device, person_id, actions, issued_at, expires_at
             FROM liveness_challenges WHERE nonce_sha256 = $1{}",
            self.for_update()
        ))
        .bind(nonce_sha256)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = r else { return Ok(None) };
        let n = sqlx::query("DELETE FROM liveness_challenges WHERE nonce_sha256 = $1")
            .bind(nonce_sha256)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if n != 1 {
            return Ok(None);
        }
        Ok(Some(LivenessChallenge {
            nonce_sha256: r.s("nonce_sha256")?,
            scenario_id: r.id("scenario_id")?,
            device: r.s("device")?,
            person_id: r.oid("person_id")?,
            actions: r.s("actions")?,
            issued_at: r.t("issued_at")?,
            expires_at: r.t("expires_at")?,
        }))
    }

    /// Remember the frames of a capture (each given as the hex SHA-256 of
    /// its bytes; stored as a keyed hash) until `expires_at`, and say
    /// whether any of them was already seen in an unexpired capture: `true`
    /// means a replay. Duplicates within `frame_sha256` are one frame.
    /// Expired hashes are swept in the same transaction.
    pub async fn remember_capture_frames(
        &self,
        frame_sha256: &[String],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut macs: Vec<String> = frame_sha256
            .iter()
            .map(|h| self.keys.credential_lookup("capture-frame", h))
            .collect();
        macs.sort();
        macs.dedup();
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM capture_frame_hashes WHERE expires_at <= $1")
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        let mut replay = false;
        for m in &macs {
            let seen =
                sqlx::query("SELECT frame_mac FROM capture_frame_hashes WHERE frame_mac = $1")
                    .bind(m)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
            if seen {
                replay = true;
                sqlx::query("UPDATE capture_frame_hashes SET seen_at = $2, expires_at = $3 WHERE frame_mac = $1")
                    .bind(m)
                    .bind(ts(now))
                    .bind(ts(expires_at))
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query(
                    "INSERT INTO capture_frame_hashes (frame_mac, seen_at, expires_at) VALUES ($1, $2, $3)",
                )
                .bind(m)
                .bind(ts(now))
                .bind(ts(expires_at))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(replay)
    }

    /// Delete expired challenges and frame hashes (the retention sweep calls
    /// this too); returns how many rows went.
    pub async fn sweep_liveness(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let mut n = sqlx::query("DELETE FROM liveness_challenges WHERE expires_at <= $1")
            .bind(ts(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        n += sqlx::query("DELETE FROM capture_frame_hashes WHERE expires_at <= $1")
            .bind(ts(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// How many frame hashes are kept (tests, metrics).
    pub async fn capture_frame_hash_count(&self) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM capture_frame_hashes")
            .fetch_one(&self.pool)
            .await?;
        r.i("n")
    }
}
