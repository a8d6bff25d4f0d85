//! Keys: a key-encryption key (KEK) wraps one data key (DEK) per scenario; DEKs seal templates.
//!
//! Rotating the KEK rewraps the DEKs and never touches a sealed template.
//! Rotating a scenario's DEK makes new seals use a fresh key while old
//! templates still open with the old one until they are resealed.

use crate::seal::{plaintext_len, SealedTemplate, FORMAT_VERSION};
use crate::template::check_model_id;
use crate::{Error, PersonId, ScenarioId, Template, TemplateId, Vector};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::RwLock;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

/// Environment variable that may hold the KEK as 64 hex characters.
pub const KEK_ENV: &str = "FACEGATE_KEK";

/// The key-encryption key. Never stored next to the data it protects.
#[derive(Clone)]
pub struct Kek {
    key: Zeroizing<[u8; 32]>,
    fingerprint: [u8; 8],
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.fingerprint_hex())
    }
}

impl Kek {
    /// A fresh random KEK.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut k[..]);
        Self::from_bytes(*k)
    }

    /// A KEK from 32 raw bytes.
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let key = Zeroizing::new(bytes);
        bytes.zeroize();
        let mut h = Sha256::new();
        h.update(b"facegate-kek-fingerprint-v1");
        h.update(&key[..]);
        let fingerprint = h.finalize()[..8].try_into().unwrap();
        Kek { key, fingerprint }
    }

    /// A KEK from 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let mut raw = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(s.trim(), &mut raw[..])
            .map_err(|_| Error::Key("a KEK must be 64 hex characters (32 bytes)".into()))?;
        Ok(Self::from_bytes(*raw))
    }

    /// Loads the KEK from `path` (64 hex characters), or creates the file with a
    /// fresh random key and permissions 0600 if it does not exist. Refuses a key
    /// file that other users can read.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        let io = |e| Error::io(path, e);
        match std::fs::read_to_string(path) {
            Ok(s) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
                    if mode & 0o077 != 0 {
                        return Err(Error::Key(format!(
                            "{}: key file is readable by others (mode {:o}); chmod 600 it",
                            path.display(),
                            mode & 0o777
                        )));
                    }
                }
                let s = Zeroizing::new(s);
                Self::from_hex(&s).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kek = Self::generate();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path).map_err(io)?;
                let hexkey = Zeroizing::new(hex::encode(&kek.key[..]));
                f.write_all(hexkey.as_bytes()).map_err(io)?;
                f.write_all(b"\n").map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(kek)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The KEK given as 64 hex characters (the value of [`KEK_ENV`], read
    /// once by the caller's configuration), otherwise from (or created at)
    /// `path`. The library reads no environment variable.
    pub fn from_hex_or_file(hex: Option<&str>, path: &Path) -> Result<Self, Error> {
        match hex {
            Some(h) => Self::from_hex(h).map_err(|e| Error::Key(format!("{KEK_ENV}: {e}"))),
            None => Self::load_or_create(path),
        }
    }

    /// A short public fingerprint (16 hex characters) that names this KEK.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.key[..]).expect("32-byte key")
    }
}

/// A scenario's data key encrypted under a KEK: persist these bytes next to the templates.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The data key's id (recorded in every template it seals).
    pub id: Uuid,
    pub scenario: ScenarioId,
    kek_fingerprint: [u8; 8],
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WrappedKey({} for {} under KEK {})",
            self.id,
            self.scenario,
            hex::encode(self.kek_fingerprint)
        )
    }
}

const WK_MAGIC: &[u8; 4] = b"FGKW";
const WK_LEN: usize = 4 + 1 + 16 + 16 + 8 + 12 + 48;

impl WrappedKey {
    fn aad(&self) -> Vec<u8> {
        let mut a = Vec::with_capacity(45);
        a.extend_from_slice(WK_MAGIC);
        a.push(1);
        a.extend_from_slice(self.id.as_bytes());
        a.extend_from_slice(self.scenario.as_bytes());
        a.extend_from_slice(&self.kek_fingerprint);
        a
    }

