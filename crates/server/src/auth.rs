//! Who is calling: API keys (stored hashed) with roles, and one-time portal
//! codes that open a short session for one person.
//!
//! Keys look like `fgk_<id>_<secret>`; only `sha256(secret)` is kept, in a
//! JSON file in the data directory (mode 0600). Portal codes are 8 digits,
//! single use, valid 15 minutes; redeeming one gives a `fgp_…` session token
//! bound to one person for 30 minutes. Codes and sessions live in memory:
//! a restart logs every person out, which is the safe direction.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
                ..
            } => match device_id {
                Some(d) if d != bound => Err(ApiError::Forbidden(format!(
                    "this device key is bound to device {bound}, not {d}"
                ))),
                _ => Ok(Some(bound.clone())),
            },
            _ => {
                self.require_operator()?;
                Ok(device_id.map(str::to_string))
            }
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

struct PortalCode {
    person_id: String,
    expires: DateTime<Utc>,
}

struct Session {
    person_id: String,
    expires: DateTime<Utc>,
}

/// API keys (persisted, hashed) plus portal codes and sessions (in memory).
pub struct Auth {
    path: Option<PathBuf>,
    keys: Mutex<Vec<KeyRecord>>,
    codes: Mutex<HashMap<String, PortalCode>>,
    sessions: Mutex<HashMap<String, Session>>,
}

/// A key as issued: the full secret is shown once and never again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub id: String,
    pub role: Role,
    pub device_id: Option<String>,
    pub label: String,
    /// The bearer token; store it now, it cannot be shown again.
    pub key: String,
}

impl Auth {
    /// Keys kept in `path` (created if missing), or only in memory when `None`.
    pub fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let keys = match path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p)?;
                serde_json::from_str(&text)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
            }
            _ => Vec::new(),
        };
        Ok(Self {
            path: path.map(Path::to_path_buf),
            keys: Mutex::new(keys),
            codes: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn save(&self, keys: &[KeyRecord]) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(keys).expect("keys serialise"),
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(tmp, path)
    }

    pub fn has_admin(&self) -> bool {
        self.keys
            .lock()
            .unwrap()
            .iter()
            .any(|k| k.role == Role::Admin && !k.revoked)
    }

    pub fn issue(
        &self,
        role: Role,
        device_id: Option<String>,
        label: &str,
    ) -> std::io::Result<IssuedKey> {
        let id = random_token(10);
        let secret = random_token(32);
        let rec = KeyRecord {
            id: id.clone(),
            role,
            device_id: device_id.clone(),
            label: label.to_string(),
            created_at: Utc::now(),
            secret_sha256: sha256_hex(&secret),
            revoked: false,
        };
        let mut keys = self.keys.lock().unwrap();
        keys.push(rec);
        self.save(&keys)?;
        Ok(IssuedKey {
            id: id.clone(),
            role,
            device_id,
            label: label.to_string(),
            key: format!("fgk_{id}_{secret}"),
        })
    }

    pub fn list(&self) -> Vec<KeyRecord> {
        self.keys.lock().unwrap().clone()
    }

    pub fn revoke(&self, id: &str) -> std::io::Result<bool> {
        let mut keys = self.keys.lock().unwrap();
        let Some(k) = keys.iter_mut().find(|k| k.id == id) else {
            return Ok(false);
        };
        k.revoked = true;
        self.save(&keys)?;
        Ok(true)
    }

    /// Resolve a bearer token to a caller, or `None` if it is not valid.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        if let Some(rest) = token.strip_prefix("fgk_") {
            let (id, secret) = rest.split_once('_')?;
            let digest = sha256_hex(secret);
            let keys = self.keys.lock().unwrap();
            let k = keys.iter().find(|k| k.id == id && !k.revoked)?;
            if !ct_eq(&k.secret_sha256, &digest) {
                return None;
            }
            return Some(Caller::Key {
                key_id: k.id.clone(),
                role: k.role,
                device_id: k.device_id.clone(),
            });
        }
        if token.starts_with("fgp_") {
            let digest = sha256_hex(token);
            let mut sessions = self.sessions.lock().unwrap();
            let now = Utc::now();
            sessions.retain(|_, s| s.expires > now);
            let s = sessions.get(&digest)?;
            return Some(Caller::Person {
                person_id: s.person_id.clone(),
            });
        }
        None
    }

    /// A one-time 8-digit code for one person (valid 15 minutes).
    pub fn issue_portal_code(&self, person_id: &str) -> (String, DateTime<Utc>) {
        let code: String = {
            let mut rng = rand::thread_rng();
            (0..8)
                .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                .collect()
        };
        let expires = Utc::now() + Duration::minutes(15);
        let mut codes = self.codes.lock().unwrap();
        let now = Utc::now();
        codes.retain(|_, c| c.expires > now);
        codes.insert(
            sha256_hex(&code),
            PortalCode {
                person_id: person_id.to_string(),
                expires,
            },
        );
        (code, expires)
    }

    /// Redeem a code (once) for a session token bound to its person.
    pub fn redeem_portal_code(&self, code: &str) -> Option<(String, String, DateTime<Utc>)> {
        let c = self
            .codes
            .lock()
            .unwrap()
            .remove(&sha256_hex(code.trim()))?;
        if c.expires <= Utc::now() {
            return None;
        }
        let token = format!("fgp_{}", random_token(40));
        let expires = Utc::now() + Duration::minutes(30);
        self.sessions.lock().unwrap().insert(
            sha256_hex(&token),
            Session {
                person_id: c.person_id.clone(),
                expires,
            },
        );
        Some((token, c.person_id, expires))
    }

    /// End every portal session of a person (after deletion).
    pub fn end_sessions_of(&self, person_id: &str) {
        self.sessions
            .lock()
            .unwrap()
            .retain(|_, s| s.person_id != person_id);
    }
}

/// A random id for records this crate creates.
pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_and_checked() {
        let dir = std::env::temp_dir().join(format!("fg-auth-{}", new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.json");
        let auth = Auth::open(Some(&path)).unwrap();
        let k = auth.issue(Role::Auditor, None, "t").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let secret = k.key.rsplit('_').next().unwrap();
        assert!(!text.contains(secret), "secret must not be stored");
        let reopened = Auth::open(Some(&path)).unwrap();
        assert!(matches!(
            reopened.authenticate(&k.key),
            Some(Caller::Key {
                role: Role::Auditor,
                ..
            })
        ));
        assert!(reopened.authenticate(&format!("{}x", k.key)).is_none());
        assert!(reopened.revoke(&k.id).unwrap());
        assert!(reopened.authenticate(&k.key).is_none());
    }

    #[test]
    fn portal_codes_are_single_use() {
        let auth = Auth::open(None).unwrap();
        let (code, _) = auth.issue_portal_code("p1");
        let (token, pid, _) = auth.redeem_portal_code(&code).unwrap();
        assert_eq!(pid, "p1");
        assert!(auth.redeem_portal_code(&code).is_none());
        assert!(
            matches!(auth.authenticate(&token), Some(Caller::Person { person_id }) if person_id == "p1")
        );
        auth.end_sessions_of("p1");
        assert!(auth.authenticate(&token).is_none());
    }
}
