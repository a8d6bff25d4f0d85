//! `facegate bench pad`: the passive liveness model as a presentation-attack
//! detector, stated as ISO/IEC 30107-3 asks: APCER (attack presentations
//! accepted, per attack type and the worst of them) and BPCER (bona fide
//! presentations rejected) at the operating threshold, and the thresholds
//! that meet a target BPCER and a target APCER.
//!
//! The folder holds `labels.csv` with at least the columns `file` and
//! `is_real` (1 live, 0 attack; or `label` = real/spoof), optionally
//! `attack_type` (print, replay, …), as `../shared/eval/antispoof` and
//! `../shared/eval/antispoof-frames` do. Each image's most prominent face is
//! taken; a face that fills the frame is counted as "step back", one smaller
//! than `--min-face-px` as "too small" and a frame without a face as "no
//! face": none of them is scored, as in the capture path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use facegate_vision::challenge::{framing, Framing};
use facegate_vision::{Engine, EngineOptions, LIVENESS_THRESHOLD};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Passive liveness (presentation attack detection): APCER and BPCER
    /// (ISO/IEC 30107-3) on a folder with labels.csv.
    Pad {
        /// Folder with labels.csv (file, is_real or label, attack_type).
        #[arg(long)]
        images: PathBuf,
        /// Operating threshold: P(live) at or above it is accepted.
        #[arg(long, default_value_t = LIVENESS_THRESHOLD)]
        threshold: f32,
        /// Report the threshold that keeps BPCER at or below this.
        #[arg(long, default_value_t = 0.02)]
        target_bpcer: f64,
        /// Report the threshold that keeps APCER (every attack type) at or below this.
        #[arg(long, default_value_t = 0.01)]
        target_apcer: f64,
        /// Faces smaller than this (shorter side, pixels) are not scored: the
        /// verify path asks the person to come closer below 40 px.
        #[arg(long, default_value_t = 40.0)]
        min_face_px: f32,
        /// Images processed at once (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

pub fn bench(b: Bench) -> Result<()> {
    match b {
        Bench::Pad {
            images,
            threshold,
            target_bpcer,
            target_apcer,
            min_face_px,
            jobs,
            json,
        } => bench_pad(
            &images,
            threshold,
            (target_bpcer, target_apcer),
            min_face_px,
            jobs,
            json,
        ),
    }
}

/// One labelled image.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    file: String,
    live: bool,
    /// The attack type ("print", "replay", …); "attack" when not given.
    species: String,
}

/// What the capture path makes of an image.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    NoFace,
    StepBack,
    TooSmall,
    Scored(f32),
}

/// Splits one CSV line (RFC 4180 quoting: `"a, b"`, `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur).trim().to_string()),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// Reads `labels.csv`.
fn read_labels(dir: &Path) -> Result<Vec<Sample>> {
    let path = dir.join("labels.csv");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = csv_fields(lines.next().context("labels.csv is empty")?);
    let col = |name: &str| header.iter().position(|h| *h == name);
    let file = col("file").context("labels.csv has no `file` column")?;
    let (is_real, label, species) = (col("is_real"), col("label"), col("attack_type"));
    if is_real.is_none() && label.is_none() {
        bail!("labels.csv has neither an `is_real` nor a `label` column");
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let f = csv_fields(line);
        let get = |i: Option<usize>| i.and_then(|i| f.get(i)).map_or("", String::as_str);
        let live = match (get(is_real), get(label)) {
            ("1", _) | ("", "real" | "live" | "bona_fide") => true,
            ("0", _) | ("", "spoof" | "attack" | "fake") => false,
            (a, b) => bail!(
                "labels.csv line {}: cannot read the label {a:?}/{b:?}",
                n + 2
            ),
        };
        let s = get(species);
        out.push(Sample {
            file: get(Some(file)).to_string(),
            live,
            species: if live {
                String::new()
            } else if s.is_empty() {
                "attack".into()
            } else {
                s.to_string()
            },
        });
    }
    Ok(out)
}

