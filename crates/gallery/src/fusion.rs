//! Score-level fusion of two independent embedding models.
//!
//! Each model's cosine score lives on its own scale (the first model's
//! impostors sit near 0, the second's near 0.8). A logistic model fitted on
//! labelled pairs (LFW View 1 `pairsDevTrain.txt` only) maps the two scores to
//! one common scale, the log-odds that the pair is the same person:
//!
//! `fused = w₁·s₁ + w₂·s₂ + b`
//!
//! The fused score gets its own [`crate::Calibration`] (an impostor table of
//! fused scores), so thresholds are still set as false-match rates.
//!
//! The fitted weights are a data file embedded in the crate
//! (`data/fusion.txt`, written by `facegate bench lfw --write-fusion`).

use crate::{Encoding, Error, PersonId, ScenarioId, Template};

/// The embedded fusion weights.
pub const BUILTIN_FUSION: &str = include_str!("../data/fusion.txt");

/// The embedded three-model fusion weights (`data/fusion3.txt`, written by
/// `facegate bench calibrate --model fused3` from LFW View 1 DevTrain only).
pub const BUILTIN_FUSION3: &str = include_str!("../data/fusion3.txt");

/// A fitted logistic fusion of two scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Fusion {
    /// Identifier of the model pair (and of templates that carry both embeddings).
    pub model_id: String,
    /// Weights of the first and second model's cosine score.
    pub weights: [f64; 2],
    pub bias: f64,
    /// Cascade: the second model is needed only when the first model's score
    /// is within this margin of the first model's threshold (chosen on the
    /// calibration pairs as the smallest margin that keeps the fused accuracy).
    pub cascade_margin: Option<f32>,
    /// Where the weights come from (the command and data).
    pub source: String,
}

impl Fusion {
    /// The fusion embedded in this build.
    pub fn builtin() -> Result<Fusion, Error> {
        Fusion::parse(BUILTIN_FUSION)
    }

    /// The fused score (log-odds of "same person") of two cosine scores.
    pub fn score(&self, first: f32, second: f32) -> f32 {
        (self.weights[0] * first as f64 + self.weights[1] * second as f64 + self.bias) as f32
    }

    /// Fits the logistic model on `(first, second, same)` pairs: the
    /// two-score case of [`FusionN::fit`]. Deterministic.
    pub fn fit(model_id: &str, pairs: &[(f32, f32, bool)], source: &str) -> Result<Fusion, Error> {
        let pairs: Vec<(Vec<f32>, bool)> = pairs.iter().map(|&(a, b, y)| (vec![a, b], y)).collect();
        let f = FusionN::fit(&pairs)?;
        Ok(Fusion {
            model_id: model_id.to_string(),
            weights: [f.weights[0], f.weights[1]],
            bias: f.bias,
            cascade_margin: None,
            source: source.to_string(),
        })
    }

    /// The text form (`data/fusion.txt`).
    pub fn to_text(&self, comment: &str) -> String {
        let mut s = text(
            comment,
            &self.model_id,
            &self.source,
            &self.weights,
            self.bias,
        );
        if let Some(m) = self.cascade_margin {
            s.push_str(&format!("cascade_margin {m:.4}\n"));
        }
        s
    }

    /// Whether a 1:1 check whose first-model score is `first` needs the second
    /// model (see [`Fusion::cascade_margin`]); always, without a margin.
    pub fn needs_second(&self, first: f32, first_threshold: f32) -> bool {
        self.cascade_margin
            .is_none_or(|m| (first - first_threshold).abs() <= m)
    }

    /// Reads the text form.
    pub fn parse(text: &str) -> Result<Fusion, Error> {
        let f = Fields::parse(text)?;
        let weights: [f64; 2] = f
            .weights
            .try_into()
            .map_err(|_| bad("two weights expected"))?;
        Ok(Fusion {
            model_id: f.model,
            weights,
            bias: f.bias,
            cascade_margin: f.cascade_margin,
            source: f.source,
        })
    }
}

fn bad(m: &str) -> Error {
    Error::Format(format!("fusion: {m}"))
}

