//! Which scenario versions stored by a hub-attached site may run: a
//! scenario the hub governs runs only as the hub signed it.
//!
//! The hub signs each manifest over [`signed_bytes`] with its manifest key
//! (Ed25519); the site pins the hub's public key in the store and checks
//! the signature when a deploy command arrives and again at every start
//! (`facegate_hub::site`). An instance that brings its scenarios in step
//! with the store ([`crate::Core::sync_scenarios`]) checks too, here: a
//! version of a hub-governed scenario whose text is not a hub manifest
//! that verifies under the pinned key (a row written to the store by
//! anything but the site's checked deploy, or one signed by a hub the site
//! no longer pins) is not deployed on that instance.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::CoreResult;

/// What the hub signs: a domain tag, the manifest's id, scenario, version
/// and notice version (JSON strings, so no field can run into the next),
/// and the SHA-256 of its exact text, one per line.
pub fn signed_bytes(
    manifest_id: Uuid,
    scenario: &str,
    version: i64,
    notice_version: &str,
    manifest: &str,
) -> Vec<u8> {
    format!(
        "facegate-manifest-v1\n{}\n{}\n{}\n{}\n{}",
        manifest_id,
        serde_json::Value::from(scenario),
        version,
        serde_json::Value::from(notice_version),
        hex::encode(Sha256::digest(manifest.as_bytes()))
    )
    .into_bytes()
}

/// Does `signature` (128 lowercase hex digits, the one canonical form)
/// sign `message` under the public key `public_hex` (64 hex digits)?
pub fn verify(public_hex: &str, message: &[u8], signature: &str) -> bool {
    let public_hex = public_hex.trim();
    let Some(pk) = (public_hex.len() == 64)
        .then(|| hex::decode(public_hex).ok())
        .flatten()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
    else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let canonical = signature.len() == 128
        && signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let Some(sig) = canonical.then(|| hex::decode(signature).ok()).flatten() else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&sig) else {
        return false;
    };
    vk.verify_strict(message, &sig).is_ok()
}

/// Does a stored hub manifest verify under `public_hex`?
pub fn row_verifies(public_hex: &str, m: &facegate_store::HubManifestRow) -> bool {
    verify(
        public_hex,
        &signed_bytes(
            m.manifest_id,
            &m.scenario,
            m.version,
            &m.notice_version,
            &m.manifest,
        ),
        &m.signature,
    )
}

/// The site's hub trust as the store holds it now: the pinned key, and the
/// newest deployed hub manifest of each scenario the hub governs.
pub struct HubTrust {
    pinned: Option<String>,
    newest: HashMap<String, facegate_store::HubManifestRow>,
}

impl HubTrust {
    pub async fn load(store: &facegate_store::Store) -> CoreResult<HubTrust> {
        let pinned = store.hub_manifest_key().await?;
        let newest = if pinned.is_some() {
            store
                .hub_manifests_deployed()
                .await?
                .into_iter()
                .map(|m| (m.scenario.clone(), m))
                .collect()
        } else {
            HashMap::new()
        };
        Ok(HubTrust { pinned, newest })
    }

    /// The text to deploy at start-up for scenario `name`, whose latest
    /// stored version is `stored`: that version on a site no hub governs
    /// (never attached, or detached: the scenarios are the operator's own
    /// now) and for a scenario the hub never sent; for a hub-governed one,
    /// the hub's newest deployed manifest if it verifies under the pinned
    /// key (as `facegate_hub::site::SiteSync::start` deploys it), else
    /// nothing.
    pub fn at_start(&self, name: &str, stored: &str) -> Option<String> {
        let Some(key) = &self.pinned else {
            return Some(stored.to_string());
        };
        match self.newest.get(name) {
            None => Some(stored.to_string()),
            Some(m) => row_verifies(key, m).then(|| m.manifest.clone()),
        }
    }

    /// May a stored version of scenario `name` with text `manifest` run?
    /// Always on a site no hub governs (none pinned: the operator's own),
    /// and for a scenario the hub never sent; otherwise only the text of
    /// the hub's newest deployed manifest, verified under the pinned key.
    pub fn may_run(&self, name: &str, manifest: &str) -> bool {
        let Some(key) = &self.pinned else {
            return true;
        };
        match self.newest.get(name) {
            None => true,
            Some(m) => m.manifest == manifest && row_verifies(key, m),
        }
    }
}
