//! The store's error type.

/// A refusal that comes from the Measures: the policy crate's type, so the
/// article is derived from the rule and the two can never disagree.
pub use facegate_policy::Refusal;

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
    /// An audit payload looks like it holds an image or a template (R14):
    /// the refusal names the rule and article in both languages, then the
    /// field that was rejected.
    #[error("{refusal}: {0}", refusal = Refusal::new(
        facegate_policy::RuleId::R14,
        "audit records never hold images or templates",
        "审计记录不得包含图像或人脸特征",
    ))]
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
