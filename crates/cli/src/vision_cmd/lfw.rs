//! LFW View 1 helpers shared by `bench lfw` (vision) and `bench calibrate|identify|search
//! --real-lfw` (gallery): one pairs-file reader, one image naming rule, one choice of the
//! face that stands for an image, and one parallel embedding loop, so the calibration
//! table and the accuracy figures come from the same embeddings.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use facegate_vision::{Embedding, Engine, Face, SecondEmbedding, ThirdEmbedding};
use indicatif::{ProgressBar, ProgressStyle};

/// One LFW image: person name and image number.
pub type Img = (String, u32);

/// One line of a pairs file: a genuine pair (same name) or an impostor pair.
pub struct Pair {
    pub a: Img,
    pub b: Img,
}

impl Pair {
    pub fn same(&self) -> bool {
        self.a.0 == self.b.0
    }
}

/// A pairs file given as a path, or relative to the images folder.
fn resolve(images: &Path, p: &Path) -> PathBuf {
    if p.is_relative() && !p.exists() {
        images.join(p)
    } else {
        p.to_path_buf()
    }
}

/// `images/<name>/<name>_<nnnn>.jpg`.
pub fn image_path(images: &Path, (name, n): &Img) -> PathBuf {
    images.join(name).join(format!("{name}_{n:04}.jpg"))
}

/// Reads a pairs file (`pairsDevTrain.txt` …): an optional header line with the count,
/// then `name n1 n2` (genuine) or `name1 n1 name2 n2` (impostor) lines.
pub fn read_pairs(images: &Path, file: &Path) -> Result<Vec<Pair>> {
    let file = resolve(images, file);
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read pairs file {} (LFW View 1 lives in ../shared/eval/lfw-view1)",
            file.display()
        )
    })?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| -> Result<u32> {
            s.parse()
                .with_context(|| format!("{}:{}: bad image number {s:?}", file.display(), i + 1))
        };
        match f.len() {
            0 => {}
            1 | 2 if i == 0 => {} // header: count (or folds and count)
            3 => pairs.push(Pair {
                a: (f[0].into(), num(f[1])?),
                b: (f[0].into(), num(f[2])?),
            }),
            4 => pairs.push(Pair {
                a: (f[0].into(), num(f[1])?),
                b: (f[2].into(), num(f[3])?),
            }),
            _ => bail!(
                "{}:{}: expected 3 or 4 fields, got {:?}",
                file.display(),
                i + 1,
                line
            ),
        }
    }
    if pairs.is_empty() {
        bail!("{} holds no pairs", file.display());
    }
    Ok(pairs)
}

/// The face that stands for an image: large and near the centre.
pub fn main_face(faces: Vec<Face>, w: f32, h: f32) -> Option<Face> {
    let key = |f: &Face| {
        let (cx, cy) = (
            (f.bbox.x1 + f.bbox.x2) / 2.0 - w / 2.0,
            (f.bbox.y1 + f.bbox.y2) / 2.0 - h / 2.0,
        );
        f.quality.face_px - 0.5 * (cx * cx + cy * cy).sqrt()
    };
    faces.into_iter().max_by(|a, b| key(a).total_cmp(&key(b)))
}

/// The embedding of an image's main face (`None`: no face found).
pub fn embed_main(engine: &Engine, path: &Path) -> Result<Option<Embedding>> {
    Ok(embed_main_both(engine, path)?.map(|e| e.first))
}

/// Both embeddings of an image's main face (the second only when the engine computes it).
pub struct Embedded {
    pub first: Embedding,
    pub second: Option<SecondEmbedding>,
    pub third: Option<ThirdEmbedding>,
}

/// [`embed_main`] with the second embedding too.
pub fn embed_main_both(engine: &Engine, path: &Path) -> Result<Option<Embedded>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let img = facegate_vision::decode(&bytes, &engine.options().decode_limits)
        .with_context(|| format!("{}", path.display()))?;
    let faces = engine.analyze_image(&img)?;
    Ok(
        main_face(faces, img.width() as f32, img.height() as f32).and_then(|f| {
            Some(Embedded {
                first: f.embedding?,
                second: f.second_embedding,
                third: f.third_embedding,
            })
        }),
    )
}

/// Embeds every image with `jobs` worker threads sharing one engine, with a progress
/// bar on stderr. Fails, naming every file, if any image cannot be read.
pub fn embed_all_both(
    engine: &Engine,
    paths: &[PathBuf],
    jobs: usize,
) -> Result<Vec<Option<Embedded>>> {
    let bar = ProgressBar::new(paths.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} images, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("embedding");
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Embedded>>> = paths.iter().map(|_| Mutex::new(None)).collect();
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                match embed_main_both(engine, path) {
                    Ok(e) => *results[i].lock().unwrap() = e,
                    Err(e) => errors
                        .lock()
                        .unwrap()
                        .push(format!("{}: {e:#}", path.display())),
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        bail!(
            "{} image(s) could not be read:\n{}",
            errors.len(),
            errors.join("\n")
        );
    }
    Ok(results
        .into_iter()
        .map(|m| m.into_inner().unwrap())
        .collect())
}
