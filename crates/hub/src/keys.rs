//! Site identity (Ed25519 signed requests), the processor's pseudonym key
//! (HMAC-SHA-256) and TLS material (rustls; `rcgen` for a self-signed one).

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::proto::Hash32;
use crate::{HubError, Result};

/// Header names of a signed site request.
pub const H_SITE: &str = "x-facegate-site";
pub const H_TIME: &str = "x-facegate-time";
pub const H_SIG: &str = "x-facegate-signature";
/// A signature older or newer than this is refused (replays beyond it).
pub const MAX_SKEW_SECS: i64 = 300;

fn read_hex32(path: &Path, what: &str) -> Result<[u8; 32]> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| HubError::Config(format!("{what} {}: {e}", path.display())))?;
    let v = hex::decode(s.trim())
        .map_err(|_| HubError::Config(format!("{what} {}: not hex", path.display())))?;
    v.try_into()
        .map_err(|_| HubError::Config(format!("{what} {}: not 32 bytes", path.display())))
}

fn write_secret(path: &Path, bytes: &[u8; 32]) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(|e| HubError::Config(format!("{}: {e}", path.display())))?;
    writeln!(f, "{}", hex::encode(bytes)).map_err(|e| HubError::Config(e.to_string()))
}

/// A site's signing key (the seed is kept in a file at the site).
pub struct SiteKey(SigningKey);

impl SiteKey {
    pub fn generate() -> SiteKey {
        SiteKey(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }
    pub fn load(path: &Path) -> Result<SiteKey> {
        Ok(SiteKey(SigningKey::from_bytes(&read_hex32(
            path, "site key",
        )?)))
    }
    /// Write a new key to `path` (refuses to overwrite).
    pub fn create_file(path: &Path) -> Result<SiteKey> {
        let k = SiteKey::generate();
        write_secret(path, &k.0.to_bytes())?;
        Ok(k)
    }
    /// The public key, 64 hex digits, to register at the hub.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }
    /// Sign a request.
    pub fn sign(&self, method: &str, path: &str, time: i64, body: &[u8]) -> String {
        hex::encode(
            self.0
                .sign(&signed_message(method, path, time, body))
                .to_bytes(),
        )
    }
}

fn signed_message(method: &str, path: &str, time: i64, body: &[u8]) -> Vec<u8> {
    format!(
        "facegate-hub-v1\n{method}\n{path}\n{time}\n{}",
        hex::encode(Sha256::digest(body))
    )
    .into_bytes()
}

/// Check a site's signature with its registered public key.
pub fn verify_signature(
    public_hex: &str,
    method: &str,
    path: &str,
    time: i64,
    body: &[u8],
    sig_hex: &str,
) -> bool {
    let Some(pk) = Hash32::parse(public_hex) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk.0) else {
        return false;
    };
    let Ok(sig) = hex::decode(sig_hex) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig) else {
        return false;
    };
    vk.verify(&signed_message(method, path, time, body), &sig)
        .is_ok()
}

/// The processor's pseudonym key: every site and the hub hold it, so the
/// same person has the same pseudonym everywhere; without it a pseudonym
/// cannot be linked to a name.
#[derive(Clone)]
pub struct PseudonymKey([u8; 32]);

impl PseudonymKey {
    pub fn load(path: &Path) -> Result<PseudonymKey> {
        Ok(PseudonymKey(read_hex32(path, "pseudonym key")?))
    }
    pub fn create_file(path: &Path) -> Result<PseudonymKey> {
        let k: [u8; 32] = rand::random();
        write_secret(path, &k)?;
        Ok(PseudonymKey(k))
    }
    pub fn from_bytes(k: [u8; 32]) -> PseudonymKey {
        PseudonymKey(k)
    }
    /// The pseudonym of a person's identity attributes: name (whitespace
    /// and case folded), contact (whitespace removed) and date of birth.
    pub fn pseudonym(&self, name: &str, contact: Option<&str>, dob: Option<&str>) -> Hash32 {
        let norm = |s: &str| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        let contact: String = contact
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        m.update(b"facegate-person-v1\0");
        m.update(norm(name).as_bytes());
        m.update(b"\0");
        m.update(contact.to_lowercase().as_bytes());
        m.update(b"\0");
        m.update(dob.unwrap_or("").as_bytes());
        Hash32(m.finalize().into_bytes().into())
    }
}

