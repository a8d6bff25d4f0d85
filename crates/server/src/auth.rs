//! Who is calling: API keys (stored hashed) with roles, and one-time portal
//! codes that open a short session for one person.
//!
//! Keys look like `fgk_<id>_<secret>`; only `sha256(secret)` is kept, in the
//! store's `api_keys` table. Portal codes are 8 digits, single use, valid 15
//! minutes; redeeming one gives a `fgp_…` session token bound to one person
//! for 30 minutes. Codes and sessions are kept in the store as hashes too,
//! so every `serve` on one database sees the same keys, codes and sessions.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including issuing keys.
    Admin,
    /// Runs the deployment: scenarios, devices, persons, consents, requests.
    Operator,
    /// A gate or kiosk: notice, consent, enrol, verify, portal codes — for its own device only.
    Device,
    /// Reads audit, filing, PIA and counts; writes nothing.
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Device => "device",
            Role::Auditor => "auditor",
        }
    }
}

/// A stored key: never the secret, only its hash.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRecord {
    pub id: String,
    pub role: Role,
    /// Set for `device` keys: the only device this key may act as.
    pub device_id: Option<String>,
    /// Set for `device` keys: the scenario (store id) whose device it is
    /// (absent in a key file written before keys had a scenario).
    #[serde(default)]
    pub scenario_id: Option<Uuid>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    /// hex sha256 of the secret part.
    #[schema(value_type = String)]
    pub secret_sha256: String,
    pub revoked: bool,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub enum Caller {
    Key {
        key_id: String,
        role: Role,
        device_id: Option<String>,
        /// For a device key: the scenario (store id) of its device; `None`
        /// for a device key written before keys had a scenario whose device
        /// name is in several scenarios (or none), which is refused.
        scenario_id: Option<Uuid>,
    },
    /// A person in the self-service portal: sees only their own records.
    Person { person_id: String },
}

impl Caller {
    /// A label for audit records (never a secret).
    pub fn actor(&self) -> String {
        match self {
            Caller::Key { key_id, role, .. } => format!("{}:{key_id}", role.as_str()),
            Caller::Person { person_id } => format!("person:{person_id}"),
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Key { role, .. } => Some(*role),
            Caller::Person { .. } => None,
        }
    }

    /// Allow only the listed key roles (persons are refused).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        match self.role() {
            Some(r) if roles.contains(&r) => Ok(()),
            Some(r) => Err(ApiError::Forbidden(format!(
                "role {} may not do this",
                r.as_str()
            ))),
            None => Err(ApiError::Forbidden(
                "a portal session may only read its own records".into(),
            )),
        }
    }

    /// Readers: admin, operator, auditor.
    pub fn require_reader(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin, Role::Operator, Role::Auditor])
    }

    /// Writers of deployment data: admin, operator.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin, Role::Operator])
    }

    /// Front-line actions (notice, consent, enrol, verify): admin, operator or
    /// a device key acting for its own device. Returns the device to record.
    pub fn require_frontline(&self, device_id: Option<&str>) -> Result<Option<String>, ApiError> {
        match self {
            Caller::Key {
                role: Role::Device,
                device_id: Some(bound),
                scenario_id,
                ..
            } => match device_id {
                Some(d) if d != bound => Err(ApiError::Forbidden(format!(
                    "this device key is bound to device {bound}, not {d}"
                ))),
                _ if scenario_id.is_none() => Err(ApiError::Forbidden(format!(
                    "this device key was issued before keys named their scenario, and device {bound} is not in exactly one scenario: issue a new key for it"
                ))),
                _ => Ok(Some(bound.clone())),
            },
            _ => {
                self.require_operator()?;
                Ok(device_id.map(str::to_string))
            }
        }
    }

    /// The scenario (store id) a device key's device belongs to; `None` for
    /// every other caller.
    pub fn device_scenario(&self) -> Option<Uuid> {
        match self {
            Caller::Key {
                role: Role::Device,
                scenario_id,
                ..
            } => *scenario_id,
            _ => None,
        }
    }

    /// The portal person may act only on their own id; operators on anyone.
    pub fn require_self_or_operator(&self, person_id: &str) -> Result<(), ApiError> {
        match self {
            Caller::Person { person_id: me } if me == person_id => Ok(()),
            Caller::Person { .. } => Err(ApiError::NotFound("person".into())),
            _ => self.require_operator(),
        }
    }

    /// The portal person reads only themselves; readers read anyone.
    pub fn require_self_or_reader(&self, person_id: &str) -> Result<(), ApiError> {
        match self {
            Caller::Person { person_id: me } if me == person_id => Ok(()),
            Caller::Person { .. } => Err(ApiError::NotFound("person".into())),
            _ => self.require_reader(),
        }
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time comparison of two equal-length hex digests.
fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// API keys, portal codes and portal sessions, all kept in the store (only
/// hashes), so a restart or a second `serve` on the same database changes
/// nothing: every key stays valid, every session open, every revocation is
/// seen at once.
#[derive(Clone)]
pub struct Auth {
    store: facegate_store::Store,
}

/// A key as issued: the full secret is shown once and never again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub id: String,
    pub role: Role,
    pub device_id: Option<String>,
    /// For a device key: the scenario whose device it is.
    pub scenario: Option<String>,
    pub label: String,
    /// The bearer token; store it now, it cannot be shown again.
    pub key: String,
}

