//! The gallery a gate decides with: the first model's int8 gallery for the
//! search, the other models' embeddings beside it, and the calibrated
//! score fusion ([`FusionN`]) for the answer.
//!
//! - A template made under the fusion's model id ([`parts_template`]) carries
//!   every model's embedding of one face. Its first part goes into the first
//!   model's [`Gallery`] (int8 planes, so the 1:N scan costs what it cost
//!   with one model); the other parts are kept as unit f32 vectors beside it
//!   (wiped when removed or dropped).
//! - A template made under the first model's id alone (enrolled before the
//!   fusion, or by an engine without the other models) stays matchable: it is
//!   scored with the first model's cosine against the first model's
//!   calibration.
//! - 1:1 ([`FusedGallery::verify`]) scores each of the person's templates:
//!   with the fused log-odds against the fused table where both the template
//!   and the probe carry every embedding, else with the first model's cosine
//!   against its own table.
//! - 1:N ([`FusedGallery::identify`]) searches the first model's int8
//!   embeddings for the top `max(k, RERANK)` people, then re-ranks them by
//!   the same per-template scores (`bench identify` measured the re-rank
//!   against an exhaustive fused scan: no answer differs at k = 20, 5 or 2).
//!
//! Scores on the two scales are compared through their calibrations: the
//! stronger candidate is the one whose score is rarer among impostors
//! ([`Calibration::fmr_at`]), and each is accepted against its own table's
//! threshold at the same false-match rate.

use crate::template::normalized;
use crate::{
    Calibration, Candidate, Decision, Encoding, Error, FusionN, Gallery, GalleryOptions,
    Identification, Match, PersonId, ScenarioId, Template, TemplateId, Vector,
};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// People of the first model's search re-ranked by the fused score.
pub const RERANK: usize = 20;

/// A face to match: the first model's embedding and, when the engine made
/// them, the other models' (in the fusion's order).
#[derive(Clone, Copy, Debug)]
pub struct Probe<'a> {
    pub first: &'a [f32],
    pub others: Option<&'a [&'a [f32]]>,
}

/// How the fused gallery is made: the first model (id, dimension, table)
/// and the fusion (id, the other models' dimensions, weights, table).
#[derive(Clone, Debug)]
pub struct FusedSpec {
    pub first_model_id: String,
    pub first_dim: usize,
    pub first_calibration: Calibration,
    pub fused_model_id: String,
    /// The other models' embedding sizes, in the fusion's order.
    pub other_dims: Vec<usize>,
    pub fusion: FusionN,
    pub fused_calibration: Calibration,
}

impl FusedSpec {
    /// The fused model id's template dimension (every part side by side).
    pub fn fused_dim(&self) -> usize {
        self.first_dim + self.other_dims.iter().sum::<usize>()
    }

    /// The part sizes of a fused template, first model first.
    pub fn dims(&self) -> Vec<usize> {
        std::iter::once(self.first_dim)
            .chain(self.other_dims.iter().copied())
            .collect()
    }
}

/// One template's answer to a probe.
#[derive(Clone, Copy, Debug)]
struct Scored {
    template: TemplateId,
    score: f32,
    threshold: f32,
    /// How rare the score is among impostors on its own scale (lower: stronger).
    rarity: f64,
    accepted: bool,
    /// On the fused scale (else the first model's).
    fused: bool,
}

impl Scored {
    /// What ranks answers: accepted first, then the rarer score.
    fn cmp_strength(&self, other: &Scored) -> std::cmp::Ordering {
        self.accepted
            .cmp(&other.accepted)
            .then(other.rarity.total_cmp(&self.rarity))
    }

    fn beats(&self, other: &Scored) -> bool {
        self.cmp_strength(other) == std::cmp::Ordering::Greater
    }
}

/// The thresholds one decision compares with (see [`FusedGallery::cascade_bounds`]).
struct At {
    first: f32,
    fused: f32,
    lo: f32,
    hi: f32,
}

/// The other models' unit embeddings of one template (wiped on drop).
type Others = Vec<Zeroizing<Vec<f32>>>;