/// Analyses one image as the capture path would: the most prominent face,
/// the framing rule, then the passive score.
fn outcome(engine: &Engine, path: &Path, min_face_px: f32) -> Result<Outcome> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let img = facegate_vision::decode(&bytes, &engine.options().decode_limits)
        .with_context(|| format!("cannot decode {}", path.display()))?;
    let faces = engine.analyze_image(&img)?;
    let Some(face) = faces.iter().max_by(|a, b| {
        (a.bbox.width() * a.bbox.height()).total_cmp(&(b.bbox.width() * b.bbox.height()))
    }) else {
        return Ok(Outcome::NoFace);
    };
    if framing(&face.bbox, img.width(), img.height()) == Framing::StepBack {
        return Ok(Outcome::StepBack);
    }
    if face.quality.face_px < min_face_px {
        return Ok(Outcome::TooSmall);
    }
    let live = face
        .liveness
        .context("the engine ran without the liveness stage")?;
    Ok(Outcome::Scored(live))
}

fn analyse_all(
    engine: &Engine,
    dir: &Path,
    samples: &[Sample],
    min_face_px: f32,
    jobs: usize,
) -> Result<Vec<Outcome>> {
    let bar = ProgressBar::new(samples.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} images, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("scoring");
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Outcome>>>> =
        samples.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(sample) = samples.get(i) else { break };
                *results[i].lock().unwrap() =
                    Some(outcome(engine, &dir.join(&sample.file), min_face_px));
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap().expect("every image was processed"))
        .collect()
}

/// The ISO/IEC 30107-3 figures at one threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
struct Rates {
    threshold: f32,
    /// Bona fide presentations scored below the threshold, over those scored.
    bpcer: f64,
    /// Per attack type: attacks scored at or above the threshold, over those scored.
    apcer_by_type: BTreeMap<String, f64>,
    /// The worst attack type's APCER (ISO/IEC 30107-3 APCER_PAIS maximum).
    apcer_max: f64,
    /// All attacks pooled.
    apcer_pooled: f64,
}

fn rates(live: &[f32], attacks: &BTreeMap<String, Vec<f32>>, t: f32) -> Rates {
    let frac = |n: usize, d: usize| {
        if d == 0 {
            f64::NAN
        } else {
            n as f64 / d as f64
        }
    };
    let apcer_by_type: BTreeMap<String, f64> = attacks
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                frac(v.iter().filter(|&&s| s >= t).count(), v.len()),
            )
        })
        .collect();
    let all: Vec<f32> = attacks.values().flatten().copied().collect();
    Rates {
        threshold: t,
        bpcer: frac(live.iter().filter(|&&s| s < t).count(), live.len()),
        apcer_max: apcer_by_type.values().copied().fold(f64::NAN, f64::max),
        apcer_pooled: frac(all.iter().filter(|&&s| s >= t).count(), all.len()),
        apcer_by_type,
    }
}

/// The highest threshold whose BPCER is at most `target`: at most
/// ⌊target·n⌋ live scores lie strictly below it.
fn threshold_for_bpcer(live: &[f32], target: f64) -> Option<f32> {
    let mut s = live.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let k = (target * s.len() as f64).floor() as usize;
    s.get(k).copied()
}

/// The lowest threshold at which every attack type's APCER is at most
/// `target`: just above the highest attack score that must be refused.
fn threshold_for_apcer(attacks: &BTreeMap<String, Vec<f32>>, target: f64) -> Option<f32> {
    attacks
        .values()
        .filter(|v| !v.is_empty())
        .map(|v| {
            let mut s = v.clone();
            s.sort_by(|a, b| b.total_cmp(a));
            let k = (target * s.len() as f64).floor() as usize;
            // Accept at most k of them: refuse the (k+1)-th highest and all below.
            s.get(k).map_or(0.0, |x| next_up(*x))
        })
        .reduce(f32::max)
}

fn next_up(x: f32) -> f32 {
    if x >= 1.0 {
        return x;
    }
    f32::from_bits(x.to_bits() + 1)
}

/// The threshold half-way, in log-odds, between the APCER and BPCER
/// thresholds when the first lies below the second (both targets met with
/// the most room on each side); `None` when no threshold meets both.
fn centre_of_gap(t_apcer: f32, t_bpcer: f32) -> Option<f32> {
    if t_apcer > t_bpcer {
        return None;
    }
    let logit = |p: f32| {
        let p = p.clamp(1e-6, 1.0 - 1e-6) as f64;
        (p / (1.0 - p)).ln()
    };
    let m = (logit(t_apcer) + logit(t_bpcer)) / 2.0;
    Some((1.0 / (1.0 + (-m).exp())) as f32)
}

