//! Templates: one embedding of one person in one scenario, in f32 or int8 form.

use crate::{Error, PersonId, ScenarioId, TemplateId};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// How a template's vector is encoded (in memory and inside the sealed bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// 4 bytes per dimension, as produced by the embedding model (L2-normalised).
    F32,
    /// 1 byte per dimension plus one f32 scale: `x[i] ≈ scale * q[i]`, `q[i]` in -127..=127.
    Int8,
}

impl Encoding {
    pub(crate) fn code(self) -> u8 {
        match self {
            Encoding::F32 => 0,
            Encoding::Int8 => 1,
        }
    }
    pub(crate) fn from_code(c: u8) -> Result<Self, Error> {
        match c {
            0 => Ok(Encoding::F32),
            1 => Ok(Encoding::Int8),
            _ => Err(Error::Format(format!("unknown encoding code {c}"))),
        }
    }
}

/// A template's vector. The memory is wiped when it is dropped.
#[derive(Clone, PartialEq, Zeroize, ZeroizeOnDrop)]
pub enum Vector {
    /// Unit-length f32 embedding.
    F32(Vec<f32>),
    /// Symmetric per-vector int8 quantisation of a unit-length embedding.
    Int8 { scale: f32, data: Vec<i8> },
}

impl std::fmt::Debug for Vector {
    // Never print face information.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Vector({:?}, dim {}, redacted)",
            self.encoding(),
            self.dim()
        )
    }
}

impl Vector {
    /// Validates and L2-normalises an f32 embedding (rejects empty, non-finite or zero vectors).
    pub fn from_f32(v: &[f32]) -> Result<Self, Error> {
        Ok(Vector::F32(normalized(v)?))
    }

    /// Quantises an f32 embedding (normalised first) to int8.
    pub fn int8_from_f32(v: &[f32]) -> Result<Self, Error> {
        let mut n = normalized(v)?;
        let mut data = vec![0i8; n.len()];
        let scale = quantize_into(&n, &mut data);
        n.zeroize();
        Ok(Vector::Int8 { scale, data })
    }

    /// The encoding of this vector.
    pub fn encoding(&self) -> Encoding {
        match self {
            Vector::F32(_) => Encoding::F32,
            Vector::Int8 { .. } => Encoding::Int8,
        }
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        match self {
            Vector::F32(v) => v.len(),
            Vector::Int8 { data, .. } => data.len(),
        }
    }

    /// The vector as f32 (dequantised for int8).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Vector::F32(v) => v.clone(),
            Vector::Int8 { scale, data } => data.iter().map(|&q| q as f32 * scale).collect(),
        }
    }

    /// The vector in the given encoding.
    pub fn to_encoding(&self, e: Encoding) -> Vector {
        match (self, e) {
            (Vector::F32(_), Encoding::F32) | (Vector::Int8 { .. }, Encoding::Int8) => self.clone(),
            (Vector::F32(v), Encoding::Int8) => {
                let mut data = vec![0i8; v.len()];
                let scale = quantize_into(v, &mut data);
                Vector::Int8 { scale, data }
            }
            (Vector::Int8 { .. }, Encoding::F32) => Vector::F32(self.to_f32()),
        }
    }
}

/// Rejects empty or non-finite vectors and returns a unit-length copy.
pub(crate) fn normalized(v: &[f32]) -> Result<Vec<f32>, Error> {
    if v.is_empty() {
        return Err(Error::InvalidVector("empty embedding".into()));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidVector(
            "embedding has NaN or infinite values".into(),
        ));
    }
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if norm < 1e-12 {
        return Err(Error::InvalidVector("embedding has zero length".into()));
    }
    Ok(v.iter().map(|x| (*x as f64 / norm) as f32).collect())
}

/// Symmetric int8 quantisation; returns the scale (`x ≈ scale * q`).
pub(crate) fn quantize_into(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        out.fill(0);
        return 0.0;
    }
    let scale = max / 127.0;
    let inv = 127.0 / max;
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x * inv).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// One enrolled face sample of one person in one scenario.
///
/// The vector is plaintext face information: it is wiped from memory when the
/// template is dropped, and at rest it exists only as a [`crate::SealedTemplate`].
#[derive(Clone, Debug)]
pub struct Template {
    pub id: TemplateId,
    pub person: PersonId,
    pub scenario: ScenarioId,
    /// Which embedding model produced the vector (e.g. `"fr_feature.onnx@<sha256 prefix>"`);
    /// vectors from different models are never compared.
    pub model_id: String,
    pub vector: Vector,
}

impl Template {
    /// A new template with a fresh random id, storing the (normalised) embedding in `encoding`.
    pub fn new(
        person: PersonId,
        scenario: ScenarioId,
        model_id: impl Into<String>,
        embedding: &[f32],
        encoding: Encoding,
    ) -> Result<Self, Error> {
        let vector = match encoding {
            Encoding::F32 => Vector::from_f32(embedding)?,
            Encoding::Int8 => Vector::int8_from_f32(embedding)?,
        };
        let model_id = model_id.into();
        check_model_id(&model_id)?;
        Ok(Template {
            id: TemplateId::new(),
            person,
            scenario,
            model_id,
            vector,
        })
    }

    /// The encoding of the vector.
    pub fn encoding(&self) -> Encoding {
        self.vector.encoding()
    }
}

pub(crate) fn check_model_id(m: &str) -> Result<(), Error> {
    if m.is_empty() || m.len() > 255 {
        return Err(Error::InvalidVector(format!(
            "model id must be 1..=255 bytes, got {}",
            m.len()
        )));
    }
    Ok(())
}
