//! Scenario manifests authored and linted at the hub, signed with the hub's
//! manifest key (Ed25519) and pushed to the sites that run them.
//!
//! An operator uploads a manifest (the same TOML a site deploys) with
//! `POST /v1/manifests`; the policy crate's linter runs here first and an
//! error refuses the upload (422, every error naming its requirement and
//! article). A valid manifest becomes the next hub version of its scenario
//! and is signed over [`signed_bytes`]: its id, scenario, version, notice
//! version and the SHA-256 of its exact text. `POST
//! /v1/manifests/{id}/assign` queues a `deploy` command for each named
//! site in the same ordered, idempotent inbox as withdrawals; the site
//! checks the signature with the hub key it pinned, refuses an altered or
//! foreign one, and deploys through the core's normal deploy path (so the
//! site's lint and notice-change rules apply there too). `GET
//! /v1/manifests` shows which version each site runs, what is pending and
//! what a site refused.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::proto::{HubCommand, SignedManifest};
use crate::server::HubState;
use crate::{ts, HubError, Result};

/// The hub's manifest-signing key (its seed in `manifest.key` in the hub's
/// directory; `manifest.pub` holds the public key every site pins).
pub struct ManifestKey(SigningKey);

impl ManifestKey {
    pub fn generate() -> ManifestKey {
        ManifestKey(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    pub fn from_seed(seed: [u8; 32]) -> ManifestKey {
        ManifestKey(SigningKey::from_bytes(&seed))
    }

    /// The public key, 64 hex digits.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// Load `dir/manifest.key`, creating it (and `manifest.pub`) if absent;
    /// when two instances start at once, the one that loses the race loads
    /// the winner's key.
    pub fn load_or_create(dir: &Path) -> Result<ManifestKey> {
        let path = dir.join("manifest.key");
        if let Ok(k) = Self::load(&path) {
            return Ok(k);
        }
        let k = ManifestKey::generate();
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        match o.open(&path) {
            Ok(mut f) => {
                use std::io::Write;
                writeln!(f, "{}", hex::encode(k.0.to_bytes()))
                    .map_err(|e| HubError::Config(e.to_string()))?;
                std::fs::write(dir.join("manifest.pub"), format!("{}\n", k.public_hex()))
                    .map_err(|e| HubError::Config(e.to_string()))?;
                Ok(k)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::thread::sleep(std::time::Duration::from_millis(100));
                Self::load(&path)
            }
            Err(e) => Err(HubError::Config(format!("{}: {e}", path.display()))),
        }
    }

    pub fn load(path: &Path) -> Result<ManifestKey> {
        let s = std::fs::read_to_string(path)
            .map_err(|e| HubError::Config(format!("manifest key {}: {e}", path.display())))?;
        let seed: [u8; 32] = hex::decode(s.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                HubError::Config(format!("manifest key {}: not 32 hex bytes", path.display()))
            })?;
        Ok(ManifestKey::from_seed(seed))
    }

    /// Sign a manifest: every field of the result is covered.
    pub fn sign(
        &self,
        manifest_id: Uuid,
        scenario: &str,
        version: i64,
        notice_version: &str,
        manifest: &str,
    ) -> SignedManifest {
        let mut m = SignedManifest {
            manifest_id,
            scenario: scenario.into(),
            version,
            notice_version: notice_version.into(),
            manifest: manifest.into(),
            signature: String::new(),
        };
        m.signature = hex::encode(self.0.sign(&signed_bytes(&m)).to_bytes());
        m
    }
}

/// What the hub signs ([`facegate_core::hub_trust::signed_bytes`]: the
/// site's instances check the same bytes).
pub fn signed_bytes(m: &SignedManifest) -> Vec<u8> {
    facegate_core::hub_trust::signed_bytes(
        m.manifest_id,
        &m.scenario,
        m.version,
        &m.notice_version,
        &m.manifest,
    )
}

/// Does `m` carry a valid signature by the hub whose public key is
/// `public_hex` (the key the site pinned)? Any altered byte of any field,
/// or another key, gives false.
pub fn verify(public_hex: &str, m: &SignedManifest) -> bool {
    facegate_core::hub_trust::verify(public_hex, &signed_bytes(m), &m.signature)
}

/// Lint a manifest with the site's own deploy check
/// ([`facegate_core::deploy::lint_manifest`]): an error refuses it with every
/// error's requirement and article in Chinese and English.
pub fn lint(manifest: &str) -> Result<facegate_policy::Scenario> {
    facegate_core::deploy::lint_manifest(manifest)
        .map(|(s, _)| s)
        .map_err(|e| match e {
            facegate_core::CoreError::Refused(r) => HubError::Refused {
                rule: Some(r.rule.to_string()),
                zh: r.message_zh,
                en: r.message_en,
            },
            facegate_core::CoreError::BadRequest { zh, en } => {
                HubError::Refused { rule: None, zh, en }
            }
            other => HubError::Bad(other.to_string()),
        })
}

/// The hub's manifest tables (appended to the hub schema).
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS hub_manifests (
        id TEXT PRIMARY KEY,
        scenario TEXT NOT NULL,
        version BIGINT NOT NULL,
        notice_version TEXT NOT NULL,
        manifest TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        signature TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (scenario, version))",
    // A deploy command has no person's request: it names its manifest.
    "ALTER TABLE hub_commands ALTER COLUMN request_id DROP NOT NULL",
    "ALTER TABLE hub_commands ADD COLUMN IF NOT EXISTS manifest_id TEXT REFERENCES hub_manifests(id)",
];

