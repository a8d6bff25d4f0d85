//! The measurements behind the thresholds in `challenge.rs` (see
//! BENCHMARKS.md, "Liveness"): for each image and its mirror image, what the
//! challenge judge and the framing rule see, then a summary.
//!
//! `cargo run --release -p facegate-vision --example cues -- [--csv] IMAGE_OR_DIR...`
//! (a folder is read recursively: its `.jpg`, `.jpeg` and `.png` files, sorted)
//!
//! The summary gives: the context scale of the framing rule; how well the
//! landmark yaw and `fr_pose`'s yaw survive mirroring (a mirrored face must
//! turn by the same amount the other way); the least-squares slope of
//! `fr_pose`'s yaw on the nose offset (degrees per unit); and, for files
//! named `…_N.ext` that share a prefix (NUAA: one capture session), how far
//! each cue moves within a session of a person sitting still.
use std::collections::BTreeMap;

use facegate_vision::challenge::{context_scale, landmark_yaw, FrameCues};

#[derive(Clone, Copy)]
struct Row {
    context: f32,
    /// Landmark yaw, fr_pose yaw (person's left positive), pitch, eyes, mouth.
    yaw: f32,
    pose_yaw: f32,
    pitch: f32,
    eyes: f32,
    mouth: f32,
}

fn pct(v: &mut [f32], p: f32) -> f32 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f32 * p / 100.0).round() as usize]
}

fn spread(name: &str, v: &mut [f32]) {
    if v.is_empty() {
        return;
    }
    println!(
        "  {name:<34} min {:.3}  p5 {:.3}  median {:.3}  p95 {:.3}  p99 {:.3}  max {:.3}  (n {})",
        pct(v, 0.0),
        pct(v, 5.0),
        pct(v, 50.0),
        pct(v, 95.0),
        pct(v, 99.0),
        pct(v, 100.0),
        v.len()
    );
}

/// The image files under `p` (itself when it is a file), sorted.
fn images(p: &std::path::Path, out: &mut Vec<String>) {
    if p.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            let ext = e.extension().map(|x| x.to_ascii_lowercase());
            if e.is_dir() || ext.is_some_and(|x| x == "jpg" || x == "jpeg" || x == "png") {
                images(&e, out);
            }
        }
    } else {
        out.push(p.to_string_lossy().into_owned());
    }
}