    /// Fingerprint of the KEK this key is wrapped under.
    pub fn kek_fingerprint_hex(&self) -> String {
        hex::encode(self.kek_fingerprint)
    }

    /// Serialises to 105 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.aad();
        b.extend_from_slice(&self.nonce);
        b.extend_from_slice(&self.ciphertext);
        b
    }

    /// Parses bytes written by [`WrappedKey::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        if b.len() != WK_LEN || &b[..4] != WK_MAGIC || b[4] != 1 {
            return Err(Error::Format("not a facegate wrapped key (v1)".into()));
        }
        Ok(WrappedKey {
            id: Uuid::from_bytes(b[5..21].try_into().unwrap()),
            scenario: ScenarioId::from_bytes(b[21..37].try_into().unwrap()),
            kek_fingerprint: b[37..45].try_into().unwrap(),
            nonce: b[45..57].try_into().unwrap(),
            ciphertext: b[57..].to_vec(),
        })
    }

    fn wrap(kek: &Kek, id: Uuid, scenario: ScenarioId, dek: &[u8; 32]) -> Self {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut w = WrappedKey {
            id,
            scenario,
            kek_fingerprint: kek.fingerprint,
            nonce,
            ciphertext: Vec::new(),
        };
        let aad = w.aad();
        w.ciphertext = kek
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: dek,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption");
        w
    }

    fn unwrap_with(&self, kek: &Kek) -> Result<Zeroizing<[u8; 32]>, Error> {
        if self.kek_fingerprint != kek.fingerprint {
            return Err(Error::WrongKek {
                expected: self.kek_fingerprint_hex(),
                got: kek.fingerprint_hex(),
            });
        }
        let pt = Zeroizing::new(
            kek.cipher()
                .decrypt(
                    Nonce::from_slice(&self.nonce),
                    Payload {
                        msg: &self.ciphertext,
                        aad: &self.aad(),
                    },
                )
                .map_err(|_| Error::Key(format!("data key {} failed to unwrap", self.id)))?,
        );
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&pt);
        Ok(k)
    }
}

struct Dek {
    scenario: ScenarioId,
    key: Zeroizing<[u8; 32]>,
    wrapped: WrappedKey,
}

#[derive(Default)]
struct KeyState {
    deks: HashMap<Uuid, Dek>,
    current: HashMap<ScenarioId, Uuid>,
}

/// Holds the KEK and the unwrapped data keys in memory; seals and opens templates.
///
/// Methods take `&self` (keys sit behind a lock) so one keyring can be shared by
/// request handlers. After [`Keyring::seal`] creates a scenario key, persist
/// [`Keyring::wrapped_keys`] (or call [`Keyring::save`]).
pub struct Keyring {
    kek: Kek,
    state: RwLock<KeyState>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.state.read().unwrap().deks.len();
        write!(
            f,
            "Keyring(kek {}, {n} data keys)",
            self.kek.fingerprint_hex()
        )
    }
}

impl Keyring {
    /// An empty keyring under `kek`.
    pub fn new(kek: Kek) -> Self {
        Keyring {
            kek,
            state: RwLock::new(KeyState::default()),
        }
    }

    /// A keyring holding previously persisted data keys (all must unwrap under `kek`).
    /// For each scenario, the last key listed becomes the one used for new seals.
    pub fn with_wrapped(kek: Kek, keys: &[WrappedKey]) -> Result<Self, Error> {
        let ring = Self::new(kek);
        for w in keys {
            ring.add_wrapped(w)?;
        }
        Ok(ring)
    }

    /// Adds a persisted data key; it becomes the scenario's key for new seals.
    pub fn add_wrapped(&self, w: &WrappedKey) -> Result<(), Error> {
        let key = w.unwrap_with(&self.kek)?;
        let mut st = self.state.write().unwrap();
        st.current.insert(w.scenario, w.id);
        st.deks.insert(
            w.id,
            Dek {
                scenario: w.scenario,
                key,
                wrapped: w.clone(),
            },
        );
        Ok(())
    }