/// The crypto provider every TLS config here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Write a self-signed certificate and key (PEM) for `names` (e.g.
/// `localhost`, `127.0.0.1`): the operator's own CA-less certificate for a
/// test or a single-machine setup.
pub fn write_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<()> {
    let ck = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| HubError::Config(format!("certificate: {e}")))?;
    std::fs::write(cert, ck.cert.pem()).map_err(|e| HubError::Config(e.to_string()))?;
    std::fs::write(key, ck.key_pair.serialize_pem())
        .map_err(|e| HubError::Config(e.to_string()))?;
    Ok(())
}

/// A rustls server config from PEM files (R20: TLS in transit).
pub fn server_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert)
            .map_err(|e| HubError::Config(format!("{}: {e}", cert.display())))?,
    ))
    .collect::<std::result::Result<Vec<_>, _>>()
    .map_err(|e| HubError::Config(format!("certificate: {e}")))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key)
            .map_err(|e| HubError::Config(format!("{}: {e}", key.display())))?,
    ))
    .map_err(|e| HubError::Config(format!("key: {e}")))?
    .ok_or_else(|| HubError::Config("no private key in the key file".into()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| HubError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| HubError::Config(format!("certificate: {e}")))?;
    Ok(Arc::new(cfg))
}

/// A rustls client config trusting the certificate(s) in `ca` (PEM).
pub fn client_tls(ca: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(ca).map_err(|e| HubError::Config(format!("{}: {e}", ca.display())))?,
    )) {
        roots
            .add(c.map_err(|e| HubError::Config(e.to_string()))?)
            .map_err(|e| HubError::Config(e.to_string()))?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| HubError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r20_a_signature_binds_site_key_path_time_and_body() {
        let k = SiteKey::generate();
        let sig = k.sign("POST", "/v1/sync", 100, b"{}");
        assert!(verify_signature(
            &k.public_hex(),
            "POST",
            "/v1/sync",
            100,
            b"{}",
            &sig
        ));
        assert!(!verify_signature(
            &k.public_hex(),
            "POST",
            "/v1/sync",
            100,
            b"{ }",
            &sig
        ));
        assert!(!verify_signature(
            &k.public_hex(),
            "POST",
            "/v1/sync",
            101,
            b"{}",
            &sig
        ));
        assert!(!verify_signature(
            &k.public_hex(),
            "POST",
            "/v1/sites",
            100,
            b"{}",
            &sig
        ));
        let other = SiteKey::generate();
        assert!(!verify_signature(
            &other.public_hex(),
            "POST",
            "/v1/sync",
            100,
            b"{}",
            &sig
        ));
    }

    #[test]
    fn r21_the_same_person_has_one_pseudonym_and_another_key_gives_another() {
        let a = PseudonymKey::from_bytes([1; 32]);
        let p = a.pseudonym("Barack Obama", Some("138 0000 0000"), Some("1961-08-04"));
        assert_eq!(
            p,
            a.pseudonym(" barack  OBAMA ", Some("13800000000"), Some("1961-08-04"))
        );
        assert_ne!(
            p,
            a.pseudonym("Barack Obama", Some("13800000000"), Some("1961-08-05"))
        );
        assert_ne!(
            p,
            PseudonymKey::from_bytes([2; 32]).pseudonym(
                "Barack Obama",
                Some("13800000000"),
                Some("1961-08-04")
            )
        );
    }
}