fn main() {
    let mut given: Vec<String> = std::env::args().skip(1).collect();
    let csv = given.first().is_some_and(|a| a == "--csv");
    let mut args = Vec::new();
    for a in given.drain(usize::from(csv)..) {
        images(std::path::Path::new(&a), &mut args);
    }
    if csv {
        println!("image,mirrored,w,h,faces,box,context,live,yaw,pose_yaw,pitch,eyes,mouth");
    }
    let engine = facegate_vision::Engine::new(Default::default()).expect("engine");
    let mut rows: Vec<(String, Row, Option<Row>)> = Vec::new();
    let mut no_face = 0;
    for p in &args {
        let bytes = std::fs::read(p).unwrap();
        let img = facegate_vision::decode(&bytes, &Default::default()).unwrap();
        let mut pair = [None, None];
        for (k, im) in [img.clone(), image::imageops::flip_horizontal(&img)]
            .iter()
            .enumerate()
        {
            let faces = engine.analyze_image(im).unwrap();
            let Some(f) = faces
                .iter()
                .max_by(|a, b| a.bbox.width().total_cmp(&b.bbox.width()))
            else {
                continue;
            };
            let c = FrameCues::from_face(f).unwrap();
            let r = Row {
                context: context_scale(&f.bbox, im.width(), im.height()),
                yaw: landmark_yaw(&f.landmarks68).unwrap(),
                pose_yaw: -f.quality.yaw.unwrap(),
                pitch: c.pitch,
                eyes: c.eyes_open,
                mouth: c.mouth_open,
            };
            if csv {
                println!(
                    "{p},{},{},{},{},{:.0},{:.2},{:.3},{:.1},{:.1},{:.1},{:.2},{:.3}",
                    k == 1,
                    im.width(),
                    im.height(),
                    faces.len(),
                    f.bbox.width(),
                    r.context,
                    f.liveness.unwrap_or(f32::NAN),
                    r.yaw,
                    r.pose_yaw,
                    r.pitch,
                    r.eyes,
                    r.mouth
                );
            }
            pair[k] = Some(r);
        }
        match pair {
            [Some(a), m] => rows.push((p.clone(), a, m)),
            _ => no_face += 1,
        }
    }
    if rows.is_empty() {
        println!("no faces in {} image(s)", args.len());
        return;
    }
    println!(
        "{} images, {} with a face, {no_face} without",
        args.len(),
        rows.len()
    );
    let col = |f: fn(&Row) -> f32| rows.iter().map(|r| f(&r.1)).collect::<Vec<f32>>();
    spread("context scale", &mut col(|r| r.context));
    for t in [1.25, 1.3, 1.41] {
        let n = rows.iter().filter(|r| r.1.context < t).count();
        println!("    below {t}: {n}");
    }
    spread("yaw, landmarks (deg)", &mut col(|r| r.yaw));
    spread("yaw, fr_pose (deg)", &mut col(|r| r.pose_yaw));
    spread("pitch, fr_pose (deg, + = down)", &mut col(|r| r.pitch));
    spread("eyes open (fr_eye, max of two)", &mut col(|r| r.eyes));
    spread("mouth opening", &mut col(|r| r.mouth));

    // Mirroring: |yaw + yaw_mirrored| and sign flips of clear turns.
    let both: Vec<(Row, Row)> = rows.iter().filter_map(|r| Some((r.1, r.2?))).collect();
    for (name, f) in [
        ("landmarks", (|r: &Row| r.yaw) as fn(&Row) -> f32),
        ("fr_pose", |r: &Row| r.pose_yaw),
    ] {
        let mut asym: Vec<f32> = both.iter().map(|(a, b)| (f(a) + f(b)).abs()).collect();
        let clear: Vec<&(Row, Row)> = both.iter().filter(|(a, _)| f(a).abs() > 10.0).collect();
        let flips = clear.iter().filter(|(a, b)| f(a) * f(b) < 0.0).count();
        spread(&format!("mirror asymmetry, {name} (deg)"), &mut asym);
        println!(
            "    sign flips when mirrored (|yaw| > 10°): {flips} of {}",
            clear.len()
        );
    }
    // Least-squares slope of fr_pose's yaw on the nose offset (landmark yaw / 84).
    let (xs, ys): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .map(|r| (r.1.yaw as f64 / 84.0, r.1.pose_yaw as f64))
        .unzip();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    println!(
        "  slope of fr_pose yaw on nose offset: {:.1} deg per unit",
        sxy / sxx
    );

    // Within-session movement of people sitting still.
    let mut sessions: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (p, r, _) in &rows {
        let stem = std::path::Path::new(p)
            .file_stem()
            .unwrap()
            .to_string_lossy();
        if let Some((prefix, _)) = stem.rsplit_once('_') {
            sessions.entry(prefix.to_string()).or_default().push(*r);
        }
    }
    sessions.retain(|_, v| v.len() >= 2);
    if !sessions.is_empty() {
        println!(
            "  within-session range (max - min) over {} sessions:",
            sessions.len()
        );
        for (name, f) in [
            ("yaw, landmarks", (|r: &Row| r.yaw) as fn(&Row) -> f32),
            ("yaw, fr_pose", |r: &Row| r.pose_yaw),
            ("pitch, fr_pose", |r: &Row| r.pitch),
            ("mouth opening", |r: &Row| r.mouth),
        ] {
            let mut spans: Vec<f32> = sessions
                .values()
                .map(|v| {
                    let (lo, hi) = v
                        .iter()
                        .map(f)
                        .fold((f32::MAX, f32::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
                    hi - lo
                })
                .collect();
            spread(name, &mut spans);
        }
    }
}
