//! facegate-gallery turns face embeddings into decisions, and keeps them sealed.
//!
//! It is a leaf crate: it works on `&[f32]` embeddings (512-d, L2-normalised, from
//! `facegate-vision`) and knows nothing of images, consent or HTTP.
//!
//! - **Templates** ([`Template`]) hold one embedding of one person in one scenario, as f32
//!   or int8; the plaintext is wiped on drop. At rest they exist only as
//!   [`SealedTemplate`] bytes: versioned header + AES-256-GCM ciphertext whose associated
//!   data binds the template, person, scenario and model ids, so a template copied to
//!   another person or scenario does not open.
//! - **Keys** ([`Keyring`]): a key-encryption key ([`Kek`], from a 0600 file or the
//!   `FACEGATE_KEK` environment variable) wraps one data key per scenario
//!   ([`WrappedKey`]); the KEK rotates without touching templates.
//! - **Matching** ([`Gallery`]): 1:1 [`Gallery::verify`] fused over a person's templates;
//!   1:N [`Gallery::identify`] with an open-set [`Decision`] (`Unknown` below the
//!   threshold); exact search over int8 (held as two nibble planes; the scan streams the high plane and
//!   reads the low plane only for rows whose score bound can still enter the top k;
//!   hand-written AVX-512 VNNI and AVX2 kernels picked at run time,
//!   scalar fallback) or f32; batched queries; HNSW for large galleries with exact
//!   re-ranking; add/remove without a rebuild; sealed save/load.
//! - **Calibration** ([`Calibration`]): thresholds are false-match rates, read from an
//!   impostor score table measured on LFW and embedded in the crate. In 1:N the
//!   per-comparison FMR tightens with gallery size so the false-positive
//!   identification rate stays at its target.
//!
//! ```
//! use facegate_gallery::*;
//! # fn main() -> Result<(), Error> {
//! # let mut scores: Vec<f32> = (0..20000).map(|i| ((i * 7919) % 20000) as f32 / 40000.0 - 0.2).collect();
//! # let calibration = Calibration::from_impostor_scores("demo-model", &mut scores, "doc")?;
//! let scenario = ScenarioId::new();
//! let mut g = Gallery::new(scenario, "demo-model", 4, calibration, GalleryOptions::default())?;
//! let alice = PersonId::new();
//! g.add(&Template::new(alice, scenario, "demo-model", &[1.0, 0.2, 0.0, 0.0], Encoding::Int8)?)?;
//! let id = g.identify(&[0.98, 0.21, 0.01, 0.0], 5)?;
//! assert_eq!(id.decision, Decision::Known { person: alice, score: id.candidates[0].score });
//! let stranger = g.identify(&[0.0, 0.0, 1.0, 0.0], 5)?;
//! assert_eq!(stranger.decision, Decision::Unknown);
//! # Ok(()) }
//! ```

mod calibration;
mod fused;
mod fusion;
mod gallery;
mod hnsw;
mod ids;
mod idtable;
pub mod kernels;
mod keys;
mod planes;
mod seal;
mod store;
pub mod synthetic;
mod template;
mod topk;

pub use calibration::{Calibration, BUILTIN_TABLE, FUSED3_TABLE, FUSED_TABLE, SECOND_TABLE};
pub use fused::{
    parts_template, split_parts, Cascade, FusedGallery, FusedSpec, Probe, CASCADE_SHARE, RERANK,
};
pub use fusion::{pair_template, split_pair, Fusion, FusionN, BUILTIN_FUSION, BUILTIN_FUSION3};
pub use gallery::{Candidate, Decision, Gallery, GalleryOptions, Identification, Match, Search};
pub use hnsw::HnswParams;
pub use ids::{PersonId, ScenarioId, TemplateId};
pub use keys::{Kek, Keyring, WrappedKey, KEK_ENV};
pub use seal::{SealedTemplate, FORMAT_VERSION};
pub use template::{Encoding, Template, Vector};

use std::path::{Path, PathBuf};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid embedding: {0}")]
    InvalidVector(String),
    #[error("embedding has {got} dimensions, the gallery holds {expected}")]
    DimensionMismatch { expected: usize, got: usize },
    #[error("embedding model mismatch: expected {expected}, got {got}")]
    ModelMismatch { expected: String, got: String },
    #[error("template belongs to another scenario than this gallery")]
    ScenarioMismatch,
    #[error("template {0} is already in the gallery")]
    DuplicateTemplate(TemplateId),
    #[error("person {0} has no template in this gallery")]
    UnknownPerson(PersonId),
    #[error("malformed data: {0}")]
    Format(String),
    #[error(
        "sealed template failed to open: wrong key, or it was sealed for another template, person, scenario or model, or it was altered"
    )]
    OpenFailed,
    #[error("data key {0} is not in the keyring")]
    UnknownKey(uuid::Uuid),
    /// [`Keyring::seal`] for a scenario that has no data key yet: make it
    /// with [`Keyring::data_key`] and persist it first, or the templates
    /// sealed with it would not open after a restart.
    #[error("scenario {0} has no data key yet: create it with Keyring::data_key and persist it before sealing")]
    NoDataKey(uuid::Uuid),
    #[error("data key is wrapped under KEK {expected}, but the keyring holds KEK {got}")]
    WrongKek { expected: String, got: String },
    #[error("key error: {0}")]
    Key(String),
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
