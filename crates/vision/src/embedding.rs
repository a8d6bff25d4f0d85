//! Face embeddings: 512 floats, unit length, wiped from memory on drop.

use zeroize::Zeroize;

use crate::VisionError;

/// Length of an [`Embedding`].
pub const EMBEDDING_DIM: usize = 512;

/// Identifies the model and pipeline that produce embeddings: templates made
/// under another identifier are not comparable and must be re-enrolled.
/// (`fr_feature.onnx` from faceplugin-face-recognition-js 0.0.1, sha256
/// prefix, 5-point similarity alignment to the ArcFace 112×112 template,
/// BGR input.)
pub const MODEL_ID: &str = "faceplugin-fr_feature-0.0.1/87aacdfe/arcface112-umeyama5-bgr";

/// Cosine similarity at or above which two faces are called the same person.
/// Chosen on LFW View 1 `pairsDevTrain.txt` (the threshold that maximises
/// accuracy on those 2,200 pairs; see bench/vision.md) and then checked on
/// `pairsDevTest.txt`.
pub const DEFAULT_THRESHOLD: f32 = 0.287;

/// Declares an embedding type of one model — `$dim` finite floats with unit L2
/// norm, zeroised on drop, a `Debug` that never prints the values — and its
/// cosine comparison. The three models' embeddings are the same type apart from
/// their length, so they share this one definition.
macro_rules! unit_embedding {
    ($(#[$doc:meta])* $name:ident, $dim:expr, $(#[$cdoc:meta])* fn $compare:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq)]
        pub struct $name(Vec<f32>);

        impl $name {
            /// Checks length and finiteness and L2-normalises.
            pub fn from_vec(mut v: Vec<f32>) -> Result<$name, $crate::VisionError> {
                $crate::embedding::make_unit(&mut v, $dim)?;
                Ok($name(v))
            }

            /// The unit-length values.
            pub fn as_slice(&self) -> &[f32] {
                &self.0
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                zeroize::Zeroize::zeroize(&mut self.0);
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({} values, redacted)", stringify!($name), $dim)
            }
        }

        $(#[$cdoc])*
        pub fn $compare(a: &$name, b: &$name) -> f32 {
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| x * y)
                .sum::<f32>()
                .clamp(-1.0, 1.0)
        }
    };
}
pub(crate) use unit_embedding;

/// Checks that `v` has `dim` finite values, not all zero, and scales it to unit
/// length; on failure it is zeroised first.
pub(crate) fn make_unit(v: &mut Vec<f32>, dim: usize) -> Result<(), VisionError> {
    let why = if v.len() != dim {
        Some(format!("expected {dim} values, got {}", v.len()))
    } else if v.iter().any(|x| !x.is_finite()) {
        Some("a value is NaN or infinite".to_string())
    } else {
        None
    };
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if let Some(why) = why.or_else(|| (norm < 1e-6).then(|| "the vector is zero".to_string())) {
        v.zeroize();
        return Err(VisionError::InvalidEmbedding(why));
    }
    v.iter_mut().for_each(|x| *x /= norm);
    Ok(())
}

/// Reads a pinned model file (fetched and sha256-checked by `facegate-assets`):
/// its path and bytes. The second and third models build their ONNX graphs from these.
pub(crate) fn read_model_asset(name: &str) -> Result<(std::path::PathBuf, Vec<u8>), VisionError> {
    let path = facegate_assets::model(name).map_err(|e| VisionError::Asset(e.to_string()))?;
    let bytes = std::fs::read(&path)
        .map_err(|e| VisionError::Asset(format!("cannot read {}: {e}", path.display())))?;
    Ok((path, bytes))
}

unit_embedding!(
    /// A face embedding: [`EMBEDDING_DIM`] finite floats with unit L2 norm. The
    /// buffer is zeroised when dropped; `Debug` never prints the values.
    Embedding,
    EMBEDDING_DIM,
    /// Cosine similarity of two embeddings (their dot product: both are unit length), in -1..=1.
    fn compare
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_checks_and_normalises() {
        assert!(Embedding::from_vec(vec![1.0; 3]).is_err());
        let mut v = vec![0.0; EMBEDDING_DIM];
        assert!(Embedding::from_vec(v.clone()).is_err());
        v[3] = f32::NAN;
        assert!(Embedding::from_vec(v.clone()).is_err());
        v[3] = 2.0;
        v[7] = 2.0;
        let e = Embedding::from_vec(v).unwrap();
        let n: f32 = e.as_slice().iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert!((compare(&e, &e) - 1.0).abs() < 1e-5);
        assert!(!format!("{e:?}").contains("0.7"));
    }
}