/// A fusion's text form: comment lines, `model`, `source`, `weights w1 … wk`
/// and `bias` (a two-model fusion may add `cascade_margin`).
fn text(comment: &str, model_id: &str, source: &str, weights: &[f64], bias: f64) -> String {
    let mut s = String::new();
    for line in comment.lines() {
        s.push_str(&format!("# {line}\n"));
    }
    let w: Vec<String> = weights.iter().map(|w| format!("{w:.6}")).collect();
    s.push_str(&format!(
        "model {model_id}\nsource {source}\nweights {}\nbias {bias:.6}\n",
        w.join(" ")
    ));
    s
}

/// The fields of a fusion's text form.
struct Fields {
    model: String,
    source: String,
    weights: Vec<f64>,
    bias: f64,
    cascade_margin: Option<f32>,
}

impl Fields {
    fn parse(text: &str) -> Result<Fields, Error> {
        let (mut model, mut source, mut weights, mut bias) = (None, String::new(), None, None);
        let mut cascade_margin = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once(' ').ok_or_else(|| bad(line))?;
            let num = |s: &str| s.parse::<f64>().map_err(|_| bad(s));
            match k {
                "model" => model = Some(v.to_string()),
                "source" => source = v.to_string(),
                "weights" => {
                    weights = Some(
                        v.split_whitespace()
                            .map(num)
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                }
                "bias" => bias = Some(num(v)?),
                "cascade_margin" => cascade_margin = Some(num(v)? as f32),
                _ => return Err(bad(k)),
            }
        }
        let weights = weights.ok_or_else(|| bad("no weights line"))?;
        if weights.is_empty() {
            return Err(bad("no weights"));
        }
        Ok(Fields {
            model: model.ok_or_else(|| bad("no model line"))?,
            source,
            weights,
            bias: bias.ok_or_else(|| bad("no bias line"))?,
            cascade_margin,
        })
    }
}

/// A template that carries both embeddings of one face, made under the fused
/// model id: the two unit vectors side by side (stored normalised together,
/// so each half is scaled by 1/√2; [`split_pair`] restores them). Sealed like
/// any template, so the AAD binds the fused model id.
pub fn pair_template(
    person: PersonId,
    scenario: ScenarioId,
    fused_model_id: &str,
    first: &[f32],
    second: &[f32],
    encoding: Encoding,
) -> Result<Template, Error> {
    crate::fused::parts_template(person, scenario, fused_model_id, &[first, second], encoding)
}

/// The two unit embeddings of a pair template's vector (first `first_dim` values, then the rest).
pub fn split_pair(v: &[f32], first_dim: usize) -> Result<(Vec<f32>, Vec<f32>), Error> {
    if first_dim == 0 || first_dim >= v.len() {
        return Err(Error::DimensionMismatch {
            expected: first_dim + 1,
            got: v.len(),
        });
    }
    let mut parts = crate::fused::split_parts(v, &[first_dim, v.len() - first_dim])?;
    let second = std::mem::take(&mut *parts[1]);
    let first = std::mem::take(&mut *parts[0]);
    Ok((first, second))
}

impl Fusion {
    /// The fused score of two pair vectors (see [`pair_template`]).
    pub fn score_pairs(&self, a: &[f32], b: &[f32], first_dim: usize) -> Result<f32, Error> {
        if a.len() != b.len() {
            return Err(Error::DimensionMismatch {
                expected: a.len(),
                got: b.len(),
            });
        }
        let (a1, a2) = split_pair(a, first_dim)?;
        let (b1, b2) = split_pair(b, first_dim)?;
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        Ok(self.score(dot(&a1, &b1), dot(&a2, &b2)))
    }
}

