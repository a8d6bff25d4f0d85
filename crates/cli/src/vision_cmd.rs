//! `facegate` subcommands for the face engine: `detect`, `compare`,
//! `bench lfw` and `bench speed`.

pub(crate) mod lfw;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use facegate_vision::{compare, compare_second, compare_third, Engine, EngineOptions, Face};
use indicatif::ProgressBar;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Find faces in images and print boxes, landmarks, quality and liveness.
    Detect {
        /// Image files (JPEG, PNG, WebP).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Also scan 2×2 tiles (group photos with small or cut-off faces).
        #[arg(long)]
        tiles: bool,
        /// Print one JSON object per image instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compare the most prominent face of two images.
    Compare {
        a: PathBuf,
        b: PathBuf,
        /// Similarity at or above which the faces are called the same person.
        #[arg(long, default_value_t = facegate_vision::DEFAULT_THRESHOLD)]
        threshold: f32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Face verification accuracy on LFW pair files.
    Lfw {
        /// Image root (`Name/Name_0001.jpg`).
        #[arg(long)]
        images: PathBuf,
        /// Pairs to report on (relative names resolve against --images).
        #[arg(long)]
        pairs: PathBuf,
        /// Pairs to choose the threshold on; without it, 10-fold cross-validation on --pairs.
        #[arg(long)]
        calibrate: Option<PathBuf>,
        /// ONNX Runtime threads per model call.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Images processed at once (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Only the first model (no second embedding, no fusion).
        #[arg(long)]
        first_only: bool,
        /// Also the third model (MobileFaceNet): its row, and the fusions of
        /// first + third and of all three, fitted on --calibrate.
        #[arg(long)]
        third: bool,
        /// Write every pair's cosine scores (set, same, first, second,
        /// third) to this file, for offline analysis.
        #[arg(long)]
        scores_out: Option<PathBuf>,
        /// Write the fusion fitted on --calibrate to this file (the crate's
        /// `crates/gallery/data/fusion.txt`).
        #[arg(long)]
        write_fusion: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Per-stage and end-to-end timings (medians).
    Speed {
        /// Images to time (default: the face fixtures).
        images: Vec<PathBuf>,
        /// ONNX Runtime threads per model call.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Passes over the images.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        /// Embedding models per face: `first` (the default pipeline) or
        /// `fused3` (first, dlib and MobileFaceNet on every face, as
        /// enrolment and the fused 1:N re-rank need them).
        #[arg(long, default_value = "first", value_parser = ["first", "fused3"])]
        models: String,
        /// Write each face's embeddings (JSON lines: image, face, box, first,
        /// second, third) of the fixtures to this file, so that a peer can
        /// check it computes the same vectors.
        #[arg(long)]
        embeddings_out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Write every model the engine loads as a plain ONNX file (the shipped
    /// `fr_*.onnx` as they are, the dlib and MobileFaceNet graphs as built
    /// from their published weights, before facegate's load-time rewrites),
    /// for a peer to run the very same networks.
    ExportModels {
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Detect {
            images,
            tiles,
            json,
        } => detect(&images, tiles, json),
        Cmd::Compare {
            a,
            b,
            threshold,
            json,
        } => compare_cmd(&a, &b, threshold, json),
    }
}

pub fn bench(b: Bench) -> Result<()> {
    match b {
        Bench::Lfw {
            images,
            pairs,
            calibrate,
            threads,
            jobs,
            first_only,
            third,
            scores_out,
            write_fusion,
            json,
        } => bench_lfw(
            &LfwArgs {
                images,
                pairs,
                calibrate,
                threads,
                jobs,
                first_only,
                third,
                scores_out,
                write_fusion,
            },
            json,
        ),
        Bench::Speed {
            images,
            threads,
            iterations,
            models,
            embeddings_out,
            json,
        } => bench_speed(&SpeedArgs {
            images,
            threads,
            iterations,
            fused3: models == "fused3",
            embeddings_out,
            json,
        }),
        Bench::ExportModels { out, json } => export_models(&out, json),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn detect(images: &[PathBuf], tiles: bool, json: bool) -> Result<()> {
    let engine = Engine::new(EngineOptions {
        detect_tiles: tiles,
        ..crate::engine_options()
    })?;
    let mut failed = 0;
    for path in images {
        let result = read(path).and_then(|b| Ok(engine.analyze(&b)?));
        match result {
            Ok(faces) if json => {
                println!("{}", serde_json::json!({ "image": path, "faces": faces }));
            }
            Ok(faces) => {
                println!("{}: {} face(s)", path.display(), faces.len());
                for (i, f) in faces.iter().enumerate() {
                    print_face(i, f);
                }
            }
            Err(e) => {
                failed += 1;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "image": path, "error": format!("{e:#}") })
                    );
                } else {
                    eprintln!("{}: {e:#}", path.display());
                }
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} image(s) could not be analysed",
            images.len()
        );
    }
    Ok(())
}

fn print_face(i: usize, f: &Face) {
    let b = &f.bbox;
    let q = &f.quality;
    let opt = |v: Option<f32>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
    println!(
        "  #{i}: box ({:.0},{:.0})-({:.0},{:.0}) score {:.3} size {:.0}px sharpness {:.0} \
         recognisability {:.2} yaw {} pitch {} roll {} eyes open {}/{} liveness {}",
        b.x1,
        b.y1,
        b.x2,
        b.y2,
        f.det_score,
        q.face_px,
        q.sharpness,
        q.embedding_norm,
        opt(q.yaw, 1),
        opt(q.pitch, 1),
        opt(q.roll, 1),
        opt(q.left_eye_open, 2),
        opt(q.right_eye_open, 2),
        opt(f.liveness, 3),
    );
}

fn compare_cmd(a: &Path, b: &Path, threshold: f32, json: bool) -> Result<()> {
    let engine = Engine::new(EngineOptions {
        pose: false,
        eyes: false,
        liveness: false,
        ..crate::engine_options()
    })?;
    let ea = lfw::embed_main(&engine, a)?
        .with_context(|| format!("no face found in {}", a.display()))?;
    let eb = lfw::embed_main(&engine, b)?
        .with_context(|| format!("no face found in {}", b.display()))?;
    let sim = compare(&ea, &eb);
    let same = sim >= threshold;
    if json {
        println!(
            "{}",
            serde_json::json!({ "similarity": sim, "threshold": threshold, "same_person": same,
                "model_id": facegate_vision::MODEL_ID })
        );
    } else {
        println!(
            "similarity {sim:.4} (threshold {threshold:.3}): {}",
            if same {
                "same person"
            } else {
                "different people"
            }
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- bench lfw

/// Threshold maximising accuracy on `(score, same)` pairs. Several splits
/// usually tie; the middle one of the tied splits is taken (not the lowest or
/// highest, which hug one class).
fn best_threshold(scored: &[(f32, bool)]) -> f32 {
    let mut s: Vec<(f32, bool)> = scored.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Threshold below everything: all called same.
    let mut correct = s.iter().filter(|p| p.1).count();
    let mut best = correct;
    let mut ties = vec![s[0].0 - 1e-3];
    for i in 0..s.len() {
        // Move s[i] to the "different" side.
        if s[i].1 {
            correct -= 1;
        } else {
            correct += 1;
        }
        let next = if i + 1 < s.len() {
            s[i + 1].0
        } else {
            s[i].0 + 2e-3
        };
        if next > s[i].0 {
            let t = (s[i].0 + next) / 2.0;
            if correct > best {
                best = correct;
                ties = vec![t];
            } else if correct == best {
                ties.push(t);
            }
        }
    }
    ties[ties.len() / 2]
}

fn accuracy(scored: &[(f32, bool)], t: f32) -> f64 {
    scored.iter().filter(|(s, same)| (*s >= t) == *same).count() as f64 / scored.len() as f64
}

/// True accept rate at the lowest threshold whose false accept rate is ≤ `far`.
fn tar_at_far(scored: &[(f32, bool)], far: f64) -> f64 {
    let mut imp: Vec<f32> = scored.iter().filter(|p| !p.1).map(|p| p.0).collect();
    let gen: Vec<f32> = scored.iter().filter(|p| p.1).map(|p| p.0).collect();
    if imp.is_empty() || gen.is_empty() {
        return f64::NAN;
    }
    imp.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * imp.len() as f64).floor() as usize;
    // Accept strictly above the (allowed+1)-th highest impostor score.
    let t = imp[allowed.min(imp.len() - 1)];
    gen.iter().filter(|&&s| s > t).count() as f64 / gen.len() as f64
}

pub(crate) struct LfwArgs {
    images: PathBuf,
    pairs: PathBuf,
    calibrate: Option<PathBuf>,
    threads: usize,
    jobs: Option<usize>,
    first_only: bool,
    third: bool,
    scores_out: Option<PathBuf>,
    write_fusion: Option<PathBuf>,
}

/// One model's (or the fusion's) figures on the test pairs.
struct Row {
    name: &'static str,
    model_id: String,
    accuracy: f64,
    accuracy_std: f64,
    threshold: f32,
    tar2: f64,
    tar3: f64,
}

impl Row {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "model_id": self.model_id, "accuracy": self.accuracy, "accuracy_std": self.accuracy_std,
            "threshold": self.threshold, "tar_at_far_1e-2": self.tar2, "tar_at_far_1e-3": self.tar3,
        })
    }
}

/// Accuracy with the threshold from the calibration pairs, or by 10-fold
/// cross-validation on the test pairs without them; TAR at FAR on the test pairs.
fn evaluate(
    name: &'static str,
    model_id: &str,
    test: &[(f32, bool)],
    cal: Option<&[(f32, bool)]>,
) -> Row {
    let (accuracy, accuracy_std, threshold) = match cal {
        Some(cal) => {
            let t = best_threshold(cal);
            (accuracy(test, t), 0.0, t)
        }
        None => {
            let n = test.len();
            let mut accs = Vec::new();
            let mut ts = Vec::new();
            for k in 0..10 {
                let (lo, hi) = (k * n / 10, (k + 1) * n / 10);
                let train: Vec<(f32, bool)> =
                    test[..lo].iter().chain(&test[hi..]).copied().collect();
                let t = best_threshold(&train);
                accs.push(accuracy(&test[lo..hi], t));
                ts.push(t);
            }
            let m = accs.iter().sum::<f64>() / 10.0;
            let sd = (accs.iter().map(|a| (a - m).powi(2)).sum::<f64>() / 10.0).sqrt();
            (m, sd, ts.iter().sum::<f32>() / 10.0)
        }
    };
    Row {
        name,
        model_id: model_id.to_string(),
        accuracy,
        accuracy_std,
        threshold,
        tar2: tar_at_far(test, 1e-2),
        tar3: tar_at_far(test, 1e-3),
    }
}

/// A cascade: the first model decides alone unless its score is within
/// `margin` of its threshold; there the fused score decides.
struct Cascade {
    margin: f32,
    accuracy: f64,
    cal_accuracy: f64,
    /// Share of test pairs on which the second model had to run.
    second_share: f64,
}

/// The smallest margin (on the calibration pairs) at which the cascade is as
/// accurate there as the fusion everywhere, and its figures on the test pairs.
fn cascade_figures(
    cal: &[(f32, f32, bool)],
    test: &[(f32, f32, bool)],
    first: &Row,
    fused: &Row,
    fusion: &facegate_gallery::Fusion,
) -> Cascade {
    let with = |v: &[(f32, f32, bool)]| -> Vec<(f32, f32, bool)> {
        v.iter()
            .map(|&(x, y, s)| (x, fusion.score(x, y), s))
            .collect()
    };
    cascade_on(&with(cal), &with(test), first.threshold, fused.threshold)
}

/// [`cascade_figures`] on `(first score, fused score, same)` triples: the
/// other models run only when the first score is within the margin of
/// `t_first`, and there the fused score decides against `t_fused`.
fn cascade_on(
    cal: &[(f32, f32, bool)],
    test: &[(f32, f32, bool)],
    t_first: f32,
    t_fused: f32,
) -> Cascade {
    let decide = |m: f32, x: f32, f: f32| {
        if (x - t_first).abs() > m {
            (x >= t_first, false)
        } else {
            (f >= t_fused, true)
        }
    };
    let acc = |v: &[(f32, f32, bool)], m: f32| {
        v.iter()
            .filter(|&&(x, f, s)| decide(m, x, f).0 == s)
            .count() as f64
            / v.len() as f64
    };
    let full = acc(cal, 10.0);
    let margin = (0..=60)
        .map(|i| i as f32 * 0.005)
        .find(|&m| acc(cal, m) >= full)
        .unwrap_or(0.3);
    let second = test
        .iter()
        .filter(|&&(x, f, _)| decide(margin, x, f).1)
        .count();
    Cascade {
        margin,
        accuracy: acc(test, margin),
        cal_accuracy: acc(cal, margin),
        second_share: second as f64 / test.len() as f64,
    }
}

fn bench_lfw(a: &LfwArgs, json: bool) -> Result<()> {
    let (images, threads) = (a.images.as_path(), a.threads);
    let test = lfw::read_pairs(images, &a.pairs)?;
    let cal = a
        .calibrate
        .as_ref()
        .map(|c| lfw::read_pairs(images, c))
        .transpose()?;
    if a.write_fusion.is_some() && (cal.is_none() || a.first_only) {
        bail!("--write-fusion fits on --calibrate pairs and needs the second model");
    }
    let mut uniq: Vec<lfw::Img> = test
        .iter()
        .chain(cal.iter().flatten())
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect();
    uniq.sort();
    uniq.dedup();
    let engine = Engine::new(EngineOptions {
        intra_threads: threads,
        pose: false,
        eyes: false,
        liveness: false,
        second_embedding: !a.first_only,
        third_embedding: a.third && !a.first_only,
        ..crate::engine_options()
    })?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let start = Instant::now();
    let paths: Vec<PathBuf> = uniq.iter().map(|i| lfw::image_path(images, i)).collect();
    let emb: HashMap<&lfw::Img, Option<lfw::Embedded>> = uniq
        .iter()
        .zip(lfw::embed_all_both(&engine, &paths, jobs)?)
        .collect();
    let seconds = start.elapsed().as_secs_f64();
    let missed_images: Vec<&PathBuf> = uniq
        .iter()
        .zip(&paths)
        .filter(|(i, _)| emb[i].is_none())
        .map(|(_, p)| p)
        .collect();
    // (first, second) cosine scores; a missed face can only be called "different".
    let scores = |p: &lfw::Pair| match (&emb[&p.a], &emb[&p.b]) {
        (Some(x), Some(y)) => {
            let second = match (&x.second, &y.second) {
                (Some(s), Some(t)) => compare_second(s, t),
                _ => -1.0,
            };
            (compare(&x.first, &y.first), second)
        }
        _ => (-1.0, -1.0),
    };
    let test_s: Vec<(f32, f32, bool)> = test
        .iter()
        .map(|p| {
            let (x, y) = scores(p);
            (x, y, p.same())
        })
        .collect();
    let cal_s: Option<Vec<(f32, f32, bool)>> = cal.as_ref().map(|c| {
        c.iter()
            .map(|p| {
                let (x, y) = scores(p);
                (x, y, p.same())
            })
            .collect()
    });
    // The third model's cosine per pair, in the order of `test` / `cal`.
    let third_score = |p: &lfw::Pair| match (&emb[&p.a], &emb[&p.b]) {
        (Some(x), Some(y)) => match (&x.third, &y.third) {
            (Some(s), Some(t)) => compare_third(s, t),
            _ => -1.0,
        },
        _ => -1.0,
    };
    let test_3: Vec<f32> = test.iter().map(third_score).collect();
    let cal_3: Option<Vec<f32>> = cal.as_ref().map(|c| c.iter().map(third_score).collect());
    if let Some(path) = &a.scores_out {
        let mut out = String::from("# set same first second third\n");
        let sets = [("test", &test_s, &test_3)].into_iter().chain(
            cal_s
                .as_ref()
                .zip(cal_3.as_ref())
                .map(|(c, t)| ("calibrate", c, t)),
        );
        for (name, v, t) in sets {
            for (&(x, y, same), z) in v.iter().zip(t) {
                out.push_str(&format!("{name} {} {x} {y} {z}\n", u8::from(same)));
            }
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    let missed_pairs = test
        .iter()
        .filter(|p| emb[&p.a].is_none() || emb[&p.b].is_none())
        .count();
    let protocol = if cal.is_some() {
        "threshold from calibration pairs"
    } else {
        "10-fold cross-validation"
    };
    let pick = |v: &[(f32, f32, bool)], f: &dyn Fn(f32, f32) -> f32| -> Vec<(f32, bool)> {
        v.iter().map(|&(x, y, same)| (f(x, y), same)).collect()
    };
    let first = |x: f32, _: f32| x;
    let second = |_: f32, y: f32| y;
    let mut rows = vec![evaluate(
        "first",
        facegate_vision::MODEL_ID,
        &pick(&test_s, &first),
        cal_s.as_ref().map(|c| pick(c, &first)).as_deref(),
    )];
    let mut fusion_used = None;
    let mut fusions_n: Vec<(&str, facegate_gallery::FusionN)> = Vec::new();
    let mut cascade: Option<Cascade> = None;
    let mut cascade3: Option<Cascade> = None;
    if !a.first_only {
        rows.push(evaluate(
            "second",
            facegate_vision::SECOND_MODEL_ID,
            &pick(&test_s, &second),
            cal_s.as_ref().map(|c| pick(c, &second)).as_deref(),
        ));
        let fusion = match &cal_s {
            Some(c) => {
                let source = format!(
                    "facegate bench lfw --images <lfw-view1> --pairs {} --calibrate {} --write-fusion crates/gallery/data/fusion.txt",
                    a.pairs.display(),
                    a.calibrate.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                );
                facegate_gallery::Fusion::fit(facegate_vision::FUSED_MODEL_ID, c, &source)?
            }
            None => facegate_gallery::Fusion::builtin()?,
        };
        let fused = |x: f32, y: f32| fusion.score(x, y);
        rows.push(evaluate(
            "fused",
            facegate_vision::FUSED_MODEL_ID,
            &pick(&test_s, &fused),
            cal_s.as_ref().map(|c| pick(c, &fused)).as_deref(),
        ));
        if let Some(c) = &cal_s {
            cascade = Some(cascade_figures(c, &test_s, &rows[0], &rows[2], &fusion));
        }
        if a.third {
            rows.push(evaluate(
                "third",
                facegate_vision::THIRD_MODEL_ID,
                &test_s
                    .iter()
                    .zip(&test_3)
                    .map(|(&(_, _, same), &z)| (z, same))
                    .collect::<Vec<_>>(),
                cal_s
                    .as_ref()
                    .zip(cal_3.as_ref())
                    .map(|(c, t)| {
                        c.iter()
                            .zip(t)
                            .map(|(&(_, _, same), &z)| (z, same))
                            .collect::<Vec<_>>()
                    })
                    .as_deref(),
            ));
            if let (Some(c), Some(c3)) = (&cal_s, &cal_3) {
                // Score vectors: first + third, and all three.
                let with =
                    |v: &[(f32, f32, bool)], t: &[f32], all: bool| -> Vec<(Vec<f32>, bool)> {
                        v.iter()
                            .zip(t)
                            .map(|(&(x, y, same), &z)| {
                                (if all { vec![x, y, z] } else { vec![x, z] }, same)
                            })
                            .collect()
                    };
                for (name, all) in [("fused13", false), ("fused123", true)] {
                    let cal_v = with(c, c3, all);
                    let f = facegate_gallery::FusionN::fit(&cal_v)?;
                    let sc = |v: Vec<(Vec<f32>, bool)>| -> Vec<(f32, bool)> {
                        v.iter().map(|(s, same)| (f.score(s), *same)).collect()
                    };
                    let id = if all {
                        format!(
                            "{}+{}",
                            facegate_vision::FUSED_MODEL_ID,
                            facegate_vision::THIRD_MODEL_ID
                        )
                    } else {
                        format!(
                            "{}+{}",
                            facegate_vision::MODEL_ID,
                            facegate_vision::THIRD_MODEL_ID
                        )
                    };
                    let (test_f, cal_f) = (sc(with(&test_s, &test_3, all)), sc(cal_v));
                    let row = evaluate(name, &id, &test_f, Some(&cal_f));
                    if all {
                        let tri =
                            |v: &[(f32, f32, bool)], f: &[(f32, bool)]| -> Vec<(f32, f32, bool)> {
                                v.iter()
                                    .zip(f)
                                    .map(|(&(x, _, s), &(g, _))| (x, g, s))
                                    .collect()
                            };
                        cascade3 = Some(cascade_on(
                            &tri(c, &cal_f),
                            &tri(&test_s, &test_f),
                            rows[0].threshold,
                            row.threshold,
                        ));
                    }
                    rows.push(row);
                    fusions_n.push((name, f));
                }
            }
        }
        if let Some(path) = &a.write_fusion {
            let mut fusion = fusion.clone();
            fusion.cascade_margin = cascade.as_ref().map(|c| c.margin);
            let comment =
                format!(
                "facegate score fusion: fused = w1 * cosine(first) + w2 * cosine(second) + bias\n\
                 (log-odds of \"same person\", logistic fit on the calibration pairs only)\n\
                 regenerate: {}\n\
                 data: {} pairs of LFW View 1 {}",
                fusion.source,
                cal_s.as_ref().map_or(0, |c| c.len()),
                a.calibrate.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            );
            std::fs::write(path, fusion.to_text(&comment))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        fusion_used = Some(fusion);
    }
    if json {
        let models: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|r| (r.name.to_string(), r.json()))
            .collect();
        let f = &rows[rows.len() - 1];
        println!(
            "{}",
            serde_json::json!({
                "accuracy": f.accuracy, "accuracy_std": f.accuracy_std, "threshold": f.threshold,
                "protocol": protocol, "tar_at_far_1e-2": f.tar2, "tar_at_far_1e-3": f.tar3,
                "models": models,
                "fusion": fusion_used.as_ref().map(|f| serde_json::json!({"weights": f.weights, "bias": f.bias})),
                "fusions": fusions_n.iter().map(|(n, f)| ((*n).to_string(), serde_json::json!({"weights": f.weights, "bias": f.bias}))).collect::<serde_json::Map<_, _>>(),
                "cascade": cascade.as_ref().map(|c| serde_json::json!({
                    "margin": c.margin, "accuracy": c.accuracy, "second_runs": c.second_share,
                    "calibration_accuracy": c.cal_accuracy,
                })),
                "cascade123": cascade3.as_ref().map(|c| serde_json::json!({
                    "margin": c.margin, "accuracy": c.accuracy, "other_models_run": c.second_share,
                    "calibration_accuracy": c.cal_accuracy,
                })),
                "missed": missed_images.len(), "missed_pairs": missed_pairs,
                "pairs": test.len(), "calibration_pairs": cal.as_ref().map_or(0, |c| c.len()),
                "images": uniq.len(), "seconds": seconds, "model_id": f.model_id,
            })
        );
    } else {
        println!("pairs            {} ({protocol})", test.len());
        if let Some(c) = &cal {
            println!("calibration      {} pairs", c.len());
        }
        println!(
            "{:<8} {:>10} {:>10} {:>14} {:>14}",
            "model", "threshold", "accuracy", "TAR@FAR 1e-2", "TAR@FAR 1e-3"
        );
        for r in &rows {
            let acc = if r.accuracy_std > 0.0 {
                format!("{:.2} ± {:.2}", r.accuracy * 100.0, r.accuracy_std * 100.0)
            } else {
                format!("{:.2} %", r.accuracy * 100.0)
            };
            println!(
                "{:<8} {:>10.4} {:>10} {:>12.2} % {:>12.2} %",
                r.name,
                r.threshold,
                acc,
                r.tar2 * 100.0,
                r.tar3 * 100.0
            );
        }
        if let Some(f) = &fusion_used {
            println!(
                "fusion           {:.4} × first + {:.4} × second + {:.4}",
                f.weights[0], f.weights[1], f.bias
            );
        }
        for (name, f) in &fusions_n {
            let w: Vec<String> = f.weights.iter().map(|w| format!("{w:.4}")).collect();
            println!("{name:<16} weights {} bias {:.4}", w.join(" "), f.bias);
        }
        if let Some(c) = &cascade {
            println!(
                "cascade          second model only when the first is within ±{:.2} of its threshold: \
                 accuracy {:.2} %, second model on {:.1} % of pairs",
                c.margin,
                c.accuracy * 100.0,
                c.second_share * 100.0
            );
        }
        if let Some(c) = &cascade3 {
            println!(
                "cascade123       second and third models only when the first is within ±{:.3} of its threshold: \
                 accuracy {:.2} %, on {:.1} % of pairs",
                c.margin,
                c.accuracy * 100.0,
                c.second_share * 100.0
            );
        }
        println!(
            "missed faces     {} image(s), {missed_pairs} pair(s)",
            missed_images.len()
        );
        for p in &missed_images {
            println!("  no face: {}", p.display());
        }
        println!(
            "images           {} in {seconds:.1} s ({jobs} jobs × {threads} thread(s))",
            uniq.len()
        );
    }
    Ok(())
}

// -------------------------------------------------------------- bench speed

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// What `bench speed` measures.
struct SpeedArgs {
    images: Vec<PathBuf>,
    threads: usize,
    iterations: usize,
    /// All three embedding models on every face.
    fused3: bool,
    embeddings_out: Option<PathBuf>,
    json: bool,
}

fn export_models(out: &Path, json: bool) -> Result<()> {
    let written = facegate_vision::export_models(out)?;
    if json {
        println!("{}", serde_json::to_string(&written)?);
        return Ok(());
    }
    for m in &written {
        println!(
            "{:<48} {:>9} B  {:<7} from {}",
            m.file, m.bytes, m.origin, m.source
        );
    }
    println!(
        "written to {} (with models.json): the published networks as plain ONNX, \
         without facegate's load-time rewrites (subnormal flush, NCHWc)",
        out.display()
    );
    Ok(())
}

/// Writes each face's embeddings as JSON lines (fixtures only: a benchmark's
/// check that a peer computes the same vectors).
fn write_embeddings(
    engine: &Engine,
    images: &[PathBuf],
    bytes: &[Vec<u8>],
    out: &Path,
) -> Result<()> {
    let mut lines = String::new();
    for (p, b) in images.iter().zip(bytes) {
        for (i, f) in engine.analyze(b)?.iter().enumerate() {
            let v = |s: Option<&[f32]>| s.map(|s| s.to_vec());
            lines.push_str(&serde_json::to_string(&serde_json::json!({
                "image": p.file_name().map(|n| n.to_string_lossy().to_string()),
                "face": i,
                "bbox": [f.bbox.x1, f.bbox.y1, f.bbox.x2, f.bbox.y2],
                "first": v(f.embedding.as_ref().map(|e| e.as_slice())),
                "second": v(f.second_embedding.as_ref().map(|e| e.as_slice())),
                "third": v(f.third_embedding.as_ref().map(|e| e.as_slice())),
            }))?);
            lines.push('\n');
        }
    }
    std::fs::write(out, lines).with_context(|| format!("cannot write {}", out.display()))
}

fn bench_speed(a: &SpeedArgs) -> Result<()> {
    let (threads, iterations, json) = (a.threads, a.iterations, a.json);
    let images = if a.images.is_empty() {
        [
            "obama.jpg",
            "obama2.jpg",
            "obama3.jpg",
            "biden.jpg",
            "astronaut.png",
            "obama_partial_face.jpg",
        ]
        .iter()
        .map(|n| facegate_assets::fixture(n).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?
    } else {
        a.images.clone()
    };
    let bytes: Vec<Vec<u8>> = images.iter().map(|p| read(p)).collect::<Result<_>>()?;
    let all = Engine::new(EngineOptions {
        intra_threads: threads,
        second_embedding: a.fused3,
        third_embedding: a.fused3,
        ..crate::engine_options()
    })?;
    let e2e = Engine::new(EngineOptions {
        intra_threads: threads,
        pose: false,
        eyes: false,
        try_rotations: false,
        second_embedding: a.fused3,
        third_embedding: a.fused3,
        ..crate::engine_options()
    })?;
    if let Some(out) = &a.embeddings_out {
        write_embeddings(&e2e, &images, &bytes, out)?;
    }
    let limits = facegate_vision::DecodeLimits::default();
    let names = [
        "decode",
        "detect",
        "landmarks",
        "align",
        "embed",
        "liveness",
        "pose",
        "eyes",
        "second_chip",
        "second_embed",
        "third_embed",
    ];
    let mut stages: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    // Warm-up (first runs allocate and pack weights).
    for b in &bytes {
        all.analyze(b)?;
        e2e.analyze(b)?;
    }
    let bar = ProgressBar::new((iterations * 2) as u64);
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for _ in 0..iterations {
        for b in &bytes {
            let t = Instant::now();
            let img = facegate_vision::decode(b, &limits)?;
            stages[0].push(ms(t));
            let t = Instant::now();
            let dets = all.detect(&img)?;
            stages[1].push(ms(t));
            for d in &dets {
                let t = Instant::now();
                let lm = all.landmarks(&img, &d.bbox)?;
                stages[2].push(ms(t));
                let t = Instant::now();
                let al = facegate_vision::align(&img, &facegate_vision::five_points(&lm));
                stages[3].push(ms(t));
                let t = Instant::now();
                all.embed(&al)?;
                stages[4].push(ms(t));
                let t = Instant::now();
                all.liveness(&img, &d.bbox)?;
                stages[5].push(ms(t));
                let t = Instant::now();
                all.pose(&img, &d.bbox)?;
                stages[6].push(ms(t));
                let t = Instant::now();
                all.eyes(&img, &lm)?;
                stages[7].push(ms(t));
                if a.fused3 {
                    let t = Instant::now();
                    let chip = facegate_vision::dlib_chip(&img, &lm);
                    stages[8].push(ms(t));
                    let t = Instant::now();
                    all.embed_second_chip(&chip)?;
                    stages[9].push(ms(t));
                    let t = Instant::now();
                    all.embed_third(&al)?;
                    stages[10].push(ms(t));
                }
            }
        }
        bar.inc(1);
    }
    // End to end: bytes → faces with embedding and liveness, per face.
    let mut per_face = Vec::new();
    let mut faces_total = 0usize;
    let total_start = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        let mut n = 0;
        for b in &bytes {
            n += e2e.analyze(b)?.len();
        }
        per_face.push(ms(t) / n.max(1) as f64);
        faces_total += n;
        bar.inc(1);
    }
    let total_ms = ms(total_start);
    // A six-frame active challenge (the first three images in turn: the
    // default fixtures' three photos of one person) through the least-work
    // capture path, against six full analyses.
    let frames: Vec<facegate_vision::RgbImage> = bytes
        .iter()
        .take(3)
        .cycle()
        .take(6)
        .map(|b| facegate_vision::decode(b, &limits))
        .collect::<Result<_, _>>()?;
    let (mut challenge, mut six_full) = (Vec::new(), Vec::new());
    let budget = facegate_vision::Budget::unlimited();
    let copts = facegate_vision::CaptureOptions::default();
    for _ in 0..iterations {
        let t = Instant::now();
        all.challenge(&frames, &copts, &budget)?;
        challenge.push(ms(t));
        let t = Instant::now();
        for f in &frames {
            all.analyze_image(f)?;
        }
        six_full.push(ms(t));
    }
    let challenge_ms = median(&mut challenge);
    let six_full_ms = median(&mut six_full);
    bar.finish_and_clear();
    let cpu = facegate_vision::CpuInfo::detect();
    let denormals = if !all.options().flush_denormals {
        "kept (FACEGATE_DENORMALS=keep: weights as shipped, FTZ/DAZ off)"
    } else {
        "flushed (subnormal weights set to 0 at load, FTZ/DAZ on every model call)"
    };
    let flushed = all.flushed_weights();
    let medians: Vec<(&str, f64)> = names
        .iter()
        .zip(stages.iter_mut())
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (*n, median(v)))
        .collect();
    let models = if a.fused3 {
        "fused3 (first, dlib, MobileFaceNet on every face)"
    } else {
        "first"
    };
    let e2e_min = per_face.iter().cloned().fold(f64::INFINITY, f64::min);
    let e2e_ms = median(&mut per_face);
    if json {
        let mut m = serde_json::Map::new();
        for (n, v) in &medians {
            m.insert(format!("{n}_ms"), serde_json::json!(v));
        }
        m.insert("end_to_end_ms_per_face".into(), serde_json::json!(e2e_ms));
        m.insert(
            "end_to_end_ms_per_face_min".into(),
            serde_json::json!(e2e_min),
        );
        m.insert(
            "faces_per_second".into(),
            serde_json::json!(faces_total as f64 / (total_ms / 1e3)),
        );
        m.insert(
            "challenge_6_frames_ms".into(),
            serde_json::json!(challenge_ms),
        );
        m.insert(
            "six_full_analyses_ms".into(),
            serde_json::json!(six_full_ms),
        );
        m.insert("cpu".into(), serde_json::json!(cpu));
        m.insert("denormals".into(), serde_json::json!(denormals));
        m.insert(
            "subnormal_weights_flushed".into(),
            serde_json::json!(flushed
                .iter()
                .map(|(n, c)| (n.to_string(), serde_json::json!(c)))
                .collect::<serde_json::Map<_, _>>()),
        );
        m.insert("models".into(), serde_json::json!(models));
        m.insert("threads".into(), serde_json::json!(threads));
        m.insert("images".into(), serde_json::json!(images.len()));
        m.insert("iterations".into(), serde_json::json!(iterations));
        println!("{}", serde_json::Value::Object(m));
    } else {
        println!("{cpu}");
        println!(
            "denormals: {denormals}; subnormal weights flushed: {}",
            flushed
                .iter()
                .map(|(n, c)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "{} image(s) × {iterations} iterations, {threads} ONNX Runtime thread(s), models: {models}",
            images.len()
        );
        for (n, v) in &medians {
            println!("  {n:<10} {v:8.2} ms (median)");
        }
        let embed = if a.fused3 {
            "embed ×3 (first, dlib chip + second, third)"
        } else {
            "embed"
        };
        println!("  end-to-end {e2e_ms:8.2} ms per face (decode → detect → landmarks → align → {embed} → liveness)");
        println!("             {e2e_min:8.2} ms per face (best pass)");
        println!(
            "             {:8.1} faces/s",
            faces_total as f64 / (total_ms / 1e3)
        );
        println!(
            "  challenge  {challenge_ms:8.2} ms for 6 frames (least-work capture path: pose and eyes on every frame, embedding on 2, liveness on 1)"
        );
        println!("             {six_full_ms:8.2} ms for 6 full analyses (the path it replaces)");
    }
    Ok(())
}
