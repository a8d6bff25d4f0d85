//! The store's error type.

use std::fmt;

/// A refusal that comes from the Face Recognition Measures: it names the
/// requirement ID and article and carries a Chinese and an English message.
///
/// The store refuses only what it must enforce as the last line of defence
/// (e.g. enrolment without a valid processing consent, R7); the rich rules
/// live in `facegate-policy`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    /// Requirement ID from MEASURES.md, e.g. `"R7"`.
    pub rule: String,
    /// Article of the Measures, e.g. `"Art. 6"`.
    pub article: String,
    /// Message in Chinese (shown first).
    pub message_zh: String,
    /// Message in English.
    pub message_en: String,
}

impl Refusal {
    pub(crate) fn new(rule: &str, article: &str, zh: &str, en: &str) -> Self {
        Refusal {
            rule: rule.into(),
            article: article.into(),
            message_zh: zh.into(),
            message_en: en.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / {}: {} ({})",
            self.rule, self.article, self.message_en, self.message_zh
        )
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The connection string is neither a SQLite path/`sqlite:` URL nor a
    /// `postgres://` URL, or is otherwise unusable.
    #[error("bad database URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given (passwords are not stripped: do not log it).
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The database driver failed (I/O, constraint, connection).
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An applied migration differs from the one compiled into this binary.
    #[error("migration {version} ({name}) applied to this database differs from this build's: refusing to run")]
    MigrationMismatch {
        /// Migration number.
        version: i64,
        /// Migration name.
        name: String,
    },
    /// The database holds migrations newer than this build knows.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// Highest version found in the database.
        found: i64,
        /// Highest version this build has.
        supported: i64,
    },
    /// A rule of the Measures forbids the operation.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// A referenced record does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Which kind of record (e.g. "person").
        kind: &'static str,
        /// Its ID.
        id: String,
    },
    /// The input is malformed (empty name, oversize blob, bad key file...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An audit payload looks like it holds an image or a template (R14).
    #[error("R14 / Art. 9: audit records never hold images or templates (审计记录不得包含图像或特征): {0}")]
    AuditPayloadRejected(String),
    /// Decrypting a record failed: wrong key or the ciphertext was altered.
    #[error("cannot decrypt {0}: wrong identity key or altered record")]
    Decrypt(String),
    /// A stored value cannot be parsed (corrupt row).
    #[error("corrupt stored value in {0}")]
    Corrupt(String),
    /// Key file I/O.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// Path of the key file.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
