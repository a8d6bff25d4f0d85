//! Signed receipts a person can keep as evidence.
//!
//! Every decision (verification, identification, enrolment, refusal) is
//! stored as a verification event whose id is the receipt id. This module
//! turns such an event into a compact canonical payload — decision, method,
//! scenario, device, time, receipt id and a keyed pseudonym of the person,
//! never face data — signs it with the deployment's Ed25519 key, and encodes
//! payload and signature as one short text code (RFC 4648 base32, upper
//! case, so a QR code carries it in alphanumeric mode).
//!
//! The signing key is derived from the identity key
//! ([`facegate_store::StoreKeys::receipt_signing_seed`]): a restart, or a
//! second instance sharing the identity key, signs with the same key, and
//! Ed25519 signatures are deterministic, so a receipt re-made later from the
//! stored event is byte for byte the one the kiosk showed.
//!
//! Verifying needs only the public key ([`verify`]): anyone can check a
//! receipt offline (`facegate receipt verify`).

use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The text code's prefix: format version 1.
pub const CODE_PREFIX: &str = "FG1";
/// Payload format version (the first payload byte).
const VERSION: u8 = 1;
/// Bytes of the person pseudonym.
const PSEUDONYM_LEN: usize = 8;
/// Longest text field (scenario, device, method, decision, rule).
const MAX_FIELD: usize = 64;

/// What a receipt states. Every field is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The receipt id (the verification event's id).
    pub receipt_id: Uuid,
    /// When the decision was made (whole seconds, UTC).
    pub at: DateTime<Utc>,
    /// The stored result: `match`, `no_match`, `unknown`, `enrolled`, `refused`…
    pub decision: String,
    /// `face`, `pin`, `card`, `qr`, `staff`…
    pub method: String,
    /// The scenario's manifest id.
    pub scenario: String,
    /// The device's manifest id, if the decision was made at a device.
    pub device: Option<String>,
    /// The requirement a refusal cited ("R8"), if any.
    pub refusal_rule: Option<String>,
    /// Keyed pseudonym of the person (hex), if the decision was about one:
    /// the same person gets the same pseudonym on every receipt of this
    /// deployment, and it reveals nothing about who they are.
    pub person: Option<String>,
}

/// Why a code is not a valid receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a receipt code (it must start with {CODE_PREFIX}-)")]
    Prefix,
    #[error("the code contains a character that is not in a receipt code")]
    Alphabet,
    #[error("the code is cut short or has extra data")]
    Malformed,
    #[error("unknown receipt format version {0}")]
    Version(u8),
    #[error("the public key is not an Ed25519 public key (64 hex characters)")]
    PublicKey,
    #[error("the signature does not match: the receipt was altered or was signed by another key")]
    Signature,
}

impl ReceiptError {
    /// The Chinese message for the same error.
    pub fn message_zh(&self) -> String {
        match self {
            ReceiptError::Prefix => format!("这不是凭证码（应以 {CODE_PREFIX}- 开头）"),
            ReceiptError::Alphabet => "凭证码中含有不属于凭证码的字符".into(),
            ReceiptError::Malformed => "凭证码不完整或含有多余内容".into(),
            ReceiptError::Version(v) => format!("未知的凭证格式版本 {v}"),
            ReceiptError::PublicKey => "公钥不是 Ed25519 公钥（应为 64 位十六进制字符）".into(),
            ReceiptError::Signature => "签名不符：凭证已被改动，或并非由该密钥签发".into(),
        }
    }
}

/// The deployment's receipt signer.
pub struct ReceiptSigner {
    key: SigningKey,
    pseudonym_key: [u8; 32],
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptSigner({})", self.public_key_hex())
    }
}

impl Drop for ReceiptSigner {
    fn drop(&mut self) {
        self.pseudonym_key = [0; 32];
    }
}

