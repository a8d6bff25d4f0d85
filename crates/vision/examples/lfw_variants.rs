//! Development tool: LFW View 1 accuracy of pipeline variants in one pass
//! (alignment points, flip averaging), threshold from DevTrain, reported on
//! DevTest. Usage: lfw_variants LFW_DIR
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use facegate_vision::{align, five_points, Engine, EngineOptions};

fn pairs(dir: &Path, f: &str) -> Vec<(PathBuf, PathBuf, bool)> {
    let t = std::fs::read_to_string(dir.join(f)).unwrap();
    let p = |n: &str, i: &str| {
        dir.join(n)
            .join(format!("{n}_{:04}.jpg", i.parse::<u32>().unwrap()))
    };
    t.lines()
        .skip(1)
        .filter_map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            match v.len() {
                3 => Some((p(v[0], v[1]), p(v[0], v[2]), true)),
                4 => Some((p(v[0], v[1]), p(v[2], v[3]), false)),
                _ => None,
            }
        })
        .collect()
}

fn best_t(s: &[(f32, bool)]) -> f32 {
    let mut best = (0, 0.0);
    for &(t, _) in s {
        let c = s.iter().filter(|(x, y)| (*x >= t) == *y).count();
        if c > best.0 {
            best = (c, t);
        }
    }
    best.1
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("LFW dir"));
    let train = pairs(&dir, "pairsDevTrain.txt");
    let test = pairs(&dir, "pairsDevTest.txt");
    let mut uniq: Vec<PathBuf> = train
        .iter()
        .chain(&test)
        .flat_map(|p| [p.0.clone(), p.1.clone()])
        .collect();
    uniq.sort();
    uniq.dedup();
    let e = Engine::new(EngineOptions {
        liveness: false,
        pose: false,
        eyes: false,
        min_embedding_norm: 0.0,
        ..Default::default()
    })
    .unwrap();
    const NV: usize = 4;
    let names = ["design5", "js5", "design5+flip", "js5+flip"];
    let next = AtomicUsize::new(0);
    let out: Mutex<HashMap<PathBuf, Vec<Vec<f32>>>> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = uniq.get(i) else { break };
                let img = facegate_vision::decode(&std::fs::read(p).unwrap(), &Default::default())
                    .unwrap();
                let dets = e.detect(&img).unwrap();
                let c = img.width() as f32 / 2.0;
                let Some(d) = dets.iter().max_by(|a, b| {
                    let k = |d: &facegate_vision::Detection| {
                        let (x, y) = (
                            (d.bbox.x1 + d.bbox.x2) / 2.0 - c,
                            (d.bbox.y1 + d.bbox.y2) / 2.0 - c,
                        );
                        d.bbox.height() - 0.5 * (x * x + y * y).sqrt()
                    };
                    k(a).total_cmp(&k(b))
                }) else {
                    out.lock()
                        .unwrap()
                        .insert(p.clone(), vec![vec![0.0; 512]; NV]);
                    continue;
                };
                let lm = e.landmarks(&img, &d.bbox).unwrap();
                let d5 = five_points(&lm);
                let m =
                    |a: usize, b: usize| [(lm[a][0] + lm[b][0]) / 2.0, (lm[a][1] + lm[b][1]) / 2.0];
                let mean4 = |ix: [usize; 4]| {
                    [
                        ix.iter().map(|&i| lm[i][0]).sum::<f32>() / 4.0,
                        ix.iter().map(|&i| lm[i][1]).sum::<f32>() / 4.0,
                    ]
                };
                let j5 = [
                    mean4([37, 38, 40, 41]),
                    mean4([43, 44, 46, 47]),
                    lm[30],
                    m(48, 60),
                    m(54, 64),
                ];
                let mut v = Vec::new();
                let mut flips = Vec::new();
                for five in [d5, j5] {
                    let al = align(&img, &five);
                    let a = e.embed(&al).unwrap().as_slice().to_vec();
                    let fl = image::imageops::flip_horizontal(&al);
                    let b = e.embed(&fl).unwrap().as_slice().to_vec();
                    let s: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
                    let n = s.iter().map(|x| x * x).sum::<f32>().sqrt();
                    v.push(a);
                    flips.push(s.iter().map(|x| x / n).collect::<Vec<f32>>());
                }
                v.extend(flips);
                out.lock().unwrap().insert(p.clone(), v);
                let _ = i;
            });
        }
    });
    let emb = out.into_inner().unwrap();
    for (k, name) in names.iter().enumerate() {
        let score = |ps: &[(PathBuf, PathBuf, bool)]| -> Vec<(f32, bool)> {
            ps.iter()
                .map(|(a, b, s)| {
                    (
                        emb[a][k]
                            .iter()
                            .zip(&emb[b][k])
                            .map(|(x, y)| x * y)
                            .sum::<f32>(),
                        *s,
                    )
                })
                .collect()
        };
        let t = best_t(&score(&train));
        let ts = score(&test);
        let acc = ts.iter().filter(|(x, y)| (*x >= t) == *y).count() as f32 / ts.len() as f32;
        println!(
            "{name:<14} threshold {t:.4} DevTest accuracy {:.2} %",
            acc * 100.0
        );
    }
}