/// Upload (lint, version, sign, store) a manifest; the same text as the
/// scenario's newest version is that version again.
pub async fn upload(s: &HubState, manifest: &str) -> Result<Value> {
    let key = s
        .manifest_key
        .as_ref()
        .ok_or_else(|| HubError::Config("this hub has no manifest key".into()))?;
    let scenario = lint(manifest)?;
    let notice_version = scenario.notice_version();
    let sha = hex::encode(Sha256::digest(manifest.as_bytes()));
    let mut tx = s.db.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(716017)")
        .execute(&mut *tx)
        .await?;
    let last = sqlx::query(
        "SELECT id, version, sha256 FROM hub_manifests WHERE scenario = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(&scenario.id)
    .fetch_optional(&mut *tx)
    .await?;
    let (id, version, new) = match last {
        Some(r) if r.get::<&str, _>(2) == sha => (
            Uuid::parse_str(r.get::<&str, _>(0)).map_err(|e| HubError::Bad(e.to_string()))?,
            r.get::<i64, _>(1),
            false,
        ),
        r => (
            Uuid::now_v7(),
            r.map(|r| r.get::<i64, _>(1)).unwrap_or(0) + 1,
            true,
        ),
    };
    if new {
        let m = key.sign(id, &scenario.id, version, &notice_version, manifest);
        sqlx::query("INSERT INTO hub_manifests (id, scenario, version, notice_version, manifest, sha256, signature, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)")
            .bind(id.to_string())
            .bind(&scenario.id)
            .bind(version)
            .bind(&notice_version)
            .bind(manifest)
            .bind(&sha)
            .bind(&m.signature)
            .bind(ts(Utc::now()))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(json!({
        "id": id, "scenario": scenario.id, "version": version,
        "notice_version": notice_version, "sha256": sha, "new": new,
    }))
}

/// Queue a deploy of manifest `id` for each site, in each site's command
/// order (a site already sent this manifest is not sent it again).
pub async fn assign(s: &HubState, id: Uuid, sites: &[Uuid]) -> Result<Value> {
    let mut tx = s.db.pool.begin().await?;
    let sha: String = sqlx::query_scalar("SELECT sha256 FROM hub_manifests WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| HubError::NotFound("manifest".into()))?;
    let mut out = Vec::new();
    for site in sites {
        let sid = site.to_string();
        sqlx::query("SELECT id FROM hub_sites WHERE id = $1 FOR UPDATE")
            .bind(&sid)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("site {site}")))?;
        let have: Option<String> = sqlx::query_scalar(
            "SELECT id FROM hub_commands WHERE site_id = $1 AND manifest_id = $2",
        )
        .bind(&sid)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(c) = have {
            out.push(json!({"site_id": site, "command_id": c, "new": false}));
            continue;
        }
        let seq: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM hub_commands WHERE site_id = $1",
        )
        .bind(&sid)
        .fetch_one(&mut *tx)
        .await?;
        let cid = Uuid::now_v7();
        sqlx::query("INSERT INTO hub_commands (id, site_id, seq, request_id, kind, pseudonym, created_at, manifest_id) VALUES ($1,$2,$3,NULL,'deploy',$4,$5,$6)")
            .bind(cid.to_string())
            .bind(&sid)
            .bind(seq)
            .bind(&sha)
            .bind(ts(Utc::now()))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        out.push(json!({"site_id": site, "command_id": cid, "new": true}));
    }
    tx.commit().await?;
    Ok(json!({ "manifest_id": id, "sites": out }))
}