impl ReceiptSigner {
    /// The signer for a 32-byte seed (see
    /// [`facegate_store::StoreKeys::receipt_signing_seed`]).
    pub fn from_seed(seed: &[u8; 32]) -> ReceiptSigner {
        let mut h = Sha256::new();
        h.update(b"facegate-receipt/v1/pseudonym");
        h.update(seed);
        ReceiptSigner {
            key: SigningKey::from_bytes(seed),
            pseudonym_key: h.finalize().into(),
        }
    }

    /// The public key, as 64 hex characters (what the notice and the filing
    /// pack print, and what `facegate receipt verify --public-key` takes).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The person's pseudonym on receipts (hex).
    pub fn pseudonym(&self, person: Uuid) -> String {
        let mut h = Sha256::new();
        h.update(self.pseudonym_key);
        h.update(person.as_bytes());
        hex::encode(&h.finalize()[..PSEUDONYM_LEN])
    }

    /// Sign a receipt and encode it as a text code. Ed25519 is
    /// deterministic: the same receipt always gives the same code.
    pub fn sign(&self, r: &Receipt) -> String {
        let payload = encode_payload(r);
        let sig = self.key.sign(&payload);
        let mut all = payload;
        all.extend_from_slice(&sig.to_bytes());
        format!("{CODE_PREFIX}-{}", base32_encode(&all))
    }
}

/// Parse a public key given as 64 hex characters (an `ed25519:` prefix and
/// surrounding whitespace are allowed).
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, ReceiptError> {
    let s = s.trim();
    let s = s.strip_prefix("ed25519:").unwrap_or(s);
    let bytes = hex::decode(s).ok().ok_or(ReceiptError::PublicKey)?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| ReceiptError::PublicKey)?;
    VerifyingKey::from_bytes(&arr).map_err(|_| ReceiptError::PublicKey)
}

/// Decode a code without checking its signature (to show what it claims).
pub fn decode(code: &str) -> Result<(Receipt, Vec<u8>, Signature), ReceiptError> {
    let body = normalise(code)?;
    let bytes = base32_decode(&body).ok_or(ReceiptError::Alphabet)?;
    if bytes.len() < 64 + 1 {
        return Err(ReceiptError::Malformed);
    }
    let (payload, sig) = bytes.split_at(bytes.len() - 64);
    let receipt = decode_payload(payload)?;
    // Canonical form only: a payload that decodes but would encode
    // differently is not one this deployment signed.
    if encode_payload(&receipt) != payload {
        return Err(ReceiptError::Malformed);
    }
    let sig = Signature::from_bytes(sig.try_into().map_err(|_| ReceiptError::Malformed)?);
    Ok((receipt, payload.to_vec(), sig))
}

/// Verify a code against a public key; the receipt it states if it holds.
pub fn verify(code: &str, key: &VerifyingKey) -> Result<Receipt, ReceiptError> {
    let (receipt, payload, sig) = decode(code)?;
    key.verify_strict(&payload, &sig)
        .map_err(|_| ReceiptError::Signature)?;
    Ok(receipt)
}

/// The raw bytes (payload and signature) a code carries.
pub fn code_bytes(code: &str) -> Result<Vec<u8>, ReceiptError> {
    base32_decode(&normalise(code)?).ok_or(ReceiptError::Alphabet)
}

/// A code carrying these raw bytes (the inverse of [`code_bytes`]).
pub fn code_from_bytes(bytes: &[u8]) -> String {
    format!("{CODE_PREFIX}-{}", base32_encode(bytes))
}

/// Strip whitespace (people copy codes in groups) and the prefix.
fn normalise(code: &str) -> Result<String, ReceiptError> {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let body = compact
        .strip_prefix(CODE_PREFIX)
        .and_then(|s| s.strip_prefix('-'))
        .ok_or(ReceiptError::Prefix)?;
    Ok(body.to_string())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let mut n = b.len().min(MAX_FIELD);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out.push(n as u8);
    out.extend_from_slice(&b[..n]);
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    put_str(out, s.unwrap_or(""));
}