    /// Adds a persisted data key for opening only: the scenario's key for
    /// new seals stays as it is (another instance's key, found when one of
    /// its templates is read). A key already held is left alone.
    pub fn add_for_opening(&self, w: &WrappedKey) -> Result<(), Error> {
        if self.state.read().unwrap().deks.contains_key(&w.id) {
            return Ok(());
        }
        let key = w.unwrap_with(&self.kek)?;
        self.state.write().unwrap().deks.entry(w.id).or_insert(Dek {
            scenario: w.scenario,
            key,
            wrapped: w.clone(),
        });
        Ok(())
    }

    /// Whether this keyring holds the data key `id`.
    pub fn has_key(&self, id: Uuid) -> bool {
        self.state.read().unwrap().deks.contains_key(&id)
    }

    /// Fingerprint of the current KEK.
    pub fn kek_fingerprint_hex(&self) -> String {
        self.kek.fingerprint_hex()
    }

    /// All data keys, wrapped under the current KEK (persist these). Ordered so that
    /// reloading them with [`Keyring::with_wrapped`] keeps each scenario's current key.
    pub fn wrapped_keys(&self) -> Vec<WrappedKey> {
        let st = self.state.read().unwrap();
        let mut v: Vec<WrappedKey> = st
            .deks
            .values()
            .filter(|d| st.current.get(&d.scenario) != Some(&d.wrapped.id))
            .map(|d| d.wrapped.clone())
            .collect();
        v.sort_by_key(|w| w.id);
        let mut cur: Vec<WrappedKey> = st
            .current
            .values()
            .map(|id| st.deks[id].wrapped.clone())
            .collect();
        cur.sort_by_key(|w| w.id);
        v.extend(cur);
        v
    }

    /// The scenario's current data key (created on first use), wrapped.
    pub fn data_key(&self, scenario: ScenarioId) -> WrappedKey {
        if let Some(w) = {
            let st = self.state.read().unwrap();
            st.current
                .get(&scenario)
                .map(|id| st.deks[id].wrapped.clone())
        } {
            return w;
        }
        let mut st = self.state.write().unwrap();
        if let Some(id) = st.current.get(&scenario) {
            return st.deks[id].wrapped.clone();
        }
        Self::new_dek(&self.kek, &mut st, scenario)
    }