/// Attach the signed manifest to each `deploy` command of a sync answer.
pub async fn attach(pool: &sqlx::PgPool, commands: &mut [HubCommand]) -> Result<()> {
    for c in commands
        .iter_mut()
        .filter(|c| c.kind == crate::proto::CommandKind::Deploy)
    {
        let r = sqlx::query(
            "SELECT id, scenario, version, notice_version, manifest, signature FROM hub_manifests WHERE id = $1",
        )
        .bind(c.request_id.to_string())
        .fetch_optional(pool)
        .await?;
        c.manifest = r.map(|r| SignedManifest {
            manifest_id: c.request_id,
            scenario: r.get(1),
            version: r.get(2),
            notice_version: r.get(3),
            manifest: r.get(4),
            signature: r.get(5),
        });
    }
    Ok(())
}

/// Every manifest, and for each site: the version of each scenario it runs
/// (its newest deploy receipted `deployed`), what is pending since when,
/// and what it refused.
pub async fn overview(s: &HubState) -> Result<Value> {
    let pool = &s.db.pool;
    let manifests: Vec<Value> = sqlx::query(
        "SELECT id, scenario, version, notice_version, sha256, created_at FROM hub_manifests ORDER BY scenario, version",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        json!({"id": r.get::<String, _>(0), "scenario": r.get::<String, _>(1), "version": r.get::<i64, _>(2),
            "notice_version": r.get::<String, _>(3), "sha256": r.get::<String, _>(4), "created_at": r.get::<String, _>(5)})
    })
    .collect();
    let rows = sqlx::query(
        "SELECT c.site_id, s.name, m.scenario, m.version, m.id, c.id, c.created_at, c.status, c.applied_at, c.receipted_at, m.notice_version
         FROM hub_commands c JOIN hub_manifests m ON m.id = c.manifest_id JOIN hub_sites s ON s.id = c.site_id
         ORDER BY s.created_at, c.site_id, c.seq",
    )
    .fetch_all(pool)
    .await?;
    let mut sites: Vec<(String, Value)> = Vec::new();
    for r in &rows {
        let sid: String = r.get(0);
        if sites.last().map(|x| &x.0) != Some(&sid) {
            sites.push((
                sid.clone(),
                json!({"site_id": sid, "site_name": r.get::<String, _>(1), "running": {}, "pending": [], "refused": []}),
            ));
        }
        let v = &mut sites.last_mut().expect("pushed").1;
        let item = json!({"scenario": r.get::<String, _>(2), "version": r.get::<i64, _>(3),
            "manifest_id": r.get::<String, _>(4), "command_id": r.get::<String, _>(5),
            "notice_version": r.get::<String, _>(10)});
        let status: Option<String> = r.get(7);
        match (status.as_deref(), r.get::<Option<String>, _>(9)) {
            (_, None) => {
                let mut i = item;
                i["pending_since"] = json!(r.get::<String, _>(6));
                v["pending"].as_array_mut().expect("array").push(i);
            }
            (Some(s), Some(_)) if s == crate::proto::ReceiptStatus::Deployed.as_str() => {
                let mut i = item;
                i["deployed_at"] = json!(r.get::<Option<String>, _>(8));
                let scen = r.get::<String, _>(2);
                let newer = v["running"][&scen]["version"]
                    .as_i64()
                    .is_some_and(|x| x > r.get::<i64, _>(3));
                if !newer {
                    v["running"][scen] = i;
                }
            }
            _ => v["refused"].as_array_mut().expect("array").push(item),
        }
    }
    Ok(json!({
        "manifests": manifests,
        "sites": sites.into_iter().map(|x| x.1).collect::<Vec<_>>(),
    }))
}