/// version · receipt id (16) · unix seconds (8, BE) · decision · method ·
/// scenario · device · rule (each a length byte and UTF-8) · pseudonym flag
/// (0/1) and 8 bytes.
fn encode_payload(r: &Receipt) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.push(VERSION);
    out.extend_from_slice(r.receipt_id.as_bytes());
    out.extend_from_slice(&r.at.timestamp().to_be_bytes());
    put_str(&mut out, &r.decision);
    put_str(&mut out, &r.method);
    put_str(&mut out, &r.scenario);
    put_opt(&mut out, r.device.as_deref());
    put_opt(&mut out, r.refusal_rule.as_deref());
    match r.person.as_deref().and_then(|p| hex::decode(p).ok()) {
        Some(p) if p.len() == PSEUDONYM_LEN => {
            out.push(1);
            out.extend_from_slice(&p);
        }
        _ => out.push(0),
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReceiptError> {
        if self.0.len() < n {
            return Err(ReceiptError::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn byte(&mut self) -> Result<u8, ReceiptError> {
        Ok(self.take(1)?[0])
    }
    fn string(&mut self) -> Result<String, ReceiptError> {
        let n = self.byte()? as usize;
        if n > MAX_FIELD {
            return Err(ReceiptError::Malformed);
        }
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| ReceiptError::Malformed)
    }
    fn opt(&mut self) -> Result<Option<String>, ReceiptError> {
        let s = self.string()?;
        Ok((!s.is_empty()).then_some(s))
    }
}

fn decode_payload(p: &[u8]) -> Result<Receipt, ReceiptError> {
    let mut r = Reader(p);
    let v = r.byte()?;
    if v != VERSION {
        return Err(ReceiptError::Version(v));
    }
    let receipt_id = Uuid::from_slice(r.take(16)?).map_err(|_| ReceiptError::Malformed)?;
    let secs = i64::from_be_bytes(r.take(8)?.try_into().unwrap());
    let at = Utc
        .timestamp_opt(secs, 0)
        .single()
        .ok_or(ReceiptError::Malformed)?;
    let decision = r.string()?;
    let method = r.string()?;
    let scenario = r.string()?;
    let device = r.opt()?;
    let refusal_rule = r.opt()?;
    let person = match r.byte()? {
        0 => None,
        1 => Some(hex::encode(r.take(PSEUDONYM_LEN)?)),
        _ => return Err(ReceiptError::Malformed),
    };
    if !r.0.is_empty() {
        return Err(ReceiptError::Malformed);
    }
    Ok(Receipt {
        receipt_id,
        at,
        decision,
        method,
        scenario,
        device,
        refusal_rule,
        person,
    })
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, upper case, no padding.
fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(B32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The inverse of [`base32_encode`]; `None` on a foreign character, an
/// impossible length or non-zero padding bits (so one code has one form).
fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B32.iter().position(|&x| x == c)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    // Leftover bits must be padding (< 5 bits, all zero).
    if bits >= 5 || acc != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Receipt {
        Receipt {
            receipt_id: Uuid::now_v7(),
            at: Utc.timestamp_opt(1_790_000_000, 0).unwrap(),
            decision: "match".into(),
            method: "face".into(),
            scenario: "residential-gate".into(),
            device: Some("gate-1".into()),
            refusal_rule: None,
            person: Some("0123456789abcdef".into()),
        }
    }

    #[test]
    fn base32_round_trips_every_length() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            assert_eq!(base32_decode(&base32_encode(&data)).unwrap(), data);
        }
    }

    #[test]
    fn a_receipt_verifies_with_its_key_and_not_another() {
        let s = ReceiptSigner::from_seed(&[7; 32]);
        let code = s.sign(&sample());
        let pk = parse_public_key(&s.public_key_hex()).unwrap();
        assert_eq!(verify(&code, &pk).unwrap(), sample_with_id(&code));
        let other = ReceiptSigner::from_seed(&[8; 32]);
        let opk = parse_public_key(&other.public_key_hex()).unwrap();
        assert_eq!(verify(&code, &opk), Err(ReceiptError::Signature));
        // Deterministic: signing again gives the same code.
        assert_eq!(s.sign(&decode(&code).unwrap().0), code);
    }

    fn sample_with_id(code: &str) -> Receipt {
        decode(code).unwrap().0
    }
}
