//! Score thresholds set as a false-match rate (FMR), from a measured impostor score table.
//!
//! The table is a data file embedded in the crate (`data/calibration.txt`), written by
//! `facegate bench calibrate` (its header holds the exact command). It lists, for FMRs
//! from 10⁻¹ down to about ten impostor pairs' worth, the cosine score that impostor
//! pairs exceed with that frequency. Below the table, a Gaussian fit of the upper tail
//! extrapolates (and never goes below the table's last threshold).
//!
//! A comparison is a match when `score > threshold(fmr)`. For identification against
//! `n` templates, the per-comparison FMR that keeps the false-positive identification
//! rate at `fpir` is `1 − (1 − fpir)^(1/n)` (≈ fpir / n): the threshold rises with the
//! gallery size.

use crate::Error;

/// The embedded impostor table for the default embedding model.
pub const BUILTIN_TABLE: &str = include_str!("../data/calibration.txt");

/// The embedded impostor table of the second model's cosine scores.
pub const SECOND_TABLE: &str = include_str!("../data/calibration-second.txt");

/// The embedded impostor table of the fused score (see [`crate::Fusion`]).
pub const FUSED_TABLE: &str = include_str!("../data/calibration-fused.txt");

/// The embedded impostor table of the three-model fused score (see [`crate::FusionN`]).
pub const FUSED3_TABLE: &str = include_str!("../data/calibration-fused3.txt");

/// Thresholds for target false-match rates, for one embedding model.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    model_id: String,
    pairs: u64,
    /// (fmr, threshold), fmr decreasing, threshold non-decreasing.
    points: Vec<(f64, f32)>,
    tail_mu: f64,
    tail_sigma: f64,
    source: String,
}

impl Calibration {
    /// The calibration embedded in this build (for the model named in its header).
    pub fn builtin() -> Result<Self, Error> {
        Self::parse(BUILTIN_TABLE)
    }

    /// The embedded calibration for a model id (the first model, the second,
    /// the fused pair, or the three-model fusion).
    pub fn builtin_for(model_id: &str) -> Result<Self, Error> {
        for table in [BUILTIN_TABLE, SECOND_TABLE, FUSED_TABLE, FUSED3_TABLE] {
            let c = Self::parse(table)?;
            if c.model_id == model_id {
                return Ok(c);
            }
        }
        Err(Error::Calibration(format!(
            "no embedded calibration for model {model_id}"
        )))
    }

    /// The embedding model this calibration belongs to.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Number of impostor comparisons it was measured on.
    pub fn impostor_pairs(&self) -> u64 {
        self.pairs
    }

    /// Lowest FMR measured directly (below it the tail fit is used).
    pub fn min_measured_fmr(&self) -> f64 {
        self.points.last().map(|p| p.0).unwrap_or(1.0)
    }

    /// The command that regenerates the table.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Similarity threshold for a per-comparison false-match rate (e.g. 1e-3, 1e-4, 1e-5).
    pub fn threshold(&self, fmr: f64) -> f32 {
        let fmr = fmr.clamp(1e-300, 1.0);
        let first = self.points[0];
        if fmr >= first.0 {
            return first.1;
        }
        let last = *self.points.last().unwrap();
        if fmr < last.0 {
            let z = probit(1.0 - fmr.min(0.5)).max(probit_upper(fmr));
            let t = (self.tail_mu + self.tail_sigma * z) as f32;
            // A cosine table never extrapolates past 1; a fused (log-odds) one has no cap.
            let cap = if last.1 <= 1.0 { 1.0 } else { f32::INFINITY };
            return t.max(last.1).min(cap);
        }
        let lf = fmr.log10();
        for w in self.points.windows(2) {
            let (f0, t0) = w[0];
            let (f1, t1) = w[1];
            if fmr <= f0 && fmr >= f1 {
                let (l0, l1) = (f0.log10(), f1.log10());
                let a = if l0 == l1 { 0.0 } else { (lf - l0) / (l1 - l0) };
                return t0 + (t1 - t0) * a as f32;
            }
        }
        last.1
    }

    /// Per-comparison FMR that keeps the false-positive identification rate at `fpir`
    /// against `n` comparisons: `1 − (1 − fpir)^(1/n)`.
    pub fn fmr_for_fpir(fpir: f64, n: usize) -> f64 {
        let n = n.max(1) as f64;
        -((-fpir.clamp(0.0, 1.0)).ln_1p() / n).exp_m1()
    }