/// See the module documentation.
pub struct FusedGallery {
    first: Gallery,
    spec: FusedSpec,
    others: HashMap<TemplateId, Others>,
}

impl std::fmt::Debug for FusedGallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FusedGallery({:?}, {} with every embedding)",
            self.first,
            self.others.len()
        )
    }
}

impl FusedGallery {
    pub fn new(scenario: ScenarioId, spec: FusedSpec, opts: GalleryOptions) -> Result<Self, Error> {
        if spec.fused_calibration.model_id() != spec.fused_model_id {
            return Err(Error::ModelMismatch {
                expected: spec.fused_model_id.clone(),
                got: format!("calibration for {}", spec.fused_calibration.model_id()),
            });
        }
        if spec.fusion.weights.len() != 1 + spec.other_dims.len() {
            return Err(Error::Calibration(format!(
                "the fusion weighs {} scores, the gallery has {} models",
                spec.fusion.weights.len(),
                1 + spec.other_dims.len()
            )));
        }
        let first = Gallery::new(
            scenario,
            &spec.first_model_id,
            spec.first_dim,
            spec.first_calibration.clone(),
            opts,
        )?;
        Ok(FusedGallery {
            first,
            spec,
            others: HashMap::new(),
        })
    }

    pub fn spec(&self) -> &FusedSpec {
        &self.spec
    }
    /// Templates held (fused and first-model-only).
    pub fn len(&self) -> usize {
        self.first.len()
    }
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
    /// Templates that carry every model's embedding.
    pub fn fused_len(&self) -> usize {
        self.others.len()
    }
    pub fn people(&self) -> usize {
        self.first.people()
    }
    pub fn contains(&self, id: TemplateId) -> bool {
        self.first.contains(id)
    }
    pub fn templates_of(&self, person: PersonId) -> Vec<TemplateId> {
        self.first.templates_of(person)
    }
    /// Whether a template carries every model's embedding.
    pub fn is_fused(&self, id: TemplateId) -> bool {
        self.others.contains_key(&id)
    }

    /// Adds a template made under the fused model id (every part) or the
    /// first model's id (first part only). A template of another fusion of
    /// the first model (its id `first+…`, e.g. made while the deployment
    /// ran the three-model fusion) is kept as its first part alone, so the
    /// person stays matchable on the first model's scale; any other model
    /// id is refused.
    pub fn add(&mut self, t: &Template) -> Result<(), Error> {
        if t.model_id == self.spec.first_model_id {
            return self.first.add(t);
        }
        let other_fusion = t
            .model_id
            .strip_prefix(self.spec.first_model_id.as_str())
            .is_some_and(|rest| rest.starts_with('+'));
        if other_fusion && t.model_id != self.spec.fused_model_id {
            let d = self.spec.first_dim;
            let all = Zeroizing::new(t.vector.to_f32());
            if all.len() <= d {
                return Err(Error::DimensionMismatch {
                    expected: d + 1,
                    got: all.len(),
                });
            }
            return self.first.add(&Template {
                id: t.id,
                person: t.person,
                scenario: t.scenario,
                model_id: self.spec.first_model_id.clone(),
                vector: Vector::from_f32(&all[..d])?,
            });
        }
        if t.model_id != self.spec.fused_model_id {
            return Err(Error::ModelMismatch {
                expected: format!(
                    "{} or {}",
                    self.spec.fused_model_id, self.spec.first_model_id
                ),
                got: t.model_id.clone(),
            });
        }
        if self.first.contains(t.id) {
            return Err(Error::DuplicateTemplate(t.id));
        }
        let all = Zeroizing::new(t.vector.to_f32());
        let mut parts = split_parts(&all, &self.spec.dims())?.into_iter();
        let first = parts.next().expect("the first part");
        let first_t = Template {
            id: t.id,
            person: t.person,
            scenario: t.scenario,
            model_id: self.spec.first_model_id.clone(),
            vector: Vector::F32(first.to_vec()),
        };
        self.first.add(&first_t)?;
        self.others.insert(t.id, parts.collect());
        Ok(())
    }

