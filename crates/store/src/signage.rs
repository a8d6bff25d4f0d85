//! Signage evidence (R19): a photo of the notice sign at each device, kept
//! in the store (so every instance and every restart shows the same one)
//! and shown in the filing pack. One photo per device; a new upload
//! replaces the old one, and both are audited.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::{append, AuditEntry};
use crate::{now, ts, Result, RowExt, Store};

/// A stored signage photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignagePhoto {
    /// The device (store id).
    pub device_id: Uuid,
    /// `image/jpeg`, `image/png` or `image/webp` (checked by the caller).
    pub content_type: String,
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
    /// The image.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub uploaded_at: DateTime<Utc>,
    pub uploaded_by: String,
}

impl Store {
    /// Store (or replace) the signage photo of a device, audited.
    pub async fn put_signage_photo(
        &self,
        device_id: Uuid,
        content_type: &str,
        bytes: &[u8],
        actor: &str,
    ) -> Result<SignagePhoto> {
        let at = now();
        let sha256 = hex::encode(Sha256::digest(bytes));
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM signage_photos WHERE device_id = $1")
            .bind(device_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signage_photos (device_id, content_type, sha256, image, uploaded_at, uploaded_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(device_id.to_string())
        .bind(content_type)
        .bind(&sha256)
        .bind(bytes.to_vec())
        .bind(ts(at))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        let entry = AuditEntry::new(
            "signage_uploaded",
            actor,
            json!({ "content_type": content_type, "sha256": sha256, "bytes": bytes.len() }),
        )
        .device(Some(device_id));
        append(self, &mut tx, &entry, at).await?;
        tx.commit().await?;
        Ok(SignagePhoto {
            device_id,
            content_type: content_type.into(),
            sha256,
            bytes: bytes.to_vec(),
            uploaded_at: at,
            uploaded_by: actor.into(),
        })
    }

    /// Every stored signage photo.
    pub async fn signage_photos(&self) -> Result<Vec<SignagePhoto>> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT device_id, content_type, sha256, image, uploaded_at, uploaded_by FROM signage_photos ORDER BY device_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SignagePhoto {
                    device_id: r.id("device_id")?,
                    content_type: r.s("content_type")?,
                    sha256: r.s("sha256")?,
                    bytes: r.try_get::<Vec<u8>, _>("image")?,
                    uploaded_at: r.t("uploaded_at")?,
                    uploaded_by: r.s("uploaded_by")?,
                })
            })
            .collect()
    }
}