    /// Threshold for identification at `fpir` against a gallery of `n` templates.
    pub fn identification_threshold(&self, fpir: f64, n: usize) -> f32 {
        self.threshold(Self::fmr_for_fpir(fpir, n))
    }

    /// Estimated FMR of a score (the inverse of [`Calibration::threshold`]).
    pub fn fmr_at(&self, score: f32) -> f64 {
        if score <= self.points[0].1 {
            return self.points[0].0;
        }
        for w in self.points.windows(2) {
            let (f0, t0) = w[0];
            let (f1, t1) = w[1];
            if score > t0 && score <= t1 {
                if t1 == t0 {
                    return f1;
                }
                let a = ((score - t0) / (t1 - t0)) as f64;
                return 10f64.powf(f0.log10() + a * (f1.log10() - f0.log10()));
            }
        }
        let z = (score as f64 - self.tail_mu) / self.tail_sigma.max(1e-9);
        upper_tail(z).min(self.min_measured_fmr())
    }

    /// Builds a calibration from impostor scores (e.g. cosine scores of different-person
    /// pairs). `source` records how to regenerate them.
    pub fn from_impostor_scores(
        model_id: &str,
        scores: &mut [f32],
        source: &str,
    ) -> Result<Self, Error> {
        if scores.len() < 1000 {
            return Err(Error::Calibration(format!(
                "need at least 1000 impostor scores, got {}",
                scores.len()
            )));
        }
        if scores.iter().any(|s| !s.is_finite()) {
            return Err(Error::Calibration("impostor scores must be finite".into()));
        }
        scores.sort_unstable_by(|a, b| b.total_cmp(a)); // descending
        let n = scores.len() as f64;
        let min_fmr = 10.0 / n;
        let mut points = Vec::new();
        let mut e = 1.0f64; // fmr = 10^-e, step 0.1 decade
        loop {
            let fmr = 10f64.powf(-e);
            if fmr < min_fmr {
                break;
            }
            // accept iff score > t: at most floor(fmr·n) impostors do.
            let k = (fmr * n).floor() as usize;
            let t = scores[k.min(scores.len() - 1)];
            let t = points.last().map_or(t, |&(_, p): &(f64, f32)| t.max(p));
            points.push((fmr, t));
            e = ((e + 0.1) * 10.0).round() / 10.0;
        }
        // Gaussian tail fit: t = mu + sigma·z(1−fmr) over fmr in [min_fmr, 1e-2].
        let fit: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.0 <= 1e-2 + 1e-12)
            .map(|&(f, t)| (probit_upper(f), t as f64))
            .collect();
        let (mu, sigma) = if fit.len() >= 3 {
            let m = fit.len() as f64;
            let mz = fit.iter().map(|p| p.0).sum::<f64>() / m;
            let mt = fit.iter().map(|p| p.1).sum::<f64>() / m;
            let sxy = fit.iter().map(|p| (p.0 - mz) * (p.1 - mt)).sum::<f64>();
            let sxx = fit.iter().map(|p| (p.0 - mz).powi(2)).sum::<f64>();
            let s = if sxx > 0.0 { sxy / sxx } else { 0.0 };
            (mt - s * mz, s)
        } else {
            let m = scores.iter().map(|&s| s as f64).sum::<f64>() / n;
            let v = scores.iter().map(|&s| (s as f64 - m).powi(2)).sum::<f64>() / n;
            (m, v.sqrt())
        };
        Ok(Calibration {
            model_id: model_id.to_string(),
            pairs: scores.len() as u64,
            points,
            tail_mu: mu,
            tail_sigma: sigma,
            source: source.to_string(),
        })
    }

    /// The data-file form (what [`Calibration::parse`] reads); `header` lines are added as
    /// `#` comments.
    pub fn to_table(&self, header: &[String]) -> String {
        let mut s = String::new();
        s.push_str("# facegate impostor score table (scores as described below)\n");
        for h in header {
            s.push_str(&format!("# {h}\n"));
        }
        s.push_str("# A comparison matches when score > threshold(fmr). Lines: fmr threshold.\n");
        s.push_str(&format!("model {}\n", self.model_id));
        s.push_str(&format!("source {}\n", self.source));
        s.push_str(&format!("pairs {}\n", self.pairs));
        s.push_str(&format!(
            "tail {:.6} {:.6}\n",
            self.tail_mu, self.tail_sigma
        ));
        for (f, t) in &self.points {
            s.push_str(&format!("{f:.3e} {t:.6}\n"));
        }
        s
    }

    /// Parses the data-file form.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |m: String| Error::Calibration(m);
        let mut c = Calibration {
            model_id: String::new(),
            pairs: 0,
            points: vec![],
            tail_mu: 0.0,
            tail_sigma: 0.0,
            source: String::new(),
        };
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            let num = |s: &str| -> Result<f64, Error> {
                s.parse::<f64>()
                    .map_err(|_| bad(format!("line {}: bad number {s:?}", no + 1)))
            };
            match key {
                "model" => c.model_id = rest.to_string(),
                "source" => c.source = rest.to_string(),
                "pairs" => c.pairs = num(rest)? as u64,
                "tail" => {
                    let v: Vec<&str> = rest.split_whitespace().collect();
                    if v.len() != 2 {
                        return Err(bad(format!("line {}: tail needs mu sigma", no + 1)));
                    }
                    c.tail_mu = num(v[0])?;
                    c.tail_sigma = num(v[1])?;
                }
                _ => {
                    let f = num(key)?;
                    let t = num(rest)? as f32;
                    if !(f > 0.0 && f <= 1.0) {
                        return Err(bad(format!("line {}: fmr {f} not in (0,1]", no + 1)));
                    }
                    if let Some(&(pf, pt)) = c.points.last() {
                        if f >= pf || t < pt {
                            return Err(bad(format!(
                                "line {}: fmr must decrease and threshold not decrease",
                                no + 1
                            )));
                        }
                    }
                    c.points.push((f, t));
                }
            }
        }
        if c.model_id.is_empty() || c.points.len() < 2 {
            return Err(bad(
                "calibration table is empty: run `facegate bench calibrate` to generate it".into(),
            ));
        }
        Ok(c)
    }
}