    /// Removes a template and wipes its vectors. Returns whether it was present.
    pub fn remove(&mut self, id: TemplateId) -> bool {
        self.others.remove(&id);
        self.first.remove(id)
    }

    /// Removes every template of a person; returns how many.
    pub fn remove_person(&mut self, person: PersonId) -> usize {
        for id in self.first.templates_of(person) {
            self.others.remove(&id);
        }
        self.first.remove_person(person)
    }

    /// The fused log-odds of a template whose first-model cosine is `first`.
    fn fused_score(&self, first: f32, stored: &Others, probe: &Others) -> f32 {
        let others = stored
            .iter()
            .zip(probe)
            .map(|(s, p)| s.iter().zip(p.iter()).map(|(a, b)| a * b).sum::<f32>());
        self.spec
            .fusion
            .score_of(std::iter::once(first).chain(others))
    }

    /// The probe's other parts as unit vectors, checked against the spec.
    fn probe_others(&self, probe: &Probe) -> Result<Option<Others>, Error> {
        let Some(others) = probe.others else {
            return Ok(None);
        };
        if others.len() != self.spec.other_dims.len() {
            return Err(Error::DimensionMismatch {
                expected: self.spec.other_dims.len(),
                got: others.len(),
            });
        }
        others
            .iter()
            .zip(&self.spec.other_dims)
            .map(|(v, &d)| {
                if v.len() != d {
                    return Err(Error::DimensionMismatch {
                        expected: d,
                        got: v.len(),
                    });
                }
                Ok(Zeroizing::new(normalized(v)?))
            })
            .collect::<Result<Others, Error>>()
            .map(Some)
    }

    /// The cascade's first-model bounds at the per-comparison false-match
    /// rate `fmr`: at or below `lo` no other models' scores can lift the
    /// fused score over its threshold (every other cosine taken at its most
    /// favourable, ±1), so the fusion would reject; above `hi` the first
    /// model's own false-match rate is [`CASCADE_SHARE`] of `fmr`, so
    /// accepting there without the others adds at most that share to the
    /// false matches. In between the other models decide.
    pub fn cascade_bounds(&self, fmr: f64) -> (f32, f32) {
        let hi = self.spec.first_calibration.threshold(fmr * CASCADE_SHARE);
        let w = &self.spec.fusion.weights;
        let rest: f64 = w[1..].iter().map(|x| x.abs()).sum();
        let tf = self.spec.fused_calibration.threshold(fmr) as f64;
        let lo = if w[0] > 0.0 {
            // A hair below the bound, against rounding in the fused sum.
            ((tf - self.spec.fusion.bias - rest) / w[0]) as f32 - 1e-4
        } else {
            f32::NEG_INFINITY
        };
        (lo, hi.max(lo))
    }

    /// The thresholds a decision at `fmr` compares with, read once.
    fn at(&self, fmr: f64) -> At {
        let (lo, hi) = self.cascade_bounds(fmr);
        At {
            first: self.spec.first_calibration.threshold(fmr),
            fused: self.spec.fused_calibration.threshold(fmr),
            lo,
            hi,
        }
    }

    /// One template's answer at thresholds `at`; `None` when the cascade
    /// needs the other models for it.
    fn score_one(&self, template: TemplateId, s1: f32, how: &How, at: &At) -> Option<Scored> {
        let first = &self.spec.first_calibration;
        let on_first = |threshold: f32| Scored {
            template,
            score: s1,
            threshold,
            rarity: first.fmr_at(s1),
            accepted: s1 > threshold,
            fused: false,
        };
        let Some(stored) = self.others.get(&template) else {
            // A first-model template: its own scale, whatever the probe.
            return Some(on_first(at.first));
        };
        match how {
            How::First => Some(on_first(at.first)),
            How::Cascade => (s1 <= at.lo || s1 > at.hi).then(|| on_first(at.hi)),
            How::Fused(probe) => {
                let score = self.fused_score(s1, stored, probe);
                Some(Scored {
                    template,
                    score,
                    threshold: at.fused,
                    rarity: self.spec.fused_calibration.fmr_at(score),
                    accepted: score > at.fused,
                    fused: true,
                })
            }
        }
    }