/// The CPU model, as the kernel names it.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

#[derive(Debug, Default, serde::Serialize)]
struct Counts {
    images: usize,
    scored: usize,
    step_back: usize,
    too_small: usize,
    no_face: usize,
}

fn bench_pad(
    dir: &Path,
    threshold: f32,
    (target_bpcer, target_apcer): (f64, f64),
    min_face_px: f32,
    jobs: Option<usize>,
    json: bool,
) -> Result<()> {
    let samples = read_labels(dir)?;
    if samples.is_empty() {
        bail!("{}: labels.csv lists no images", dir.display());
    }
    let engine = Engine::new(EngineOptions {
        pose: false,
        eyes: false,
        embedding: false,
        ..crate::engine_options()
    })?;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let start = Instant::now();
    let outcomes = analyse_all(&engine, dir, &samples, min_face_px, jobs)?;
    let seconds = start.elapsed().as_secs_f64();

    let (mut live_counts, mut attack_counts) = (Counts::default(), Counts::default());
    let mut live = Vec::new();
    let mut attacks: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for (s, o) in samples.iter().zip(&outcomes) {
        let c = if s.live {
            &mut live_counts
        } else {
            &mut attack_counts
        };
        c.images += 1;
        match *o {
            Outcome::NoFace => c.no_face += 1,
            Outcome::StepBack => c.step_back += 1,
            Outcome::TooSmall => c.too_small += 1,
            Outcome::Scored(p) => {
                c.scored += 1;
                if s.live {
                    live.push(p);
                } else {
                    attacks.entry(s.species.clone()).or_default().push(p);
                }
            }
        }
    }
    let at_operating = rates(&live, &attacks, threshold);
    let t_b = threshold_for_bpcer(&live, target_bpcer);
    let t_a = threshold_for_apcer(&attacks, target_apcer);
    let at_b = t_b.map(|t| rates(&live, &attacks, t));
    let at_a = t_a.map(|t| rates(&live, &attacks, t));
    let centre = t_a.zip(t_b).and_then(|(a, b)| centre_of_gap(a, b));
    let at_centre = centre.map(|t| rates(&live, &attacks, t));
    let lowest_live = live.iter().copied().reduce(f32::min);
    let highest_attack = attacks.values().flatten().copied().reduce(f32::max);
    let cpu = cpu_model();

    if json {
        println!(
            "{}",
            serde_json::json!({
                "images": dir,
                "bona_fide": live_counts,
                "attack": attack_counts,
                "operating": at_operating,
                "target_bpcer": target_bpcer,
                "threshold_for_target_bpcer": at_b,
                "target_apcer": target_apcer,
                "threshold_for_target_apcer": at_a,
                "recommended": at_centre,
                "lowest_bona_fide_score": lowest_live,
                "highest_attack_score": highest_attack,
                "seconds": seconds,
                "ms_per_image": seconds * 1000.0 / samples.len() as f64,
                "min_face_px": min_face_px,
                "jobs": jobs,
                "cpu": cpu,
            })
        );
        return Ok(());
    }
    let pct = |x: f64| format!("{:.2} %", 100.0 * x);
    let line = |name: &str, r: &Rates| {
        let by: Vec<String> = r
            .apcer_by_type
            .iter()
            .map(|(k, v)| format!("{k} {}", pct(*v)))
            .collect();
        println!(
            "{name:<28} threshold {:.4}: APCER {} (max over types; {}), BPCER {}",
            r.threshold,
            pct(r.apcer_max),
            by.join(", "),
            pct(r.bpcer)
        );
    };
    println!("PAD on {} ({} images)", dir.display(), samples.len());
    for (name, c) in [("bona fide", &live_counts), ("attack", &attack_counts)] {
        println!(
            "  {name:<9}: {} images, {} scored, {} step back (face fills the frame), \
             {} too small (< {min_face_px} px), {} no face",
            c.images, c.scored, c.step_back, c.too_small, c.no_face
        );
    }
    let species: Vec<String> = attacks
        .iter()
        .map(|(k, v)| format!("{k} {}", v.len()))
        .collect();
    println!("  scored attacks by type: {}", species.join(", "));
    line("operating", &at_operating);
    match &at_b {
        Some(r) => line(&format!("for BPCER ≤ {}", pct(target_bpcer)), r),
        None => println!(
            "for BPCER ≤ {}: no bona fide image scored",
            pct(target_bpcer)
        ),
    }
    match &at_a {
        Some(r) => line(&format!("for APCER ≤ {}", pct(target_apcer)), r),
        None => println!("for APCER ≤ {}: no attack image scored", pct(target_apcer)),
    }
    match &at_centre {
        Some(r) => line("recommended (log-odds mid)", r),
        None => println!(
            "recommended: none (no threshold meets APCER ≤ {} and BPCER ≤ {} here)",
            pct(target_apcer),
            pct(target_bpcer)
        ),
    }
    let opt = |v: Option<f32>| v.map_or("-".into(), |v| format!("{v:.4}"));
    println!(
        "  lowest bona fide score {}, highest attack score {}",
        opt(lowest_live),
        opt(highest_attack)
    );
    println!(
        "  {:.1} s, {:.1} ms per image on {jobs} job(s), CPU: {cpu}",
        seconds,
        seconds * 1000.0 / samples.len() as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attacks(v: &[f32]) -> BTreeMap<String, Vec<f32>> {
        BTreeMap::from([("print".to_string(), v.to_vec())])
    }

    #[test]
    fn rates_follow_iso_30107_3() {
        let live = [0.9, 0.8, 0.4, 0.95];
        let a = BTreeMap::from([
            ("print".to_string(), vec![0.1, 0.6, 0.2, 0.3]),
            ("replay".to_string(), vec![0.7]),
        ]);
        let r = rates(&live, &a, 0.5);
        assert_eq!(r.bpcer, 0.25);
        assert_eq!(r.apcer_by_type["print"], 0.25);
        assert_eq!(r.apcer_by_type["replay"], 1.0);
        assert_eq!(r.apcer_max, 1.0);
        assert_eq!(r.apcer_pooled, 0.4);
    }

    #[test]
    fn bpcer_threshold_rejects_at_most_the_allowed_share() {
        let live: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let t = threshold_for_bpcer(&live, 0.02).unwrap();
        assert_eq!(t, 0.02);
        assert_eq!(rates(&live, &attacks(&[]), t).bpcer, 0.02);
        // One step higher would reject a third.
        assert!(rates(&live, &attacks(&[]), next_up(t)).bpcer > 0.02);
    }

    #[test]
    fn apcer_threshold_accepts_at_most_the_allowed_share() {
        let a: Vec<f32> = (0..100).map(|i| i as f32 / 200.0).collect();
        let t = threshold_for_apcer(&attacks(&a), 0.01).unwrap();
        let r = rates(&[], &attacks(&a), t);
        assert_eq!(r.apcer_max, 0.01);
        assert!(rates(&[], &attacks(&a), 0.49).apcer_max > 0.01);
    }

    #[test]
    fn centre_lies_between_and_none_when_crossed() {
        let c = centre_of_gap(0.1, 0.99).unwrap();
        assert!(c > 0.1 && c < 0.99, "{c}");
        assert!(centre_of_gap(0.9, 0.5).is_none());
    }

    #[test]
    fn labels_csv_of_both_eval_layouts_is_read() {
        let dir = std::env::temp_dir().join(format!("fg-pad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("labels.csv"),
            "file,label,is_real,attack_type,source_repo\n\
             real/a.jpg,real,1,,x\nspoof/b.jpg,spoof,0,\"replay(screen, crop)\",x\n\
             spoof/c.png,spoof,0,,x\n",
        )
        .unwrap();
        let s = read_labels(&dir).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s[0].live && !s[1].live && !s[2].live);
        assert_eq!(
            (s[1].species.as_str(), s[2].species.as_str()),
            ("replay(screen, crop)", "attack")
        );
        std::fs::write(dir.join("labels.csv"), "file,label\nx.jpg,maybe\n").unwrap();
        assert!(read_labels(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