fn role_of(s: &str) -> Option<Role> {
    Some(match s {
        "admin" => Role::Admin,
        "operator" => Role::Operator,
        "device" => Role::Device,
        "auditor" => Role::Auditor,
        _ => return None,
    })
}

impl From<facegate_store::ApiKeyRecord> for KeyRecord {
    fn from(k: facegate_store::ApiKeyRecord) -> Self {
        KeyRecord {
            role: role_of(&k.role).unwrap_or(Role::Auditor),
            id: k.id,
            device_id: k.device_id,
            scenario_id: k.scenario_id,
            label: k.label,
            created_at: k.created_at,
            secret_sha256: k.secret_sha256,
            revoked: k.revoked_at.is_some(),
        }
    }
}

/// What a device key is bound to: one device of one scenario.
#[derive(Debug, Clone)]
pub struct BoundDevice {
    /// The scenario's store id.
    pub scenario_id: Uuid,
    /// The scenario's manifest id, for the issued key's record.
    pub scenario: String,
    /// The device's manifest id.
    pub device_id: String,
}

impl BoundDevice {
    /// Device `device_id` of deployed scenario `d`.
    pub fn of(d: &facegate_core::deploy::Deployed, device_id: &str) -> BoundDevice {
        BoundDevice {
            scenario_id: d.store_id,
            scenario: d.scenario.id.clone(),
            device_id: device_id.to_string(),
        }
    }
}

/// How long a portal code is valid.
pub const PORTAL_CODE_MINUTES: i64 = 15;
/// How long a portal session lasts.
pub const PORTAL_SESSION_MINUTES: i64 = 30;

impl Auth {
    /// Keys, codes and sessions in `store`.
    pub fn new(store: facegate_store::Store) -> Self {
        Self { store }
    }

    /// A key file written by an earlier version (`keys.json`) is moved into
    /// the store once and then removed, so keys live in one place.
    pub async fn import_legacy_file(&self, path: &Path) -> Result<usize, ApiError> {
        if !path.exists() {
            return Ok(0);
        }
        let text = std::fs::read_to_string(path).map_err(ApiError::internal)?;
        let keys: Vec<KeyRecord> = serde_json::from_str(&text).map_err(ApiError::internal)?;
        let mut n = 0;
        for k in keys {
            if self.store.api_key(&k.id).await?.is_some() {
                continue;
            }
            // A device key of that time names no scenario: the one scenario
            // with a device of that name, as migration 11 gave stored keys.
            let scenario_id = match (&k.device_id, k.scenario_id) {
                (Some(dv), None) => self.store.sole_scenario_of_device(dv).await?,
                (_, sc) => sc,
            };
            self.store
                .add_api_key(
                    &facegate_store::ApiKeyRecord {
                        id: k.id.clone(),
                        role: k.role.as_str().into(),
                        device_id: k.device_id.clone(),
                        scenario_id,
                        label: k.label.clone(),
                        secret_sha256: k.secret_sha256.clone(),
                        created_at: k.created_at,
                        revoked_at: None,
                    },
                    "server:import-keys",
                )
                .await?;
            if k.revoked {
                self.store
                    .revoke_api_key(&k.id, "server:import-keys")
                    .await?;
            }
            n += 1;
        }
        std::fs::remove_file(path).map_err(ApiError::internal)?;
        Ok(n)
    }

    pub async fn has_admin(&self) -> Result<bool, ApiError> {
        Ok(self
            .list()
            .await?
            .iter()
            .any(|k| k.role == Role::Admin && !k.revoked))
    }