    /// The strongest answer among one person's templates (their
    /// first-model scores; accepted first, then the rarest score);
    /// `Err(())` when the cascade needs the other models (no template
    /// accepts without them, and one cannot be decided).
    fn best_of(
        &self,
        scores: Vec<(TemplateId, f32)>,
        how: &How,
        at: &At,
    ) -> Result<Option<Scored>, ()> {
        let mut best: Option<Scored> = None;
        let mut undecided = false;
        for (template, s1) in scores {
            match self.score_one(template, s1, how, at) {
                Some(s) if best.is_none_or(|b| s.beats(&b)) => best = Some(s),
                Some(_) => {}
                None => undecided = true,
            }
        }
        if undecided && !best.is_some_and(|b| b.accepted) {
            return Err(());
        }
        Ok(best)
    }

    /// How a probe is scored.
    fn how(&self, probe: &Probe) -> Result<How, Error> {
        Ok(match self.probe_others(probe)? {
            Some(o) => How::Fused(o),
            None => How::First,
        })
    }

    /// 1:1 verification against every template of `person` (see the module
    /// documentation). The threshold is set for the options' `verify_fmr`
    /// over the person's templates, as [`Gallery::verify`] does.
    pub fn verify(&self, person: PersonId, probe: &Probe) -> Result<Match, Error> {
        let how = self.how(probe)?;
        match self.verify_how(person, probe.first, &how)? {
            Cascade::Decided(m) => Ok(m),
            Cascade::NeedsOthers => unreachable!("only a cascade defers"),
        }
    }

    /// [`FusedGallery::verify`] with the first model's embedding alone, as a
    /// cascade: decided without the other models where the bounds allow
    /// ([`FusedGallery::cascade_bounds`]: the score and threshold are then
    /// the first model's cosine and `hi`), else `NeedsOthers`: run them and
    /// call [`FusedGallery::verify`].
    pub fn verify_cascade(&self, person: PersonId, first: &[f32]) -> Result<Cascade<Match>, Error> {
        self.verify_how(person, first, &How::Cascade)
    }

    fn verify_how(
        &self,
        person: PersonId,
        first: &[f32],
        how: &How,
    ) -> Result<Cascade<Match>, Error> {
        let q = self.first.prepare(first)?;
        let scores = self.first.person_template_scores(person, &q);
        let n = scores.len();
        if n == 0 {
            return Err(Error::UnknownPerson(person));
        }
        let fmr = Calibration::fmr_for_fpir(self.first.options().verify_fmr, n);
        let Ok(best) = self.best_of(scores, how, &self.at(fmr)) else {
            return Ok(Cascade::NeedsOthers);
        };
        let b = best.ok_or(Error::UnknownPerson(person))?;
        Ok(Cascade::Decided(Match {
            person,
            score: b.score,
            threshold: b.threshold,
            fmr,
            templates_compared: n,
            accepted: b.accepted,
            fused: b.fused,
        }))
    }

    /// 1:N identification with the open-set answer: the first model's search
    /// for the top `max(k, RERANK)` people, re-ranked (see the module
    /// documentation); `k` candidates are returned, best first.
    pub fn identify(&self, probe: &Probe, k: usize) -> Result<Identification, Error> {
        let how = self.how(probe)?;
        match self.identify_how(probe.first, k, &how)? {
            Cascade::Decided(i) => Ok(i),
            Cascade::NeedsOthers => unreachable!("only a cascade defers"),
        }
    }

    /// [`FusedGallery::identify`] as a cascade (see
    /// [`FusedGallery::verify_cascade`]): `NeedsOthers` when any searched
    /// person cannot be decided without the other models.
    pub fn identify_cascade(
        &self,
        first: &[f32],
        k: usize,
    ) -> Result<Cascade<Identification>, Error> {
        self.identify_how(first, k, &How::Cascade)
    }