/// A logistic fusion of any number of scores: `fused = Σ wᵢ·sᵢ + b`, the
/// log-odds that a pair is the same person (the generalisation of
/// [`Fusion`] to three models; fitted like it, on calibration pairs only).
#[derive(Clone, Debug, PartialEq)]
pub struct FusionN {
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl FusionN {
    /// The fused score of one pair's scores (one per weight).
    pub fn score(&self, scores: &[f32]) -> f32 {
        self.score_of(scores.iter().copied())
    }

    /// [`FusionN::score`] of scores given one by one (no buffer).
    pub fn score_of(&self, scores: impl Iterator<Item = f32>) -> f32 {
        (self
            .weights
            .iter()
            .zip(scores)
            .map(|(w, s)| w * s as f64)
            .sum::<f64>()
            + self.bias) as f32
    }

    /// Newton's method on the logistic likelihood with a light ridge, like
    /// [`Fusion::fit`]. `pairs`: each pair's scores (all of one length) and
    /// whether it is a genuine pair.
    #[allow(clippy::needless_range_loop)]
    pub fn fit(pairs: &[(Vec<f32>, bool)]) -> Result<FusionN, Error> {
        let same = pairs.iter().filter(|p| p.1).count();
        if same == 0 || same == pairs.len() {
            return Err(Error::Calibration(
                "fusion needs both genuine and impostor pairs".into(),
            ));
        }
        let k = pairs[0].0.len();
        if pairs.iter().any(|p| p.0.len() != k) {
            return Err(Error::Calibration(
                "pairs with different score counts".into(),
            ));
        }
        let n = k + 1;
        let mut beta = vec![0f64; n];
        let ridge = 1e-3;
        for _ in 0..100 {
            let mut g = vec![0f64; n];
            let mut h = vec![vec![0f64; n]; n];
            for (sc, y) in pairs {
                let x: Vec<f64> = sc.iter().map(|&v| v as f64).chain([1.0]).collect();
                let z: f64 = beta.iter().zip(&x).map(|(b, x)| b * x).sum();
                let p = 1.0 / (1.0 + (-z).exp());
                let r = p - if *y { 1.0 } else { 0.0 };
                let w = (p * (1.0 - p)).max(1e-12);
                for i in 0..n {
                    g[i] += r * x[i];
                    for j in 0..n {
                        h[i][j] += w * x[i] * x[j];
                    }
                }
            }
            for i in 0..k {
                g[i] += ridge * beta[i];
                h[i][i] += ridge;
            }
            let step = solve(h, g).ok_or_else(|| Error::Calibration("singular fit".into()))?;
            for i in 0..n {
                beta[i] -= step[i];
            }
            if step.iter().map(|s| s.abs()).fold(0.0, f64::max) < 1e-10 {
                break;
            }
        }
        let bias = beta.pop().expect("the bias");
        Ok(FusionN {
            weights: beta,
            bias,
        })
    }
}

impl FusionN {
    /// The text form (`data/fusion3.txt`): `model`, `source`, `weights w1 … wk`, `bias`.
    pub fn to_text(&self, model_id: &str, source: &str, comment: &str) -> String {
        text(comment, model_id, source, &self.weights, self.bias)
    }

    /// The embedded three-model fusion (first, second, third cosine) and its model id.
    pub fn builtin3() -> Result<(String, FusionN), Error> {
        FusionN::parse(BUILTIN_FUSION3)
    }

