//! The sealed (encrypted) template format.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "FGTS"
//! 4       1     format version (1)
//! 5       1     encoding (0 = f32, 1 = int8)
//! 6       2     dimension, u16 little-endian
//! 8       1     model id length L (1..=255)
//! 9       L     model id, UTF-8
//! 9+L     16    template id
//! 25+L    16    person id
//! 41+L    16    scenario id
//! 57+L    16    data key id (which scenario key sealed it)
//! 73+L    12    AES-256-GCM nonce (random)
//! 85+L    ..    ciphertext + 16-byte tag
//! ```
//!
//! The associated data is the whole header (bytes 0..85+L). On opening, the
//! header is rebuilt from the ids the caller *expects*, so a template copied
//! to another person, scenario or model fails authentication, as does any
//! change to the header or ciphertext. Plaintext: f32 = `dim` little-endian
//! f32; int8 = scale (f32 LE) then `dim` signed bytes.

use crate::{Encoding, Error, PersonId, ScenarioId, TemplateId};
use uuid::Uuid;

pub(crate) const MAGIC: &[u8; 4] = b"FGTS";
/// The current sealed-template format version.
pub const FORMAT_VERSION: u8 = 1;

/// An encrypted template: safe to store, useless without the scenario's data key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedTemplate {
    pub(crate) version: u8,
    pub(crate) encoding: Encoding,
    pub(crate) dim: u16,
    pub(crate) model_id: String,
    pub(crate) template: TemplateId,
    pub(crate) person: PersonId,
    pub(crate) scenario: ScenarioId,
    pub(crate) key_id: Uuid,
    pub(crate) nonce: [u8; 12],
    pub(crate) ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTemplate")
            .field("version", &self.version)
            .field("encoding", &self.encoding)
            .field("dim", &self.dim)
            .field("model_id", &self.model_id)
            .field("template", &self.template)
            .field("person", &self.person)
            .field("scenario", &self.scenario)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl SealedTemplate {
    /// Template id recorded in the (authenticated) header.
    pub fn template_id(&self) -> TemplateId {
        self.template
    }
    /// Person id recorded in the header.
    pub fn person(&self) -> PersonId {
        self.person
    }
    /// Scenario id recorded in the header.
    pub fn scenario(&self) -> ScenarioId {
        self.scenario
    }
    /// Embedding model id recorded in the header.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }
    /// Encoding of the sealed vector.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }
    /// Dimension of the sealed vector.
    pub fn dim(&self) -> usize {
        self.dim as usize
    }
    /// Id of the data key that sealed it.
    pub fn key_id(&self) -> Uuid {
        self.key_id
    }

    /// Header bytes (the AEAD associated data) with the given ids in place.
    pub(crate) fn header_with(
        &self,
        template: TemplateId,
        person: PersonId,
        scenario: ScenarioId,
    ) -> Vec<u8> {
        let mut h = Vec::with_capacity(85 + self.model_id.len());
        h.extend_from_slice(MAGIC);
        h.push(self.version);
        h.push(self.encoding.code());
        h.extend_from_slice(&self.dim.to_le_bytes());
        h.push(self.model_id.len() as u8);
        h.extend_from_slice(self.model_id.as_bytes());
        h.extend_from_slice(template.as_bytes());
        h.extend_from_slice(person.as_bytes());
        h.extend_from_slice(scenario.as_bytes());
        h.extend_from_slice(self.key_id.as_bytes());
        h.extend_from_slice(&self.nonce);
        h
    }

    /// Serialises to bytes (header followed by ciphertext).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.header_with(self.template, self.person, self.scenario);
        b.extend_from_slice(&self.ciphertext);
        b
    }

    /// Parses bytes written by [`SealedTemplate::to_bytes`]. Checks structure only; the
    /// contents are authenticated when opened.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let bad = |m: &str| Error::Format(format!("sealed template: {m}"));
        if b.len() < 9 || &b[..4] != MAGIC {
            return Err(bad("not a facegate sealed template (bad magic)"));
        }
        let version = b[4];
        if version != FORMAT_VERSION {
            return Err(bad(&format!(
                "format version {version} is not supported (this build reads {FORMAT_VERSION})"
            )));
        }
        let encoding = Encoding::from_code(b[5])?;
        let dim = u16::from_le_bytes([b[6], b[7]]);
        let l = b[8] as usize;
        if l == 0 {
            return Err(bad("empty model id"));
        }
        let hdr = 85 + l;
        if b.len() < hdr + 16 {
            return Err(bad("truncated"));
        }
        let model_id = std::str::from_utf8(&b[9..9 + l])
            .map_err(|_| bad("model id is not UTF-8"))?
            .to_string();
        let id16 = |o: usize| -> [u8; 16] { b[o..o + 16].try_into().unwrap() };
        let o = 9 + l;
        let ct_len = b.len() - hdr;
        let expected = plaintext_len(encoding, dim as usize) + 16;
        if ct_len != expected {
            return Err(bad(&format!(
                "ciphertext is {ct_len} bytes, expected {expected} for {encoding:?} × {dim}"
            )));
        }
        Ok(SealedTemplate {
            version,
            encoding,
            dim,
            model_id,
            template: TemplateId::from_bytes(id16(o)),
            person: PersonId::from_bytes(id16(o + 16)),
            scenario: ScenarioId::from_bytes(id16(o + 32)),
            key_id: Uuid::from_bytes(id16(o + 48)),
            nonce: b[o + 64..o + 76].try_into().unwrap(),
            ciphertext: b[hdr..].to_vec(),
        })
    }
}

pub(crate) fn plaintext_len(e: Encoding, dim: usize) -> usize {
    match e {
        Encoding::F32 => 4 * dim,
        Encoding::Int8 => 4 + dim,
    }
}