    fn new_dek(kek: &Kek, st: &mut KeyState, scenario: ScenarioId) -> WrappedKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        let id = Uuid::now_v7();
        let wrapped = WrappedKey::wrap(kek, id, scenario, &key);
        st.current.insert(scenario, id);
        st.deks.insert(
            id,
            Dek {
                scenario,
                key,
                wrapped: wrapped.clone(),
            },
        );
        wrapped
    }

    /// Makes a fresh data key the scenario's key for new seals (old keys stay for opening).
    pub fn rotate_data_key(&self, scenario: ScenarioId) -> WrappedKey {
        let mut st = self.state.write().unwrap();
        Self::new_dek(&self.kek, &mut st, scenario)
    }

    /// Replaces the KEK and rewraps every data key under it. Sealed templates are
    /// untouched and keep opening. Returns the rewrapped keys (persist them, replacing
    /// the old ones, then retire the old KEK).
    pub fn rotate_kek(&mut self, new: Kek) -> Vec<WrappedKey> {
        {
            let st = self.state.get_mut().unwrap();
            for d in st.deks.values_mut() {
                d.wrapped = WrappedKey::wrap(&new, d.wrapped.id, d.scenario, &d.key);
            }
        }
        self.kek = new;
        self.wrapped_keys()
    }

    /// Encrypts a template with its scenario's current data key. A scenario
    /// without one is refused ([`Error::NoDataKey`]), never given a key made
    /// here: a key only this process holds would be lost with it, and every
    /// template sealed with it unreadable after a restart. Make the key
    /// with [`Keyring::data_key`] and persist it (the core's
    /// `ensure_data_key`, [`Keyring::save`]) before the first seal.
    pub fn seal(&self, t: &Template) -> Result<SealedTemplate, Error> {
        check_model_id(&t.model_id)?;
        let dim = t.vector.dim();
        if dim == 0 || dim > u16::MAX as usize {
            return Err(Error::InvalidVector(format!(
                "dimension {dim} out of range"
            )));
        }
        let st = self.state.read().unwrap();
        let key_id = *st
            .current
            .get(&t.scenario)
            .ok_or(Error::NoDataKey(t.scenario.0))?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut s = SealedTemplate {
            version: FORMAT_VERSION,
            encoding: t.encoding(),
            dim: dim as u16,
            model_id: t.model_id.clone(),
            template: t.id,
            person: t.person,
            scenario: t.scenario,
            key_id,
            nonce,
            ciphertext: Vec::new(),
        };
        let mut pt = Zeroizing::new(Vec::with_capacity(plaintext_len(s.encoding, dim)));
        match &t.vector {
            Vector::F32(v) => v
                .iter()
                .for_each(|x| pt.extend_from_slice(&x.to_le_bytes())),
            Vector::Int8 { scale, data } => {
                pt.extend_from_slice(&scale.to_le_bytes());
                pt.extend(data.iter().map(|&q| q as u8));
            }
        }
        let aad = s.header_with(t.id, t.person, t.scenario);
        let cipher = Aes256Gcm::new_from_slice(&st.deks[&key_id].key[..]).expect("32-byte key");
        s.ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption");
        Ok(s)
    }

    /// Decrypts a template, authenticating it as template `id` of `person` in `scenario`.
    /// Fails with [`Error::OpenFailed`] if any of these (or the model id, or a byte) differs
    /// from what was sealed, or the data key is not the one that sealed it.
    pub fn open(
        &self,
        s: &SealedTemplate,
        id: TemplateId,
        person: PersonId,
        scenario: ScenarioId,
    ) -> Result<Template, Error> {
        let st = self.state.read().unwrap();
        let dek = st.deks.get(&s.key_id).ok_or(Error::UnknownKey(s.key_id))?;
        if dek.scenario != scenario {
            // The key belongs to another scenario: the template was moved.
            return Err(Error::OpenFailed);
        }
        let cipher = Aes256Gcm::new_from_slice(&dek.key[..]).expect("32-byte key");
        let aad = s.header_with(id, person, scenario);
        let pt = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&s.nonce),
                    Payload {
                        msg: &s.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| Error::OpenFailed)?,
        );
        let dim = s.dim as usize;
        let vector = match s.encoding {
            crate::Encoding::F32 => Vector::F32(
                pt.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
            crate::Encoding::Int8 => Vector::Int8 {
                scale: f32::from_le_bytes(pt[..4].try_into().unwrap()),
                data: pt[4..4 + dim].iter().map(|&b| b as i8).collect(),
            },
        };
        Ok(Template {
            id,
            person,
            scenario,
            model_id: s.model_id.clone(),
            vector,
        })
    }

    /// Opens a template trusting the ids in its header (they are still authenticated:
    /// a changed header fails).
    pub fn open_as_recorded(&self, s: &SealedTemplate) -> Result<Template, Error> {
        self.open(s, s.template, s.person, s.scenario)
    }

    /// Writes all wrapped data keys to `path` (atomically, mode 0600).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"FGKR\x01");
        for w in self.wrapped_keys() {
            buf.extend_from_slice(&w.to_bytes());
        }
        crate::store::write_atomic(path, &buf)
    }

    /// Loads a keyring file written by [`Keyring::save`].
    pub fn load(path: &Path, kek: Kek) -> Result<Self, Error> {
        let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if b.len() < 5 || &b[..5] != b"FGKR\x01" || (b.len() - 5) % WK_LEN != 0 {
            return Err(Error::Format(format!(
                "{}: not a facegate keyring file",
                path.display()
            )));
        }
        let keys = b[5..]
            .chunks_exact(WK_LEN)
            .map(WrappedKey::from_bytes)
            .collect::<Result<Vec<_>, _>>()?;
        Self::with_wrapped(kek, &keys)
    }
}
