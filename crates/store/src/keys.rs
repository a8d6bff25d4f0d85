//! The store's own keys: the *identity key* that encrypts names and contacts,
//! keys derived from it for credential hashing and audit anchors.
//!
//! This key is deliberately separate from the biometric key that seals
//! templates (held by `facegate-gallery`): the store never sees the latter,
//! and a leak of one key exposes neither the other half nor the link between
//! them (DESIGN principle 5).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

type HmacSha256 = Hmac<Sha256>;

const CT_VERSION: u8 = 1;

/// Environment variable that may hold the identity master key (64 hex).
pub const IDENTITY_KEY_ENV: &str = "FACEGATE_IDENTITY_KEY";

/// The store's secret keys, derived from one 32-byte identity master key.
///
/// `Debug` never prints key material.
#[derive(Clone)]
pub struct StoreKeys {
    enc: Zeroizing<[u8; 32]>,
    credential: Zeroizing<[u8; 32]>,
    audit: Zeroizing<[u8; 32]>,
    receipt: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys(..)")
    }
}

fn derive(master: &[u8; 32], label: &str) -> Zeroizing<[u8; 32]> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).expect("any key length");
    mac.update(b"facegate-store/v1/");
    mac.update(label.as_bytes());
    let out = mac.finalize().into_bytes();
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&out);
    k
}

impl StoreKeys {
    /// Derive the store keys from a 32-byte identity master key.
    pub fn from_master(master: &[u8; 32]) -> StoreKeys {
        StoreKeys {
            enc: derive(master, "identity-encryption"),
            credential: derive(master, "credential-pepper"),
            audit: derive(master, "audit-anchor"),
            receipt: derive(master, "receipt-signing"),
        }
    }

    /// A fresh random key set (tests, first run).
    pub fn generate() -> (StoreKeys, Zeroizing<[u8; 32]>) {
        let mut m = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut m[..]);
        (StoreKeys::from_master(&m), m)
    }

    /// Read a key file: 64 hex characters (whitespace ignored) or 32 raw bytes.
    pub fn from_file(path: &std::path::Path) -> Result<StoreKeys> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| StoreError::KeyFile {
            path: path.display().to_string(),
            source: e,
        })?);
        let mut m = Zeroizing::new([0u8; 32]);
        if bytes.len() == 32 {
            m.copy_from_slice(&bytes);
        } else {
            let text: String = String::from_utf8_lossy(&bytes)
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let text = Zeroizing::new(text);
            let v = Zeroizing::new(hex::decode(text.as_bytes()).map_err(|_| {
                StoreError::Invalid(format!(
                    "key file {} must hold 64 hex characters or 32 raw bytes",
                    path.display()
                ))
            })?);
            if v.len() != 32 {
                return Err(StoreError::Invalid(format!(
                    "key file {} holds {} bytes, expected 32",
                    path.display(),
                    v.len()
                )));
            }
            m.copy_from_slice(&v);
        }
        Ok(StoreKeys::from_master(&m))
    }

    /// Create a new key file (64 hex characters, mode 0600 on Unix) and
    /// return its keys. Refuses to overwrite an existing file.
    pub fn create_file(path: &std::path::Path) -> Result<StoreKeys> {
        use std::io::Write;
        let (keys, master) = StoreKeys::generate();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let err = |e| StoreError::KeyFile {
            path: path.display().to_string(),
            source: e,
        };
        let mut f = opts.open(path).map_err(err)?;
        let hexed = Zeroizing::new(hex::encode(&master[..]));
        f.write_all(hexed.as_bytes()).map_err(err)?;
        f.write_all(b"\n").map_err(err)?;
        Ok(keys)
    }

    /// The identity key given as 64 hex characters (the value of
    /// [`IDENTITY_KEY_ENV`], read once by the caller's configuration), else
    /// from the key file at `path`, created (mode 0600) if it does not exist
    /// yet. Keep this file apart from the database and from the gallery's
    /// biometric key. The library reads no environment variable.
    pub fn from_hex_or_file(hex: Option<&str>, path: &std::path::Path) -> Result<StoreKeys> {
        if let Some(v) = hex {
            let v = Zeroizing::new(v.to_string());
            let bytes = Zeroizing::new(hex::decode(v.trim()).map_err(|_| {
                StoreError::Invalid(format!("{IDENTITY_KEY_ENV} must be 64 hex characters"))
            })?);
            let master: [u8; 32] = bytes[..].try_into().map_err(|_| {
                StoreError::Invalid(format!("{IDENTITY_KEY_ENV} must be 64 hex characters"))
            })?;
            let k = StoreKeys::from_master(&master);
            let mut m = master;
            zeroize::Zeroize::zeroize(&mut m);
            return Ok(k);
        }
        if path.exists() {
            StoreKeys::from_file(path)
        } else {
            StoreKeys::create_file(path)
        }
    }

    /// Encrypt `plain` with AES-256-GCM, binding it to `aad` (the row ID).
    pub(crate) fn seal(&self, aad: &str, plain: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new_from_slice(&self.enc[..]).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory sizes");
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(CT_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypt what [`StoreKeys::seal`] produced.
    pub(crate) fn open(&self, aad: &str, sealed: &[u8], what: &str) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < 13 + 16 || sealed[0] != CT_VERSION {
            return Err(StoreError::Decrypt(what.into()));
        }
        let cipher = Aes256Gcm::new_from_slice(&self.enc[..]).expect("32-byte key");
        cipher
            .decrypt(
                Nonce::from_slice(&sealed[1..13]),
                Payload {
                    msg: &sealed[13..],
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| StoreError::Decrypt(what.into()))
    }

    /// Keyed hash (HMAC-SHA256) for looking credentials up without storing
    /// them (card numbers, QR tokens).
    pub(crate) fn credential_lookup(&self, kind: &str, secret: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.credential[..]).expect("key");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The pepper for argon2 PIN hashes.
    pub(crate) fn pin_pepper(&self) -> &[u8] {
        &self.credential[..]
    }

    /// MAC over an audit anchor (sequence number and chain hash).
    /// The seed of the deployment's receipt-signing key (Ed25519), derived
    /// from the identity key: a restart or a second instance with the same
    /// identity key signs with the same key, and nothing extra is stored.
    pub fn receipt_signing_seed(&self) -> Zeroizing<[u8; 32]> {
        self.receipt.clone()
    }

    pub(crate) fn anchor_mac(&self, seq: i64, hash: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.audit[..]).expect("key");
        mac.update(&seq.to_be_bytes());
        mac.update(hash.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}