    /// Issue a key; a `device` key is bound to one device of one scenario.
    pub async fn issue(
        &self,
        role: Role,
        device: Option<BoundDevice>,
        label: &str,
        actor: &str,
    ) -> Result<IssuedKey, ApiError> {
        let id = random_token(10);
        let secret = random_token(32);
        self.store
            .add_api_key(
                &facegate_store::ApiKeyRecord {
                    id: id.clone(),
                    role: role.as_str().into(),
                    device_id: device.as_ref().map(|b| b.device_id.clone()),
                    scenario_id: device.as_ref().map(|b| b.scenario_id),
                    label: label.to_string(),
                    secret_sha256: sha256_hex(&secret),
                    created_at: Utc::now(),
                    revoked_at: None,
                },
                actor,
            )
            .await?;
        let (device_id, scenario) = device.map(|b| (b.device_id, b.scenario)).unzip();
        Ok(IssuedKey {
            id: id.clone(),
            role,
            device_id,
            scenario,
            label: label.to_string(),
            key: format!("fgk_{id}_{secret}"),
        })
    }

    pub async fn list(&self) -> Result<Vec<KeyRecord>, ApiError> {
        Ok(self
            .store
            .api_keys()
            .await?
            .into_iter()
            .map(KeyRecord::from)
            .collect())
    }

    pub async fn revoke(&self, id: &str, actor: &str) -> Result<bool, ApiError> {
        Ok(self.store.revoke_api_key(id, actor).await?)
    }

    /// Resolve a bearer token to a caller, or `None` if it is not valid.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>, ApiError> {
        if let Some(rest) = token.strip_prefix("fgk_") {
            let Some((id, secret)) = rest.split_once('_') else {
                return Ok(None);
            };
            if id.is_empty() || id.len() > 64 {
                return Ok(None);
            }
            let digest = sha256_hex(secret);
            let Some(k) = self.store.api_key(id).await? else {
                return Ok(None);
            };
            if k.revoked_at.is_some() || !ct_eq(&k.secret_sha256, &digest) {
                return Ok(None);
            }
            let Some(role) = role_of(&k.role) else {
                return Ok(None);
            };
            return Ok(Some(Caller::Key {
                key_id: k.id,
                role,
                device_id: k.device_id,
                scenario_id: k.scenario_id,
            }));
        }
        if token.starts_with("fgp_") && token.len() <= 128 {
            return Ok(self
                .store
                .portal_session(&sha256_hex(token))
                .await?
                .map(|p| Caller::Person {
                    person_id: p.to_string(),
                }));
        }
        Ok(None)
    }

    /// A one-time 8-digit code for one person (valid 15 minutes); `basis`
    /// (why this caller may issue it) goes into the audit record.
    pub async fn issue_portal_code(
        &self,
        person_id: Uuid,
        basis: serde_json::Value,
        actor: &str,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let code: String = {
            let mut rng = rand::thread_rng();
            (0..8)
                .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                .collect()
        };
        let expires = Utc::now() + Duration::minutes(PORTAL_CODE_MINUTES);
        self.store
            .put_portal_code(&sha256_hex(&code), person_id, expires, basis, actor)
            .await?;
        Ok((code, expires))
    }

    /// Redeem a code (once) for a session token bound to its person.
    pub async fn redeem_portal_code(
        &self,
        code: &str,
    ) -> Result<Option<(String, String, DateTime<Utc>)>, ApiError> {
        let code = code.trim();
        if code.is_empty() || code.len() > 64 {
            return Ok(None);
        }
        let token = format!("fgp_{}", random_token(40));
        let expires = Utc::now() + Duration::minutes(PORTAL_SESSION_MINUTES);
        Ok(self
            .store
            .redeem_portal_code(&sha256_hex(code), &sha256_hex(&token), expires)
            .await?
            .map(|p| (token, p.to_string(), expires)))
    }

    /// End one portal session (logout): deleted in the store.
    pub async fn end_session(&self, token: &str) -> Result<bool, ApiError> {
        Ok(self.store.end_portal_session(&sha256_hex(token)).await?)
    }

    /// End every portal session of a person (after deletion).
    pub async fn end_sessions_of(&self, person_id: Uuid) -> Result<(), ApiError> {
        self.store.end_portal_sessions(person_id).await?;
        Ok(())
    }
}

/// A random id for records this crate creates.
pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}