/// The manifest endpoints (admin bearer token), merged into the router.
pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/v1/manifests", post(upload_h).get(overview_h))
        .route("/v1/manifests/{id}/assign", post(assign_h))
}

async fn upload_h(State(s): State<HubState>, h: HeaderMap, body: Bytes) -> Result<Json<Value>> {
    crate::server::admin(&s, &h)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| HubError::Bad("the manifest is not UTF-8 text".into()))?;
    Ok(Json(upload(&s, text).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Assign {
    sites: Vec<Uuid>,
}

async fn assign_h(
    State(s): State<HubState>,
    h: HeaderMap,
    UrlPath(id): UrlPath<Uuid>,
    body: Bytes,
) -> Result<Json<Value>> {
    crate::server::admin(&s, &h)?;
    let a: Assign = serde_json::from_slice(&body).map_err(|e| HubError::Bad(e.to_string()))?;
    Ok(Json(assign(&s, id, &a.sites).await?))
}

async fn overview_h(State(s): State<HubState>, h: HeaderMap) -> Result<Json<Value>> {
    crate::server::admin(&s, &h)?;
    Ok(Json(overview(&s).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOML: &str = "id = \"gate\"\n[notice]\nx = 1\n";

    fn signed() -> (ManifestKey, SignedManifest) {
        let k = ManifestKey::from_seed([7; 32]);
        let m = k.sign(Uuid::from_u128(42), "gate", 3, &"ab".repeat(32), TOML);
        (k, m)
    }

    #[test]
    fn a_signed_manifest_verifies_with_the_hub_key_only() {
        let (k, m) = signed();
        assert!(verify(&k.public_hex(), &m));
        assert!(!verify(&ManifestKey::from_seed([8; 32]).public_hex(), &m));
        // Re-signed by another key: refused under the pinned key.
        let other = ManifestKey::generate().sign(
            m.manifest_id,
            &m.scenario,
            m.version,
            &m.notice_version,
            &m.manifest,
        );
        assert!(!verify(&k.public_hex(), &other));
        assert!(!verify("not a key", &m));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        /// Altering any byte of the signed manifest as it travels (its JSON
        /// serialisation: manifest text, id, scenario, version, notice
        /// version or signature) makes the site's check refuse it, or makes
        /// it unreadable; it never verifies as another manifest.
        #[test]
        fn altering_any_byte_of_a_signed_manifest_is_refused(pos in any::<prop::sample::Index>(), x in 1u8..=255) {
            let (k, m) = signed();
            let mut bytes = serde_json::to_vec(&m).unwrap();
            let i = pos.index(bytes.len());
            bytes[i] ^= x;
            if let Ok(altered) = serde_json::from_slice::<SignedManifest>(&bytes) {
                if altered != m {
                    prop_assert!(!verify(&k.public_hex(), &altered), "byte {} ^ {:#x} verified", i, x);
                }
            }
        }

        /// Altering any byte of the manifest text alone, or signing with
        /// any other key, is refused.
        #[test]
        fn altered_text_or_another_key_is_refused(pos in any::<prop::sample::Index>(), x in 1u8..=255, seed in any::<[u8; 32]>()) {
            let (k, m) = signed();
            let mut text = m.manifest.clone().into_bytes();
            let i = pos.index(text.len());
            text[i] ^= x;
            let mut altered = m.clone();
            altered.manifest = String::from_utf8_lossy(&text).into_owned();
            prop_assert!(!verify(&k.public_hex(), &altered));
            prop_assume!(seed != [7; 32]);
            let o = ManifestKey::from_seed(seed).sign(m.manifest_id, &m.scenario, m.version, &m.notice_version, &m.manifest);
            prop_assert!(!verify(&k.public_hex(), &o));
        }
    }
}
