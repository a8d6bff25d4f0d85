//! `facegate bench pad` as a user runs it: the real binary, real models, the
//! labelled folders of `../shared/eval` (skipped, saying why, when absent).

use std::path::{Path, PathBuf};
use std::process::Command;

fn eval_dir(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/eval")
        .join(name);
    if p.join("labels.csv").is_file() {
        Some(p)
    } else {
        println!(
            "SKIPPED: {} is absent (evaluation data lives outside the repository)",
            p.display()
        );
        None
    }
}

/// Runs `facegate bench pad ARGS`: success, stdout, stdout and stderr.
fn pad(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["bench", "pad"])
        .args(args)
        .output()
        .expect("run facegate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    (o.status.success(), stdout, text)
}

/// The default threshold keeps the goal of issue 15 on whole frames:
/// APCER ≤ 1 % for every attack type at BPCER ≤ 2 %, with every image scored.
#[test]
fn default_liveness_threshold_meets_the_goal_on_whole_frames() {
    let Some(dir) = eval_dir("antispoof-frames") else {
        return;
    };
    let (ok, json, out) = pad(&["--images", dir.to_str().unwrap(), "--json"]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
    let op = &v["operating"];
    assert_eq!(
        op["threshold"].as_f64().unwrap() as f32,
        facegate_vision::LIVENESS_THRESHOLD
    );
    assert!(op["apcer_max"].as_f64().unwrap() <= 0.01, "{op}");
    assert!(op["bpcer"].as_f64().unwrap() <= 0.02, "{op}");
    assert_eq!(v["bona_fide"]["scored"], 120, "{v}");
    assert_eq!(v["attack"]["step_back"], 0, "{v}");
}

#[test]
fn a_folder_without_labels_is_refused() {
    let dir = std::env::temp_dir().join(format!("facegate-pad-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, _, out) = pad(&["--images", dir.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("labels.csv"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