/// z such that P(Z > z) = p, accurate also for tiny p.
fn probit_upper(p: f64) -> f64 {
    -probit(p)
}

fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    // Numerical Recipes erfcc (fractional error < 1.2e-7).
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Inverse standard normal CDF (Acklam, relative error < 1.2e-9).
#[allow(clippy::excessive_precision)]
fn probit(p: f64) -> f64 {
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr_free::normal;

    mod rand_distr_free {
        use rand::Rng;
        pub fn normal(rng: &mut impl Rng) -> f64 {
            // Box–Muller
            let u1: f64 = rng.gen_range(1e-12..1.0);
            let u2: f64 = rng.gen();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    #[test]
    fn thresholds_follow_a_known_distribution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut s: Vec<f32> = (0..2_000_000)
            .map(|_| (0.05 + 0.1 * normal(&mut rng)) as f32)
            .collect();
        let c = Calibration::from_impostor_scores("m", &mut s, "test").unwrap();
        let c = Calibration::parse(&c.to_table(&["test".into()])).unwrap();
        for (fmr, z) in [
            (1e-3, 3.0902),
            (1e-4, 3.7190),
            (1e-5, 4.2649),
            (1e-7, 5.1993),
        ] {
            let want = 0.05 + 0.1 * z;
            let got = c.threshold(fmr) as f64;
            assert!((got - want).abs() < 0.02, "fmr {fmr}: {got} vs {want}");
        }
        assert!(c.threshold(1e-5) > c.threshold(1e-4));
        let f = Calibration::fmr_for_fpir(0.01, 1000);
        assert!((f - 1.005e-5).abs() < 1e-7, "{f}");
        let back = c.fmr_at(c.threshold(1e-4));
        assert!((back.log10() + 4.0).abs() < 0.1, "{back}");
    }

    #[test]
    fn builtin_table_is_the_measured_lfw_one() {
        let c = Calibration::builtin().expect("data/calibration.txt parses");
        assert!(c.model_id().starts_with("faceplugin-fr_feature"));
        assert!(c.impostor_pairs() > 1_000_000, "{}", c.impostor_pairs());
        assert!(c.source().starts_with("facegate bench calibrate"));
        let (a, b, d) = (c.threshold(1e-3), c.threshold(1e-4), c.threshold(1e-5));
        assert!(a < b && b < d, "{a} {b} {d}");
        // Below the measured range the tail fit keeps rising.
        assert!(c.threshold(1e-7) > c.threshold(c.min_measured_fmr()));
    }
}