    /// Reads the text form: the model id and the fusion (no cascade
    /// margin: the cascade of several models is decided elsewhere).
    pub fn parse(text: &str) -> Result<(String, FusionN), Error> {
        let f = Fields::parse(text)?;
        if f.cascade_margin.is_some() {
            return Err(bad("cascade_margin"));
        }
        Ok((
            f.model,
            FusionN {
                weights: f.weights,
                bias: f.bias,
            },
        ))
    }
}

/// Solves a square linear system by Gaussian elimination with partial pivoting.
#[allow(clippy::needless_range_loop)]
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() < 1e-15 {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let f = a[r][c] / a[c][c];
            for k in c..n {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0f64; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_score_fit_matches_the_two_score_fit_and_ignores_noise() {
        let mut two = Vec::new();
        let mut three = Vec::new();
        for i in 0..400 {
            let same = i % 2 == 0;
            let a = if same { 0.6 } else { 0.1 } + ((i * 37 % 100) as f32 - 50.0) / 180.0;
            let b = if same { 0.9 } else { 0.8 } + ((i * 53 % 100) as f32 - 50.0) / 900.0;
            let noise = ((i * 71 % 100) as f32 - 50.0) / 100.0;
            two.push((a, b, same));
            three.push((vec![a, b, noise], same));
        }
        let f2 = Fusion::fit("x", &two, "test").unwrap();
        let f3 = FusionN::fit(&three).unwrap();
        assert!((f2.weights[0] - f3.weights[0]).abs() < 0.2 * f2.weights[0].abs());
        assert!(f3.weights[2].abs() < 0.2 * f3.weights[0].abs(), "{f3:?}");
        let only2 = FusionN::fit(
            &two.iter()
                .map(|&(a, b, s)| (vec![a, b], s))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for (w, v) in only2.weights.iter().zip(f2.weights) {
            assert!((w - v).abs() < 1e-6, "{only2:?} vs {f2:?}");
        }
        assert!(FusionN::fit(&[(vec![0.5], true)]).is_err());
    }

    #[test]
    fn fit_finds_the_more_informative_score_and_round_trips() {
        // Score 1 separates the classes, score 2 is noise.
        let mut pairs = Vec::new();
        for i in 0..400 {
            let noise = ((i * 37) % 100) as f32 / 100.0;
            let jitter = ((i * 53) % 100) as f32 / 400.0;
            pairs.push((0.6 + jitter, noise, true));
            pairs.push((0.35 + jitter, 1.0 - noise, false));
        }
        let f = Fusion::fit("a+b", &pairs, "test").unwrap();
        assert!(f.weights[0] > 5.0 * f.weights[1].abs(), "{f:?}");
        assert!(f.score(0.9, 0.5) > 0.0 && f.score(0.2, 0.5) < 0.0, "{f:?}");
        let back = Fusion::parse(&f.to_text("comment")).unwrap();
        assert_eq!(back.model_id, "a+b");
        assert!((back.weights[0] - f.weights[0]).abs() < 1e-5);
        assert!(Fusion::fit("x", &[(0.1, 0.1, true)], "").is_err());
        assert!(f.needs_second(0.9, 0.3), "no margin: always");
        let g = Fusion {
            cascade_margin: Some(0.05),
            ..f
        };
        let back = Fusion::parse(&g.to_text("")).unwrap();
        assert_eq!(back.cascade_margin, Some(0.05));
        assert!(back.needs_second(0.32, 0.3) && !back.needs_second(0.4, 0.3));
    }

    #[test]
    fn a_pair_template_seals_under_the_fused_id_and_scores_like_its_halves() {
        use crate::{Kek, Keyring};
        let f = Fusion::builtin().unwrap();
        let (p, s) = (PersonId::new(), ScenarioId::new());
        let v = |seed: usize, n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i + seed) * 7919) % 101) as f32 - 50.0)
                .collect()
        };
        let (a1, a2, b1, b2) = (v(1, 512), v(2, 128), v(3, 512), v(4, 128));
        let ta = pair_template(p, s, &f.model_id, &a1, &a2, Encoding::F32).unwrap();
        let tb = pair_template(p, s, &f.model_id, &b1, &b2, Encoding::F32).unwrap();
        let ring = Keyring::new(Kek::generate());
        ring.data_key(s);
        let sealed = ring.seal(&ta).unwrap();
        assert_eq!(sealed.model_id(), f.model_id);
        assert_eq!(sealed.dim(), 640);
        let back = ring.open(&sealed, ta.id, p, s).unwrap();
        let cos = |x: &[f32], y: &[f32]| {
            let d: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            d / (n(x) * n(y))
        };
        let want = f.score(cos(&a1, &b1), cos(&a2, &b2));
        let got = f
            .score_pairs(&back.vector.to_f32(), &tb.vector.to_f32(), 512)
            .unwrap();
        assert!((want - got).abs() < 1e-3, "{want} vs {got}");
        assert!(split_pair(&[1.0; 4], 4).is_err());
    }

    #[test]
    fn fused_calibration_is_embedded_and_its_tail_is_not_capped_at_one() {
        let f = Fusion::builtin().unwrap();
        let c = crate::Calibration::builtin_for(&f.model_id).unwrap();
        assert_eq!(c.model_id(), f.model_id);
        assert!(c.threshold(1e-3) < c.threshold(1e-5));
        assert!(c.threshold(1e-8) >= c.threshold(1e-5));
        assert!(c.threshold(1e-8) > 1.0, "log-odds are not cosines");
        assert!(crate::Calibration::builtin_for("no-such-model").is_err());
    }

    #[test]
    fn builtin_three_model_fusion_round_trips_and_has_its_calibration() {
        let (id, f) = FusionN::builtin3().unwrap();
        assert_eq!(f.weights.len(), 3);
        // Every model's cosine raises the log-odds of "same person".
        assert!(f.weights.iter().all(|w| *w > 0.0), "{:?}", f.weights);
        let text = f.to_text(&id, "test", "a comment");
        assert_eq!(FusionN::parse(&text).unwrap(), (id.clone(), f.clone()));
        let cal = crate::Calibration::builtin_for(&id).unwrap();
        assert!(cal.threshold(1e-5) > cal.threshold(1e-4));
        assert!(cal.threshold(1e-4) > cal.threshold(1e-3));
        // A pair all three models call near-identical is far above the 1e-5 threshold;
        // one they call unrelated is far below the 1e-3 one.
        assert!(f.score(&[0.9, 0.99, 0.9]) > cal.threshold(1e-5));
        assert!(f.score(&[0.0, 0.8, 0.1]) < cal.threshold(1e-3));
        assert!(FusionN::parse("model x\nweights\nbias 1").is_err());
        assert!(FusionN::parse("weights 1 2\nbias 1").is_err());
    }

    #[test]
    fn builtin_fusion_parses_and_weighs_both_models() {
        let f = Fusion::builtin().unwrap();
        assert!(f.weights[0] > 0.0 && f.weights[1] > 0.0, "{f:?}");
    }

    /// The two fusions share one text form: the embedded files render back
    /// line for line (comments aside), and a fusion of any weights survives
    /// its text in both forms; a cascade margin is refused by the n-model
    /// form, and a two-model fusion needs exactly two weights.
    #[test]
    fn both_fusions_share_one_text_form() {
        let body = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        let f = Fusion::builtin().unwrap();
        assert_eq!(body(&f.to_text("")), body(BUILTIN_FUSION));
        let (id, g) = FusionN::builtin3().unwrap();
        let source = BUILTIN_FUSION3
            .lines()
            .find_map(|l| l.strip_prefix("source "))
            .unwrap();
        assert_eq!(body(&g.to_text(&id, source, "")), body(BUILTIN_FUSION3));
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) * 20.0 - 10.0
        };
        for _ in 0..200 {
            let f = Fusion {
                model_id: "a+b".into(),
                weights: [next(), next()],
                bias: next(),
                cascade_margin: None,
                source: "src".into(),
            };
            let back = Fusion::parse(&f.to_text("c")).unwrap();
            assert!((back.weights[0] - f.weights[0]).abs() < 1e-6);
            assert!((back.weights[1] - f.weights[1]).abs() < 1e-6);
            assert!((back.bias - f.bias).abs() < 1e-6);
            let (id, n) = FusionN::parse(&f.to_text("c")).unwrap();
            assert_eq!(id, "a+b");
            assert_eq!(n.weights, back.weights.to_vec());
            let three = FusionN {
                weights: vec![next(), next(), next()],
                bias: next(),
            };
            let text = three.to_text("m", "s", "");
            let (_, again) = FusionN::parse(&text).unwrap();
            assert_eq!(again.to_text("m", "s", ""), text);
            assert!(
                Fusion::parse(&text).is_err(),
                "three weights are not a pair"
            );
        }
        let with_margin = Fusion {
            cascade_margin: Some(0.05),
            ..Fusion::builtin().unwrap()
        };
        assert!(FusionN::parse(&with_margin.to_text("")).is_err());
        assert_eq!(
            Fusion::parse(&with_margin.to_text(""))
                .unwrap()
                .cascade_margin,
            Some(0.05)
        );
    }
}