    fn identify_how(
        &self,
        first: &[f32],
        k: usize,
        how: &How,
    ) -> Result<Cascade<Identification>, Error> {
        let n = self.first.len().max(1);
        let fpir = self.first.options().target_fpir;
        let fmr = Calibration::fmr_for_fpir(fpir, n);
        let q = self.first.prepare(first)?;
        let searched = self.first.people_for(&q, k.max(RERANK));
        let at = self.at(fmr);
        let mut ranked: Vec<(PersonId, Scored)> = Vec::with_capacity(searched.len());
        for c in &searched {
            let scores = self.first.person_template_scores(c.person, &q);
            match self.best_of(scores, how, &at) {
                Ok(Some(s)) => ranked.push((c.person, s)),
                Ok(None) => {}
                Err(()) => return Ok(Cascade::NeedsOthers),
            }
        }
        ranked.sort_by(|a, b| b.1.cmp_strength(&a.1));
        ranked.truncate(k.max(1));
        let (threshold, fused) = match (ranked.first(), how) {
            (Some((_, s)), _) => (s.threshold, s.fused),
            (None, How::Fused(_)) => (at.fused, true),
            (None, _) => (at.first, false),
        };
        let decision = match ranked.first() {
            Some((person, s)) if s.accepted => Decision::Known {
                person: *person,
                score: s.score,
            },
            _ => Decision::Unknown,
        };
        Ok(Cascade::Decided(Identification {
            candidates: ranked
                .iter()
                .map(|(person, s)| Candidate {
                    person: *person,
                    template: s.template,
                    score: s.score,
                })
                .collect(),
            decision,
            threshold,
            fmr,
            fpir,
            gallery_size: self.first.len(),
            fused,
        }))
    }
}

/// How a probe is scored against a fused template.
enum How {
    /// The first model's cosine against its own table (an engine without
    /// the other models).
    First,
    /// The cascade: the first model's cosine where the bounds decide.
    Cascade,
    /// The fused log-odds with these unit embeddings of the other models.
    Fused(Others),
}

/// A cascade's answer before the other models run.
#[derive(Clone, Debug, PartialEq)]
pub enum Cascade<T> {
    /// Decided without the other models.
    Decided(T),
    /// Run the other models and ask again with every embedding.
    NeedsOthers,
}

/// The share of the target false-match rate the cascade may add by
/// accepting on the first model alone (see [`FusedGallery::cascade_bounds`]).
pub const CASCADE_SHARE: f64 = 0.01;

/// A template that carries every model's embedding of one face, made under
/// the fused model id: the unit vectors side by side, normalised together (so
/// each of `k` parts is scaled by 1/√k; [`split_parts`] restores them). Sealed
/// like any template, so the AAD binds the fused model id. Kept as f32: one
/// int8 scale over parts of different ranges would cost the smaller parts
/// their precision.
pub fn parts_template(
    person: PersonId,
    scenario: ScenarioId,
    fused_model_id: &str,
    parts: &[&[f32]],
    encoding: Encoding,
) -> Result<Template, Error> {
    let mut all = Zeroizing::new(Vec::new());
    for p in parts {
        let unit = normalized(p).map_err(|e| {
            Error::InvalidVector(format!("a part of the fused template is unusable: {e}"))
        })?;
        all.extend_from_slice(&unit);
        let mut unit = unit;
        zeroize::Zeroize::zeroize(&mut unit);
    }
    Template::new(person, scenario, fused_model_id, &all, encoding)
}

/// The unit embeddings of a fused template's vector, part by part (`dims`:
/// each part's size, in order).
pub fn split_parts(v: &[f32], dims: &[usize]) -> Result<Vec<Zeroizing<Vec<f32>>>, Error> {
    let total: usize = dims.iter().sum();
    if dims.contains(&0) || total != v.len() {
        return Err(Error::DimensionMismatch {
            expected: total,
            got: v.len(),
        });
    }
    let mut out = Vec::with_capacity(dims.len());
    let mut at = 0;
    for &d in dims {
        let part = &v[at..at + d];
        let n = part.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        out.push(Zeroizing::new(part.iter().map(|x| x / n).collect()));
        at += d;
    }
    Ok(out)
}
