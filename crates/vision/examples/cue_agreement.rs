//! How well the landmark cues of a challenge ([`facegate_vision::pose_from_landmarks`],
//! eye aspect ratio) agree with the models they replace (`fr_pose`, `fr_eye`),
//! on every single-face image under the given folders and its mirror image.
//! Prints mean absolute differences and correlations; asserts nothing.
//!
//! `cargo run --release -p facegate-vision --example cue_agreement -- ../shared/eval/lfw-view1 ../shared/eval/detection/single_face`

use facegate_vision::{pose_from_landmarks, Engine};

fn images(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>, cap: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if out.len() >= cap {
            return;
        }
        if p.is_dir() {
            images(&p, out, cap);
        } else if p.extension().is_some_and(|e| {
            ["jpg", "jpeg", "png"].contains(&e.to_string_lossy().to_lowercase().as_str())
        }) {
            out.push(p);
        }
    }
}

fn corr(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let cov: f32 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f32 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f32 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt().max(1e-9)
}

fn main() {
    let cap: usize = std::env::var("CUE_MAX_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let mut paths = vec![];
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    for d in &dirs {
        images(std::path::Path::new(d), &mut paths, cap);
    }
    println!("{}", facegate_vision::CpuInfo::detect());
    let e = Engine::new(Default::default()).expect("engine");
    // (model, landmarks) per axis.
    let mut axes: [(Vec<f32>, Vec<f32>); 3] = Default::default();
    let (mut eye_p, mut ear) = (vec![], vec![]);
    for p in &paths {
        let Ok(bytes) = std::fs::read(p) else {
            continue;
        };
        let Ok(img) = facegate_vision::decode(&bytes, &Default::default()) else {
            continue;
        };
        for img in [img.clone(), image::imageops::flip_horizontal(&img)] {
            let dets = e.detect(&img).unwrap();
            if dets.len() != 1 {
                continue;
            }
            let lm = e.landmarks(&img, &dets[0].bbox).unwrap();
            let model = e.pose(&img, &dets[0].bbox).unwrap();
            let geo = pose_from_landmarks(&lm);
            for k in 0..3 {
                axes[k].0.push(model[k]);
                axes[k].1.push(geo[k]);
            }
            let eyes = e.eyes(&img, &lm).unwrap();
            let d =
                |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
            for (k, i) in [(0, 36), (1, 42)] {
                eye_p.push(eyes[k]);
                ear.push(
                    (d(lm[i + 1], lm[i + 5]) + d(lm[i + 2], lm[i + 4]))
                        / (2.0 * d(lm[i], lm[i + 3])),
                );
            }
        }
    }
    println!(
        "{} faces (images and their mirrors) from {} files under {:?}",
        axes[0].0.len(),
        paths.len(),
        dirs
    );
    for (k, name) in ["yaw", "pitch", "roll"].iter().enumerate() {
        let (m, g) = &axes[k];
        let mae = m.iter().zip(g).map(|(a, b)| (a - b).abs()).sum::<f32>() / m.len().max(1) as f32;
        let span = |v: &[f32]| {
            v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min)
        };
        // Least-squares slope of fr_pose on the landmark figure, and the median |diff|.
        let n = m.len().max(1) as f32;
        let (mm, mg) = (m.iter().sum::<f32>() / n, g.iter().sum::<f32>() / n);
        let slope = m
            .iter()
            .zip(g)
            .map(|(a, b)| (a - mm) * (b - mg))
            .sum::<f32>()
            / g.iter().map(|b| (b - mg).powi(2)).sum::<f32>().max(1e-9);
        let mut diffs: Vec<f32> = m.iter().zip(g).map(|(a, b)| (a - b).abs()).collect();
        diffs.sort_by(f32::total_cmp);
        let median = diffs.get(diffs.len() / 2).copied().unwrap_or(0.0);
        println!(
            "{name}: landmarks vs fr_pose: mean |diff| {mae:.2}°, median {median:.2}°, correlation {:.3}, slope {slope:.2}, offset {:.1}°, fr_pose range {:.0}°",
            corr(m, g),
            mm - mg,
            span(m)
        );
    }
    println!(
        "eyes: correlation of EAR with fr_eye P(open) {:.3} over {} eyes",
        corr(&eye_p, &ear),
        ear.len()
    );
}
