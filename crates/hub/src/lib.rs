//! The governance hub: one processor, many sites, no face.
//!
//! A **site** is a `facegate serve` at a compound or hotel; its templates,
//! images and matching never leave it (R11). The **hub** (this crate, on
//! PostgreSQL, any number of stateless instances on one database) registers
//! the processor's sites and devices, counts distinct people across sites by
//! a keyed pseudonym (R21–R23), anchors each site's audit chain, routes a
//! person's withdrawal or deletion to every site that holds their face and
//! collects the receipts, and assembles the inspection dossier (R24).
//!
//! Sites initiate every exchange ([`site`]): one signed `POST /v1/sync`
//! carries the site's new audit events (in order, from the hub's cursor),
//! its chain head and rechecked hashes, and its receipts; the answer carries
//! the commands still owed. Delivery is at least once, effect exactly once
//! (events keyed by (site, seq), commands by their id, both in store
//! transactions on each side). The message types ([`proto`]) cannot carry
//! an image, an embedding or a template.

pub mod db;
pub mod dossier;
pub mod keys;
pub mod manifests;
pub mod portal;
pub mod proto;
pub mod server;
pub mod site;
pub mod tls_http;

/// Hub errors; the HTTP layer maps them to the JSON error body.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("bad request: {0}")]
    Bad(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("transport: {0}")]
    Transport(String),
    /// Refused by the Measures (a manifest the linter refuses): the message
    /// names each requirement and article, in Chinese and English.
    #[error("{en}")]
    Refused {
        rule: Option<String>,
        zh: String,
        en: String,
    },
}

pub type Result<T> = std::result::Result<T, HubError>;

pub(crate) fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
