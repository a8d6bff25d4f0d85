//! `facegate bench search | identify | calibrate`: gallery benchmarks. They print
//! figures (and `--json`), they never assert.

use anyhow::{bail, Context, Result};
use facegate_gallery::{
    kernels, synthetic, Calibration, Candidate, Decision, Encoding, FusedGallery, Fusion, FusionN,
    Gallery, GalleryOptions, HnswParams, PersonId, ScenarioId, Search, Template, TemplateId,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::vision_cmd::lfw;

const DIM: usize = 512;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// 1:N search speed, recall@1 and memory: int8 exact, f32 exact, batched, HNSW.
    Search(SearchArgs),
    /// Open-set identification on LFW View 1 (DevTest people): rank-1, FNIR at FPIR = 1 %,
    /// and the FPIR measured on never-enrolled people at the calibrated 1 % setting.
    Identify(IdentifyArgs),
    /// Measures the impostor score table on LFW View 1 DevTrain and writes the calibration
    /// data file that the gallery crate embeds.
    Calibrate(CalibrateArgs),
}

#[derive(clap::Args)]
pub struct SearchArgs {
    /// Gallery size (templates).
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Search threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Number of probe queries.
    #[arg(long, default_value_t = 256)]
    queries: usize,
    /// Top-k returned per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Batch size for the batched figures.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Use real LFW embeddings (this image directory, e.g. ../shared/eval/lfw-view1) plus
    /// synthetic distractors up to --n: one image per person with 2+ images is the probe.
    #[arg(long)]
    real_lfw: Option<PathBuf>,
    /// Skip the HNSW figures.
    #[arg(long)]
    no_hnsw: bool,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    hnsw_m: usize,
    /// HNSW build beam width.
    #[arg(long, default_value_t = 100)]
    ef_construction: usize,
    /// HNSW search beam widths to measure.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    ef: Vec<usize>,
    /// Skip the f32 gallery (exact f32 figures and recall need it).
    #[arg(long)]
    no_f32: bool,
    /// Write base.npy, queries.npy, gt.npy (exact f32 top-1) and facegate.json here, for
    /// bench/search_vs_faiss.py.
    #[arg(long)]
    export: Option<PathBuf>,
    /// Synthetic vectors: `face-like` (rank-64 structure plus noise, impostor cosine spread
    /// like real embeddings) or `uniform` (uniform unit vectors: the worst case for HNSW).
    #[arg(long, default_value = "face-like")]
    synthetic: String,
    /// Noise of synthetic probes (1.0 ⇒ cosine ≈ 0.7 to the enrolled vector).
    #[arg(long, default_value_t = 1.0)]
    noise: f32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct IdentifyArgs {
    /// LFW View 1 directory (Name/Name_NNNN.jpg and the pairs files).
    #[arg(long, default_value = "../shared/eval/lfw-view1")]
    images: PathBuf,
    /// Pairs file whose people are used (disjoint from the calibration's DevTrain people).
    #[arg(long, default_value = "pairsDevTest.txt")]
    pairs: String,
    /// Target false-positive identification rate.
    #[arg(long, default_value_t = 0.01)]
    fpir: f64,
    /// The first model's calibration table for the gallery's own threshold, instead of
    /// the embedded one (the rows' thresholds come from --calibrate).
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Pairs file whose people give every fusion's weights and every score's impostor
    /// table (never the test people).
    #[arg(long, default_value = "pairsDevTrain.txt")]
    calibrate: String,
    /// Only the first model (no second embedding, no fusion).
    #[arg(long)]
    first_only: bool,
    /// Also the third model (MobileFaceNet, off by default: see the README's licences)
    /// and the fusions with it.
    #[arg(long)]
    third: bool,
    /// Embedding cache (JSON lines): images found there are not embedded again.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Candidates of the first model's search re-ranked by the fused score.
    #[arg(long, default_value_t = 20)]
    rerank: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long)]
    json: bool,
}

/// Which score a calibration table is measured for.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScoreModel {
    /// The first model's cosine score.
    First,
    /// The second model's (dlib ResNet) cosine score.
    Second,
    /// The third model's (MobileFaceNet) cosine score.
    Third,
    /// The fused score of both (with the embedded fusion weights).
    Fused,
    /// The fused score of all three models (logistic weights fitted on the same
    /// pairs file first and written to `fusion3.txt` beside the table).
    Fused3,
}

#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// LFW View 1 directory.
    #[arg(long, default_value = "../shared/eval/lfw-view1")]
    images: PathBuf,
    /// Pairs file (relative to --images, or a path).
    #[arg(long, default_value = "pairsDevTrain.txt")]
    pairs: String,
    /// Where to write the table (default: the gallery crate's data file for --model).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which score to measure.
    #[arg(long, value_enum, default_value_t = ScoreModel::First)]
    model: ScoreModel,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Embedding cache (JSON lines): images found there are not embedded again.
    #[arg(long)]
    cache: Option<PathBuf>,
}

pub fn bench(b: Bench) -> Result<()> {
    match b {
        Bench::Search(a) => search(a),
        Bench::Identify(a) => identify(a),
        Bench::Calibrate(a) => calibrate(a),
    }
}

// ---------------------------------------------------------------- search

struct Data {
    base: Vec<f32>,
    queries: Vec<f32>,
    label: String,
}

fn synthetic_data(a: &SearchArgs) -> Data {
    let base = synthetic_base(a, a.n);
    let (queries, _) = synthetic::probes(&base, DIM, a.queries, a.noise, a.seed + 1);
    Data {
        base,
        queries,
        label: format!("synthetic ({}, probe noise {})", a.synthetic, a.noise),
    }
}

fn synthetic_base(a: &SearchArgs, n: usize) -> Vec<f32> {
    if a.synthetic == "uniform" {
        synthetic::unit_vectors(n, DIM, a.seed)
    } else {
        synthetic::face_like_vectors(n, DIM, 64, a.seed)
    }
}

fn real_lfw_data(a: &SearchArgs, dir: &Path) -> Result<Data> {
    let mut people: Vec<(String, Vec<PathBuf>)> = vec![];
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    for n in names {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(&n))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .collect();
        files.sort();
        people.push((n, files));
    }
    let all: Vec<PathBuf> = people.iter().flat_map(|p| p.1.clone()).collect();
    eprintln!(
        "embedding {} LFW images with facegate-vision ...",
        all.len()
    );
    let embs = embed_images(&all, a.threads, false, false, None)?;
    let mut by_path: HashMap<PathBuf, Vec<f32>> = HashMap::new();
    for (p, e) in all.iter().zip(embs) {
        if let Some(e) = e {
            by_path.insert(p.clone(), e.first);
        }
    }
    let mut base = vec![];
    let mut queries = vec![];
    for (_, files) in &people {
        let got: Vec<&Vec<f32>> = files.iter().filter_map(|f| by_path.get(f)).collect();
        if got.len() >= 2 && queries.len() / DIM < a.queries {
            queries.extend_from_slice(got[0]);
            got[1..].iter().for_each(|e| base.extend_from_slice(e));
        } else {
            got.iter().for_each(|e| base.extend_from_slice(e));
        }
    }
    let real = base.len() / DIM;
    if real > a.n {
        bail!("--n {} is smaller than the {real} real LFW templates", a.n);
    }
    // Distractors: a Gaussian with the real embeddings' mean and covariance (unit length),
    // so they sit where other people's faces would; `--synthetic uniform` for the old kind.
    if a.synthetic == "uniform" {
        base.extend(synthetic_base(a, a.n - real));
    } else {
        base.extend(synthetic::gaussian_like(
            &base.clone(),
            DIM,
            a.n - real,
            a.seed,
        ));
    }
    Ok(Data {
        label: format!(
            "real LFW ({real} templates, {} probes) + {} synthetic distractors ({})",
            queries.len() / DIM,
            a.n - real,
            if a.synthetic == "uniform" {
                "uniform"
            } else {
                "Gaussian fitted to the real embeddings"
            }
        ),
        base,
        queries,
    })
}

fn bench_calibration(model: &str) -> Result<Calibration> {
    let mut s = synthetic::impostor_scores(600, DIM, 7);
    Ok(Calibration::from_impostor_scores(
        model,
        &mut s,
        "synthetic bench",
    )?)
}

fn build(
    base: &[f32],
    enc: Encoding,
    threads: usize,
    model: &str,
) -> Result<(Gallery, Vec<TemplateId>)> {
    let scenario = ScenarioId::new();
    let opts = GalleryOptions {
        encoding: enc,
        threads,
        ..Default::default()
    };
    let mut g = Gallery::new(scenario, model, DIM, bench_calibration(model)?, opts)?;
    let n = base.len() / DIM;
    g.reserve(n);
    let mut ids = Vec::with_capacity(n);
    for v in base.chunks_exact(DIM) {
        let t = Template::new(PersonId::new(), scenario, model, v, enc)?;
        ids.push(t.id);
        g.add(&t)?;
    }
    Ok((g, ids))
}

struct Fig {
    name: String,
    ms_per_query: f64,
    recall1: Option<f64>,
}

fn time_single(
    g: &Gallery,
    queries: &[f32],
    k: usize,
    how: Search,
) -> Result<(f64, Vec<Vec<Candidate>>)> {
    // One warm-up query (page faults, thread start).
    g.search_with(&queries[..DIM], k, how)?;
    let t = Instant::now();
    let mut out = vec![];
    for q in queries.chunks_exact(DIM) {
        out.push(g.search_with(q, k, how)?);
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / (queries.len() / DIM) as f64;
    Ok((ms, out))
}

fn time_batch(
    g: &Gallery,
    queries: &[f32],
    k: usize,
    batch: usize,
) -> Result<(f64, Vec<Vec<Candidate>>)> {
    let t = Instant::now();
    let mut out = vec![];
    for chunk in queries.chunks(batch * DIM) {
        out.extend(g.search_batch(chunk, k)?);
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / (queries.len() / DIM) as f64;
    Ok((ms, out))
}

fn recall(res: &[Vec<Candidate>], gt: &[usize], index: &HashMap<TemplateId, usize>) -> f64 {
    let hit = res
        .iter()
        .zip(gt)
        .filter(|(r, &g)| r.first().and_then(|c| index.get(&c.template)) == Some(&g))
        .count();
    hit as f64 / gt.len().max(1) as f64
}

fn search(a: SearchArgs) -> Result<()> {
    if a.n == 0 || a.queries == 0 {
        bail!("--n and --queries must be positive");
    }
    if a.synthetic != "face-like" && a.synthetic != "uniform" {
        bail!(
            "--synthetic must be face-like or uniform, not {:?}",
            a.synthetic
        );
    }
    let model = "bench-embeddings";
    let t0 = Instant::now();
    let data = match &a.real_lfw {
        Some(d) => real_lfw_data(&a, d)?,
        None => synthetic_data(&a),
    };
    let nq = data.queries.len() / DIM;
    eprintln!(
        "data ready in {:.1} s: {}",
        t0.elapsed().as_secs_f64(),
        data.label
    );
    if let Some(dir) = &a.export {
        std::fs::create_dir_all(dir)?;
        write_npy_f32(&dir.join("base.npy"), &data.base, a.n, DIM)?;
        write_npy_f32(&dir.join("queries.npy"), &data.queries, nq, DIM)?;
    }
    let t = Instant::now();
    let (g8, ids8) = build(&data.base, Encoding::Int8, a.threads, model)?;
    let build8 = t.elapsed().as_secs_f64();
    let idx8: HashMap<TemplateId, usize> =
        ids8.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut figs: Vec<Fig> = vec![];
    let mut gt: Vec<usize> = vec![];
    let mut f32_bytes = None;
    if !a.no_f32 {
        let (gf, idsf) = build(&data.base, Encoding::F32, a.threads, model)?;
        let idxf: HashMap<TemplateId, usize> =
            idsf.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        f32_bytes = Some(gf.memory_bytes() as f64 / a.n as f64);
        let (ms, res) = time_single(&gf, &data.queries, a.k, Search::Exact)?;
        gt = res.iter().map(|r| idxf[&r[0].template]).collect();
        figs.push(Fig {
            name: "f32 exact, single query".into(),
            ms_per_query: ms,
            recall1: Some(1.0),
        });
        let (ms, res) = time_batch(&gf, &data.queries, a.k, a.batch)?;
        figs.push(Fig {
            name: format!("f32 exact (sgemm), batch {}", a.batch),
            ms_per_query: ms,
            recall1: Some(recall(&res, &gt, &idxf)),
        });
    }
    drop(data.base);
    let have_gt = !gt.is_empty();
    let (ms, res) = time_single(&g8, &data.queries, a.k, Search::Exact)?;
    figs.insert(
        0,
        Fig {
            name: "int8 exact, single query".into(),
            ms_per_query: ms,
            recall1: have_gt.then(|| recall(&res, &gt, &idx8)),
        },
    );
    let (ms, res) = time_batch(&g8, &data.queries, a.k, a.batch)?;
    figs.push(Fig {
        name: format!("int8 exact, batch {}", a.batch),
        ms_per_query: ms,
        recall1: have_gt.then(|| recall(&res, &gt, &idx8)),
    });
    let exact_bytes = g8.memory_bytes() as f64 / a.n as f64;
    let mut g8 = g8;
    let mut hnsw_build = None;
    if !a.no_hnsw {
        let t = Instant::now();
        g8.build_ann(HnswParams {
            m: a.hnsw_m,
            ef_construction: a.ef_construction,
            ..Default::default()
        });
        hnsw_build = Some(t.elapsed().as_secs_f64());
        for &ef in &a.ef {
            let (ms, res) = time_single(&g8, &data.queries, a.k, Search::Ann { ef })?;
            figs.push(Fig {
                name: format!("HNSW int8 m={} ef={ef}, single query", a.hnsw_m),
                ms_per_query: ms,
                recall1: have_gt.then(|| recall(&res, &gt, &idx8)),
            });
        }
    }
    let ann_bytes = g8.ann_memory_bytes() as f64 / a.n as f64;
    let out = serde_json::json!({
        "n": a.n, "dim": DIM, "threads": a.threads, "queries": nq, "k": a.k, "batch": a.batch,
        "data": data.label, "kernel": format!("{:?}", kernels::detected()),
        "build_int8_s": build8, "hnsw_build_s": hnsw_build,
        "bytes_per_template_int8": exact_bytes, "bytes_per_template_hnsw_extra": ann_bytes,
        "bytes_per_template_f32": f32_bytes,
        "figures": figs.iter().map(|f| serde_json::json!({
            "name": f.name, "ms_per_query": f.ms_per_query, "recall_at_1": f.recall1
        })).collect::<Vec<_>>(),
    });
    if let Some(dir) = &a.export {
        if have_gt {
            let gt64: Vec<i64> = gt.iter().map(|&g| g as i64).collect();
            write_npy_i64(&dir.join("gt.npy"), &gt64)?;
        }
        std::fs::write(
            dir.join("facegate.json"),
            serde_json::to_string_pretty(&out)?,
        )?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    println!(
        "facegate bench search: N={} dim={DIM} threads={} queries={nq} k={} kernel={:?}",
        a.n,
        a.threads,
        a.k,
        kernels::detected()
    );
    println!("data: {}", data.label);
    println!("{:<44} {:>12} {:>10}", "method", "ms/query", "recall@1");
    for f in &figs {
        let r = f.recall1.map_or("-".to_string(), |r| format!("{r:.4}"));
        println!("{:<44} {:>12.3} {:>10}", f.name, f.ms_per_query, r);
    }
    println!(
        "memory: int8 gallery {exact_bytes:.1} B/template (vector 512 as two nibble planes + scale 4 + bound norm 4 + scan scratch 4 + ids and indexes)"
    );
    if let Some(b) = hnsw_build {
        println!("        HNSW graph +{ann_bytes:.1} B/template (built in {b:.1} s)");
    }
    if let Some(b) = f32_bytes {
        println!("        f32 gallery {b:.1} B/template");
    }
    println!("int8 gallery built in {build8:.1} s; recall@1 is against exact f32 top-1");
    Ok(())
}

fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut h = dict.into_bytes();
    let total = 10 + h.len() + 1;
    let pad = (64 - total % 64) % 64;
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend(h);
    out
}

fn write_npy_f32(path: &Path, v: &[f32], rows: usize, cols: usize) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&npy_header("<f4", &format!("({rows}, {cols})")))?;
    for x in v {
        f.write_all(&x.to_le_bytes())?;
    }
    f.flush()?;
    Ok(())
}

fn write_npy_i64(path: &Path, v: &[i64]) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&npy_header("<i8", &format!("({},)", v.len())))?;
    for x in v {
        f.write_all(&x.to_le_bytes())?;
    }
    f.flush()?;
    Ok(())
}

// ---------------------------------------------------------------- LFW helpers

/// Every model's embedding of one image's main face, as plain vectors.
#[derive(serde::Serialize, serde::Deserialize)]
struct Vecs {
    first: Vec<f32>,
    second: Option<Vec<f32>>,
    third: Option<Vec<f32>>,
}

impl Vecs {
    /// The three models' cosine scores against another image's vectors (−1 where a
    /// model did not run).
    fn scores(&self, o: &Vecs) -> [f32; 3] {
        let opt = |a: &Option<Vec<f32>>, b: &Option<Vec<f32>>| match (a, b) {
            (Some(x), Some(y)) => dot(x, y),
            _ => -1.0,
        };
        [
            dot(&self.first, &o.first),
            opt(&self.second, &o.second),
            opt(&self.third, &o.third),
        ]
    }
}

/// One cached image: its path and its vectors (`None`: no face found).
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedImage {
    path: PathBuf,
    face: Option<Vecs>,
}

/// Embeds images with the face engine (the same face choice and loop as `bench lfw`),
/// `jobs` at a time, as plain vectors; `None` where no face is found. The second and
/// third embeddings only when asked. With `cache` (a JSON-lines file), images already
/// there with the asked models are read back instead of embedded again, and new ones
/// are appended: the numbers are the engine's, only the repeated work is saved.
fn embed_images(
    paths: &[PathBuf],
    jobs: usize,
    second: bool,
    third: bool,
    cache: Option<&Path>,
) -> Result<Vec<Option<Vecs>>> {
    let mut known: HashMap<PathBuf, Option<Vecs>> = HashMap::new();
    if let Some(c) = cache.filter(|c| c.exists()) {
        let text = std::fs::read_to_string(c).with_context(|| c.display().to_string())?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let e: CachedImage =
                serde_json::from_str(line).with_context(|| format!("{}", c.display()))?;
            let fits = e
                .face
                .as_ref()
                .is_none_or(|v| (!second || v.second.is_some()) && (!third || v.third.is_some()));
            if fits {
                known.insert(e.path, e.face);
            }
        }
    }
    let todo: Vec<PathBuf> = paths
        .iter()
        .filter(|p| !known.contains_key(*p))
        .cloned()
        .collect();
    if !todo.is_empty() {
        if !known.is_empty() {
            eprintln!(
                "{} of {} images from the cache",
                paths.len() - todo.len(),
                paths.len()
            );
        }
        let engine = facegate_vision::Engine::new(facegate_vision::EngineOptions {
            liveness: false,
            pose: false,
            eyes: false,
            second_embedding: second || third,
            third_embedding: third,
            ..crate::engine_options()
        })?;
        let fresh = lfw::embed_all_both(&engine, &todo, jobs)?;
        let mut lines = String::new();
        for (p, e) in todo.iter().zip(fresh) {
            let face = e.map(|e| Vecs {
                first: e.first.as_slice().to_vec(),
                second: e.second.map(|s| s.as_slice().to_vec()),
                third: e.third.map(|s| s.as_slice().to_vec()),
            });
            let entry = CachedImage {
                path: p.clone(),
                face,
            };
            if cache.is_some() {
                lines.push_str(&serde_json::to_string(&entry)?);
                lines.push('\n');
            }
            known.insert(entry.path, entry.face);
        }
        if let Some(c) = cache {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(c)
                .with_context(|| c.display().to_string())?;
            f.write_all(lines.as_bytes())?;
        }
    }
    Ok(paths.iter().map(|p| known.remove(p).flatten()).collect())
}

/// The score of two images' vectors for a table of `model`.
fn pair_score(model: ScoreModel, fusion: &Fusion, fusion3: &FusionN, a: &Vecs, b: &Vecs) -> f32 {
    let s = a.scores(b);
    match model {
        ScoreModel::First => s[0],
        ScoreModel::Second => s[1],
        ScoreModel::Third => s[2],
        ScoreModel::Fused => fusion.score(s[0], s[1]),
        ScoreModel::Fused3 => fusion3.score(&s),
    }
}

/// The model id of the three-model fusion (and of templates carrying all three).
fn fused3_model_id() -> String {
    format!(
        "{}+{}",
        facegate_vision::FUSED_MODEL_ID,
        facegate_vision::THIRD_MODEL_ID
    )
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Each pair's scores under `models` (indices into [`Vecs::scores`]) and
/// whether it is a genuine pair, to fit a fusion on; a pair with an image
/// whose face was missed scores −1 under every model. `embs[i]` is the
/// embedding of `imgs[i]`.
fn labelled_scores(
    pairs: &[lfw::Pair],
    imgs: &[(String, u32)],
    embs: &[Option<Vecs>],
    models: &[usize],
) -> Vec<(Vec<f32>, bool)> {
    let pos: HashMap<&(String, u32), usize> =
        imgs.iter().enumerate().map(|(i, k)| (k, i)).collect();
    pairs
        .iter()
        .map(|p| {
            let s = match (&embs[pos[&p.a]], &embs[pos[&p.b]]) {
                (Some(x), Some(y)) => x.scores(y),
                _ => [-1.0; 3],
            };
            (models.iter().map(|&i| s[i]).collect(), p.same())
        })
        .collect()
}

// ---------------------------------------------------------------- calibrate

fn calibrate(a: CalibrateArgs) -> Result<()> {
    let pairs = lfw::read_pairs(&a.images, Path::new(&a.pairs))?;
    let mut imgs: Vec<(String, u32)> = pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect();
    imgs.sort();
    imgs.dedup();
    let paths: Vec<PathBuf> = imgs.iter().map(|i| lfw::image_path(&a.images, i)).collect();
    eprintln!(
        "embedding {} images of {} with facegate-vision ...",
        paths.len(),
        a.pairs
    );
    let second = a.model != ScoreModel::First;
    let third = matches!(a.model, ScoreModel::Third | ScoreModel::Fused3);
    let embs = embed_images(&paths, a.threads, second, third, a.cache.as_deref())?;
    let fusion = Fusion::builtin()?;
    let fused3_id = fused3_model_id();
    let (model_id, default_out) = match a.model {
        ScoreModel::First => (
            facegate_vision::MODEL_ID,
            "crates/gallery/data/calibration.txt",
        ),
        ScoreModel::Second => (
            facegate_vision::SECOND_MODEL_ID,
            "crates/gallery/data/calibration-second.txt",
        ),
        ScoreModel::Third => (
            facegate_vision::THIRD_MODEL_ID,
            "crates/gallery/data/calibration-third.txt",
        ),
        ScoreModel::Fused => (
            facegate_vision::FUSED_MODEL_ID,
            "crates/gallery/data/calibration-fused.txt",
        ),
        ScoreModel::Fused3 => (
            fused3_id.as_str(),
            "crates/gallery/data/calibration-fused3.txt",
        ),
    };
    // The three-model fusion is fitted on this pairs file's labelled pairs (DevTrain),
    // then its impostor table is measured on the same images.
    let fusion3 = {
        if third {
            FusionN::fit(&labelled_scores(&pairs, &imgs, &embs, &[0, 1, 2]))?
        } else {
            FusionN {
                weights: vec![0.0; 3],
                bias: 0.0,
            }
        }
    };
    if a.model == ScoreModel::Fused3 {
        let out = a.out.as_ref().map_or_else(
            || PathBuf::from("crates/gallery/data/fusion3.txt"),
            |o| o.with_file_name("fusion3.txt"),
        );
        let cmd = format!(
            "facegate bench calibrate --images {} --pairs {} --model fused3",
            a.images.display(),
            a.pairs
        );
        let comment = format!(
            "facegate three-model score fusion: fused = w1*cos(first) + w2*cos(second) + w3*cos(third) + bias\n\
             (log-odds of \"same person\", logistic fit on the {} labelled pairs of LFW View 1 {} only)\n\
             regenerate: {cmd}",
            pairs.len(),
            a.pairs
        );
        std::fs::write(&out, fusion3.to_text(&fused3_id, &cmd, &comment))
            .with_context(|| out.display().to_string())?;
        println!("wrote {}", out.display());
    }
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(default_out));
    let score = |x: &Vecs, y: &Vecs| pair_score(a.model, &fusion, &fusion3, x, y);
    let ok: Vec<(usize, &Vecs)> = embs
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.as_ref().map(|e| (i, e)))
        .collect();
    let missing = imgs.len() - ok.len();
    let mut scores = Vec::with_capacity(ok.len() * ok.len() / 2);
    for (x, &(i, ei)) in ok.iter().enumerate() {
        for &(j, ej) in &ok[x + 1..] {
            if imgs[i].0 != imgs[j].0 {
                scores.push(score(ei, ej));
            }
        }
    }
    let pos: HashMap<&(String, u32), usize> =
        imgs.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let genuine: Vec<f32> = pairs
        .iter()
        .filter(|p| p.same())
        .filter_map(|p| Some(score(embs[pos[&p.a]].as_ref()?, embs[pos[&p.b]].as_ref()?)))
        .collect();
    let people = {
        let mut n: Vec<&String> = imgs.iter().map(|i| &i.0).collect();
        n.dedup();
        n.len()
    };
    let model_arg = match a.model {
        ScoreModel::First => "",
        ScoreModel::Second => " --model second",
        ScoreModel::Third => " --model third",
        ScoreModel::Fused => " --model fused",
        ScoreModel::Fused3 => " --model fused3",
    };
    let cmd = format!(
        "facegate bench calibrate --images {} --pairs {}{model_arg}",
        a.images.display(),
        a.pairs
    );
    let n_imp = scores.len();
    let cal = Calibration::from_impostor_scores(model_id, &mut scores, &cmd)?;
    let header = vec![
        format!("regenerate: {cmd}   (from the repository root; needs the models: facegate setup)"),
        format!("model: {model_id}"),
        format!(
            "score: {}",
            match a.model {
                ScoreModel::First | ScoreModel::Second | ScoreModel::Third =>
                    "cosine similarity of L2-normalised embeddings",
                ScoreModel::Fused =>
                    "fused log-odds w1*cos(first) + w2*cos(second) + b (crates/gallery/data/fusion.txt)",
                ScoreModel::Fused3 =>
                    "fused log-odds w1*cos(first) + w2*cos(second) + w3*cos(third) + b (crates/gallery/data/fusion3.txt)",
            }
        ),
        format!(
            "data: LFW View 1 {}: {} images of {people} people ({missing} without a detected face, skipped)",
            a.pairs,
            imgs.len()
        ),
        format!("impostors: all {n_imp} cross-identity pairs of those images (they include the file's impostor pairs)"),
        format!("generated: {} UTC", chrono::Utc::now().format("%Y-%m-%d %H:%M")),
    ];
    std::fs::write(&out, cal.to_table(&header)).with_context(|| out.display().to_string())?;
    println!(
        "wrote {} ({n_imp} impostor pairs, {} images, {missing} without a face)",
        out.display(),
        ok.len()
    );
    println!(
        "{:>8} {:>10} {:>22}",
        "FMR", "threshold", "genuine accept (TAR)"
    );
    for fmr in [1e-2, 1e-3, 1e-4, 1e-5, 1e-6] {
        let t = cal.threshold(fmr);
        let tar = genuine.iter().filter(|&&g| g > t).count() as f64 / genuine.len().max(1) as f64;
        let note = if fmr < cal.min_measured_fmr() {
            " (tail fit)"
        } else {
            ""
        };
        println!("{fmr:>8.0e} {t:>10.4} {tar:>21.4}{note}");
    }
    // 1:N: the threshold that keeps the false-positive identification rate at FPIR
    // against a gallery of N (per-comparison FMR 1 − (1 − FPIR)^(1/N), read off the
    // same impostor table), as the gallery sets it.
    let mut one_n = format!(
        "# facegate 1:N thresholds of {model_id}\n\
         # from the impostor table {} (regenerate: {cmd})\n\
         # a search answers a match when the best candidate's score > threshold; \
         FPIR = false-positive identification rate of a never-enrolled probe\n\
         # columns: fpir n per_comparison_fmr threshold source (measured: read off the table; \
         tail: below its lowest measured FMR, from its Gaussian tail fit)\n",
        out.display()
    );
    println!("1:N (FPIR against a gallery of N):");
    println!(
        "{:>8} {:>9} {:>14} {:>10}",
        "FPIR", "N", "FMR per pair", "threshold"
    );
    for fpir in [1e-2, 1e-3, 1e-4, 1e-5] {
        for n in [100usize, 1_000, 10_000, 100_000] {
            let fmr = Calibration::fmr_for_fpir(fpir, n);
            let t = cal.identification_threshold(fpir, n);
            let source = if fmr < cal.min_measured_fmr() {
                "tail"
            } else {
                "measured"
            };
            println!("{fpir:>8.0e} {n:>9} {fmr:>14.3e} {t:>10.4} {source}");
            one_n.push_str(&format!("{fpir:.0e} {n} {fmr:.3e} {t:.6} {source}\n"));
        }
    }
    if a.model == ScoreModel::Fused3 {
        let path = out.with_file_name(
            out.file_stem()
                .map(|s| format!("{}-1n.txt", s.to_string_lossy()))
                .unwrap_or_else(|| "calibration-1n.txt".into()),
        );
        std::fs::write(&path, one_n).with_context(|| path.display().to_string())?;
        println!("wrote {}", path.display());
    }
    println!("rebuild to embed it: the gallery crate reads it with include_str!");
    Ok(())
}

// ---------------------------------------------------------------- identify

/// One score `bench identify` searches with: a single model's cosine, or a fusion of
/// several (fitted on the calibration pairs).
struct Scoring {
    name: String,
    /// Which of the three cosine scores it reads.
    models: Vec<usize>,
    fusion: Option<FusionN>,
}

impl Scoring {
    fn score(&self, s: &[f32; 3]) -> f32 {
        match &self.fusion {
            Some(f) => {
                let v: Vec<f32> = self.models.iter().map(|&i| s[i]).collect();
                f.score(&v)
            }
            None => s[self.models[0]],
        }
    }
}

fn identify(a: IdentifyArgs) -> Result<()> {
    let pairs = lfw::read_pairs(&a.images, Path::new(&a.pairs))?;
    let mut people: Vec<String> = pairs
        .iter()
        .flat_map(|p| [p.a.0.clone(), p.b.0.clone()])
        .collect();
    people.sort();
    people.dedup();
    // Every image of these people in the folder.
    let mut per: Vec<(String, Vec<PathBuf>)> = vec![];
    for p in &people {
        let mut f: Vec<PathBuf> = std::fs::read_dir(a.images.join(p))
            .with_context(|| format!("{}", a.images.join(p).display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        f.sort();
        per.push((p.clone(), f));
    }
    let all: Vec<PathBuf> = per.iter().flat_map(|p| p.1.clone()).collect();
    // The calibration people (DevTrain): every fusion's weights and every score's
    // impostor table come from them only.
    let cal_pairs = lfw::read_pairs(&a.images, Path::new(&a.calibrate))?;
    let mut cal_imgs: Vec<(String, u32)> = cal_pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect();
    cal_imgs.sort();
    cal_imgs.dedup();
    if cal_imgs.iter().any(|i| people.binary_search(&i.0).is_ok()) {
        bail!(
            "{} and {} share people: the calibration must not see the test people",
            a.calibrate,
            a.pairs
        );
    }
    let cal_paths: Vec<PathBuf> = cal_imgs
        .iter()
        .map(|i| lfw::image_path(&a.images, i))
        .collect();
    let (second, third) = (!a.first_only, a.third && !a.first_only);
    eprintln!(
        "embedding {} images of {} people, and {} calibration images of {} ...",
        all.len(),
        per.len(),
        cal_paths.len(),
        a.calibrate
    );
    let both: Vec<PathBuf> = all.iter().chain(&cal_paths).cloned().collect();
    let mut embs = embed_images(&both, a.threads, second, third, a.cache.as_deref())?;
    let cal_embs = embs.split_off(all.len());
    let mut emb: HashMap<PathBuf, Vecs> = HashMap::new();
    for (p, e) in all.iter().zip(embs) {
        if let Some(e) = e {
            emb.insert(p.clone(), e);
        }
    }

    // The scores searched with, each fusion fitted on the calibration pairs.
    let fit = |models: &[usize]| -> Result<FusionN> {
        Ok(FusionN::fit(&labelled_scores(
            &cal_pairs, &cal_imgs, &cal_embs, models,
        ))?)
    };
    let single = |name: &str, i: usize| Scoring {
        name: name.into(),
        models: vec![i],
        fusion: None,
    };
    let mut scorings = vec![single("first", 0)];
    if second {
        scorings.push(single("second", 1));
    }
    if third {
        scorings.push(single("third", 2));
    }
    let mut fusions: Vec<(&str, Vec<usize>)> = vec![];
    if second {
        fusions.push(("fused12", vec![0, 1]));
    }
    if third {
        fusions.push(("fused13", vec![0, 2]));
        fusions.push(("fused123", vec![0, 1, 2]));
    }
    for (name, models) in fusions {
        scorings.push(Scoring {
            name: name.into(),
            fusion: Some(fit(&models)?),
            models,
        });
    }
    // Impostor tables: every cross-identity pair of calibration images.
    let cal_ok: Vec<(&str, &Vecs)> = cal_imgs
        .iter()
        .zip(&cal_embs)
        .filter_map(|(i, e)| e.as_ref().map(|e| (i.0.as_str(), e)))
        .collect();
    let mut impostors: Vec<Vec<f32>> = scorings.iter().map(|_| vec![]).collect();
    for (x, &(pi, ei)) in cal_ok.iter().enumerate() {
        for &(pj, ej) in &cal_ok[x + 1..] {
            if pi != pj {
                let s = ei.scores(ej);
                for (imp, sc) in impostors.iter_mut().zip(&scorings) {
                    imp.push(sc.score(&s));
                }
            }
        }
    }
    let n_impostors = impostors[0].len();
    let cmd = format!(
        "facegate bench identify --images {} --pairs {} --calibrate {}",
        a.images.display(),
        a.pairs,
        a.calibrate
    );
    let tables: Vec<Calibration> = scorings
        .iter()
        .zip(impostors)
        .map(|(sc, mut imp)| Ok(Calibration::from_impostor_scores(&sc.name, &mut imp, &cmd)?))
        .collect::<Result<_>>()?;

    let model = facegate_vision::MODEL_ID;
    let scenario = ScenarioId::new();
    let opts = GalleryOptions {
        threads: a.threads,
        target_fpir: a.fpir,
        ..Default::default()
    };
    let first_table = match &a.calibration {
        Some(p) => Calibration::parse(&std::fs::read_to_string(p)?)?,
        None => Calibration::builtin()?,
    };
    let mut g = Gallery::new(scenario, model, DIM, first_table, opts)?;
    // Enrol every other person with 2+ embedded images (one gallery image each); the
    // rest of the people are never enrolled.
    let mut enrolled: Vec<(PersonId, &Vecs)> = vec![];
    let mut mated: Vec<(PersonId, &Vecs)> = vec![];
    let mut non_mated: Vec<&Vecs> = vec![];
    let mut multi = 0usize;
    for (_, files) in &per {
        let got: Vec<&Vecs> = files.iter().filter_map(|f| emb.get(f)).collect();
        if got.len() >= 2 {
            multi += 1;
            if multi % 2 == 1 {
                let pid = PersonId::new();
                g.add(&Template::new(
                    pid,
                    scenario,
                    model,
                    &got[0].first,
                    Encoding::Int8,
                )?)?;
                enrolled.push((pid, got[0]));
                got[1..].iter().for_each(|e| mated.push((pid, e)));
                continue;
            }
        }
        non_mated.extend(got);
    }
    let n = g.len();
    let by_person: HashMap<PersonId, &Vecs> = enrolled.iter().copied().collect();
    let k = a.rerank.clamp(1, n.max(1));
    // Each row answers a probe with its best candidate and score: a single model by
    // an exact scan (the first model by the gallery's int8 search), a fusion by an
    // exact scan of the fused score over every enrolled person, and again as the
    // gallery runs it: the first model's top k re-ranked by the fused score.
    struct Row<'s> {
        name: String,
        how: &'static str,
        scoring: &'s Scoring,
        table: &'s Calibration,
        rerank: bool,
    }
    let mut rows: Vec<Row> = vec![];
    for (sc, t) in scorings.iter().zip(&tables) {
        let fused = sc.fusion.is_some();
        rows.push(Row {
            name: sc.name.clone(),
            how: if sc.name == "first" {
                "int8 exact search of the first model's embedding"
            } else if fused {
                "exact scan of the fused score over every enrolled person"
            } else {
                "exact f32 scan of this model's embedding"
            },
            scoring: sc,
            table: t,
            rerank: false,
        });
        if fused {
            rows.push(Row {
                name: format!("{}/rr{k}", sc.name),
                how: "first model's int8 top k re-ranked by the fused score",
                scoring: sc,
                table: t,
                rerank: true,
            });
        }
    }
    let answer = |r: &Row, e: &Vecs| -> Result<(PersonId, f32)> {
        if r.scoring.name == "first" {
            let res = g.identify(&e.first, 1)?;
            return Ok((res.candidates[0].person, res.candidates[0].score));
        }
        let cands: Vec<(PersonId, &Vecs)> = if r.rerank {
            g.identify(&e.first, k)?
                .candidates
                .iter()
                .map(|c| (c.person, by_person[&c.person]))
                .collect()
        } else {
            enrolled.clone()
        };
        cands
            .into_iter()
            .map(|(p, v)| (p, r.scoring.score(&e.scores(v))))
            .max_by(|x, y| x.1.total_cmp(&y.1))
            .context("empty gallery")
    };
    let mut out_rows = vec![];
    let mut decisions: Vec<Vec<(PersonId, bool)>> = vec![];
    for r in &rows {
        let threshold = r.table.identification_threshold(a.fpir, n);
        let mut rank1 = 0usize;
        let mut fn_miss = 0usize;
        let mut mated_scores = vec![];
        let mut dec = vec![];
        for (pid, e) in &mated {
            let (p, s) = answer(r, e)?;
            let hit = p == *pid;
            rank1 += hit as usize;
            mated_scores.push(if hit { s } else { f32::NEG_INFINITY });
            if !(hit && s > threshold) {
                fn_miss += 1;
            }
            dec.push((p, s > threshold));
        }
        let mut fp = 0usize;
        let mut nm_scores = vec![];
        for e in &non_mated {
            let (p, s) = answer(r, e)?;
            nm_scores.push(s);
            fp += (s > threshold) as usize;
            dec.push((p, s > threshold));
        }
        // Oracle figure: the threshold chosen on these very non-mated scores for FPIR = target.
        nm_scores.sort_by(|x, y| y.total_cmp(x));
        let kq = ((a.fpir * nm_scores.len() as f64).floor() as usize).min(nm_scores.len() - 1);
        let oracle_t = nm_scores[kq];
        let oracle_fnir =
            mated_scores.iter().filter(|&&s| s <= oracle_t).count() as f64 / mated.len() as f64;
        // Against the exhaustive row just before it: probes whose answer (person and
        // accept/reject) differs.
        let differs = r.rerank.then(|| {
            decisions.last().map_or(0, |prev: &Vec<(PersonId, bool)>| {
                prev.iter()
                    .zip(&dec)
                    .filter(|(x, y)| x.1 != y.1 || (x.1 && x.0 != y.0))
                    .count()
            })
        });
        decisions.push(dec);
        out_rows.push(serde_json::json!({
            "model": r.name, "search": r.how, "threshold": threshold,
            "rank1": rank1 as f64 / mated.len() as f64,
            "fnir_at_target": fn_miss as f64 / mated.len() as f64,
            "fpir_measured": fp as f64 / non_mated.len() as f64, "false_positives": fp,
            "oracle_threshold": oracle_t, "fnir_at_oracle_threshold": oracle_fnir,
            "weights": r.scoring.fusion.as_ref().map(|f| f.weights.clone()),
            "bias": r.scoring.fusion.as_ref().map(|f| f.bias),
            "decisions_differing_from_exhaustive": differs,
        }));
    }
    // The production path: the shipped fusion and tables in the gallery the
    // server decides with (FusedGallery), as the server runs it: the cascade
    // on the first model's embedding, the other models only where it asks.
    let production = if second {
        let r = if third {
            facegate_core::Recognition::Three
        } else {
            facegate_core::Recognition::Pair
        };
        // The test pairs (1:1) whose two images have a face.
        let test_pairs: Vec<(&Vecs, &Vecs, bool)> = pairs
            .iter()
            .filter_map(|p| {
                let (x, y) = (
                    emb.get(&lfw::image_path(&a.images, &p.a))?,
                    emb.get(&lfw::image_path(&a.images, &p.b))?,
                );
                Some((x, y, p.same()))
            })
            .collect();
        Some(production_identify(
            &enrolled,
            &mated,
            &non_mated,
            &test_pairs,
            a.fpir,
            a.threads,
            r,
        )?)
    } else {
        None
    };
    let last = out_rows.last().cloned().unwrap_or_default();
    let out = serde_json::json!({
        "people": per.len(), "images": all.len(), "embedded": emb.len(),
        "gallery": n, "mated_probes": mated.len(), "non_mated_probes": non_mated.len(),
        "target_fpir": a.fpir, "calibration": a.calibrate, "calibration_images": cal_ok.len(),
        "calibration_impostor_pairs": n_impostors,
        "threshold": last["threshold"],
        "rank1": last["rank1"], "fnir_at_target": last["fnir_at_target"],
        "fpir_measured": last["fpir_measured"], "false_positives": last["false_positives"],
        "oracle_threshold": last["oracle_threshold"],
        "fnir_at_oracle_threshold": last["fnir_at_oracle_threshold"],
        "models": out_rows,
        "production": production,
    });
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    println!(
        "facegate bench identify: LFW View 1 people of {} ({} images, {} with a face)",
        a.pairs,
        all.len(),
        emb.len()
    );
    println!("gallery: {n} enrolled people, one image each; {} mated probes, {} probes of {} never-enrolled people",
        mated.len(), non_mated.len(), per.len() - n);
    println!(
        "calibration: {} ({} images, {n_impostors} impostor pairs): fusion weights and every score's impostor table",
        a.calibrate,
        cal_ok.len()
    );
    println!(
        "target FPIR {:.2} % at N={n}; FNIR and FPIR at the calibrated threshold",
        a.fpir * 100.0
    );
    println!(
        "{:<13} {:>10} {:>8} {:>8} {:>14} {:>12} {:>8}  search",
        "model", "threshold", "rank-1", "FNIR", "FPIR measured", "oracle FNIR", "differ"
    );
    for r in &out_rows {
        println!(
            "{:<13} {:>10.4} {:>8.4} {:>8.4} {:>8.4} ({:>3}) {:>12.4} {:>8}  {}",
            r["model"].as_str().unwrap_or_default(),
            r["threshold"].as_f64().unwrap_or(f64::NAN),
            r["rank1"].as_f64().unwrap_or(f64::NAN),
            r["fnir_at_target"].as_f64().unwrap_or(f64::NAN),
            r["fpir_measured"].as_f64().unwrap_or(f64::NAN),
            r["false_positives"].as_u64().unwrap_or(0),
            r["fnir_at_oracle_threshold"].as_f64().unwrap_or(f64::NAN),
            r["decisions_differing_from_exhaustive"]
                .as_u64()
                .map_or("-".into(), |d| d.to_string()),
            r["search"].as_str().unwrap_or_default(),
        );
    }
    if let Some(p) = &production {
        println!(
            "production    {:>10} {:>8} {:>8.4} {:>8.4} ({:>3}) {:>12} {:>8}  the server's FusedGallery with the shipped fusion and tables, cascade: \
             other models run for {:.1} % of probes ({} of {}); answers differing from always running them: {} ({})",
            "-",
            "-",
            p["fnir_at_target"].as_f64().unwrap_or(f64::NAN),
            p["fpir_measured"].as_f64().unwrap_or(f64::NAN),
            p["false_positives"].as_u64().unwrap_or(0),
            "-",
            "-",
            100.0 * p["others_share"].as_f64().unwrap_or(f64::NAN),
            p["others_run"].as_u64().unwrap_or(0),
            p["probes"].as_u64().unwrap_or(0),
            p["differ_from_always"].as_u64().unwrap_or(0),
            p["recognition"].as_str().unwrap_or_default(),
        );
        println!(
            "production 1:1 on the {} test pairs (FMR 1e-4, as the server verifies): TAR {:.4} ({} genuine), \
             {} false accepts of {} impostors; other models run for {} pairs; answers differing from always running them: {}",
            p["verify_pairs"],
            p["verify_tar_at_1e-4"].as_f64().unwrap_or(f64::NAN),
            p["verify_genuine"],
            p["verify_false_accepts"],
            p["verify_impostor"],
            p["verify_others_run"],
            p["verify_differ_from_always"],
        );
    }
    for r in &out_rows {
        if let (Some(w), Some(b)) = (r["weights"].as_array(), r["bias"].as_f64()) {
            let w: Vec<String> = w
                .iter()
                .map(|x| format!("{:.4}", x.as_f64().unwrap_or(f64::NAN)))
                .collect();
            if !r["model"].as_str().unwrap_or_default().contains("/rr") {
                println!(
                    "{:<13} weights {} bias {b:.4}",
                    r["model"].as_str().unwrap_or_default(),
                    w.join(" ")
                );
            }
        }
    }
    Ok(())
}

/// `bench identify`'s production row: the enrolled people in the server's
/// gallery ([`FusedGallery`], the shipped three-model fusion and tables),
/// every probe answered as the server answers it: the cascade on the first
/// model's embedding, and with every embedding where it asks. Also counts
/// the answers (person, accept) that differ from running every model on
/// every probe.
fn production_identify(
    enrolled: &[(PersonId, &Vecs)],
    mated: &[(PersonId, &Vecs)],
    non_mated: &[&Vecs],
    test_pairs: &[(&Vecs, &Vecs, bool)],
    fpir: f64,
    threads: usize,
    recognition: facegate_core::Recognition,
) -> Result<serde_json::Value> {
    let spec = facegate_core::deploy::fused_spec(recognition)?;
    let scenario = ScenarioId::new();
    let mut g = FusedGallery::new(
        scenario,
        spec.clone(),
        GalleryOptions {
            threads,
            target_fpir: fpir,
            ..Default::default()
        },
    )?;
    // The other models' embeddings the spec fuses, in its order.
    let three = spec.other_dims.len() == 2;
    let others_of = |v: &'_ Vecs| -> Result<Vec<Vec<f32>>> {
        let mut o = vec![v.second.clone().context("second embedding")?];
        if three {
            o.push(v.third.clone().context("third embedding")?);
        }
        Ok(o)
    };
    for (pid, v) in enrolled {
        let o = others_of(v)?;
        let mut parts: Vec<&[f32]> = vec![&v.first];
        parts.extend(o.iter().map(|x| x.as_slice()));
        g.add(&facegate_gallery::parts_template(
            *pid,
            scenario,
            &spec.fused_model_id,
            &parts,
            Encoding::F32,
        )?)?;
    }
    let answer = |v: &Vecs| -> Result<(Option<PersonId>, Option<PersonId>, bool)> {
        let o = others_of(v)?;
        let others: Vec<&[f32]> = o.iter().map(|x| x.as_slice()).collect();
        let probe = facegate_gallery::Probe {
            first: &v.first,
            others: Some(&others),
        };
        let known = |i: &facegate_gallery::Identification| match i.decision {
            Decision::Known { person, .. } => Some(person),
            Decision::Unknown => None,
        };
        let always = known(&g.identify(&probe, 1)?);
        let (cascade, ran) = match g.identify_cascade(&v.first, 1)? {
            facegate_gallery::Cascade::Decided(i) => (known(&i), false),
            facegate_gallery::Cascade::NeedsOthers => (always, true),
        };
        Ok((cascade, always, ran))
    };
    let (mut hits, mut fp, mut ran, mut differ) = (0usize, 0usize, 0usize, 0usize);
    for (pid, v) in mated {
        let (c, a, r) = answer(v)?;
        hits += (c == Some(*pid)) as usize;
        ran += r as usize;
        differ += (c != a) as usize;
    }
    for v in non_mated {
        let (c, a, r) = answer(v)?;
        fp += c.is_some() as usize;
        ran += r as usize;
        differ += (c != a) as usize;
    }
    let probes = mated.len() + non_mated.len();
    // 1:1 on the test pairs, as the server verifies (FMR 1e-4, the gallery's
    // default): the first image enrolled, the second verified.
    let mut one = FusedGallery::new(scenario, spec.clone(), GalleryOptions::default())?;
    let (mut tar, mut fa, mut ran1, mut differ1) = (0usize, 0usize, 0usize, 0usize);
    let (mut genuine, mut impostor) = (0usize, 0usize);
    for (x, y, same) in test_pairs {
        let pid = PersonId::new();
        let o = others_of(x)?;
        let mut parts: Vec<&[f32]> = vec![&x.first];
        parts.extend(o.iter().map(|v| v.as_slice()));
        one.add(&facegate_gallery::parts_template(
            pid,
            scenario,
            &spec.fused_model_id,
            &parts,
            Encoding::F32,
        )?)?;
        let o = others_of(y)?;
        let others: Vec<&[f32]> = o.iter().map(|v| v.as_slice()).collect();
        let probe = facegate_gallery::Probe {
            first: &y.first,
            others: Some(&others),
        };
        let always = one.verify(pid, &probe)?.accepted;
        let cascade = match one.verify_cascade(pid, &y.first)? {
            facegate_gallery::Cascade::Decided(m) => m.accepted,
            facegate_gallery::Cascade::NeedsOthers => {
                ran1 += 1;
                always
            }
        };
        differ1 += (cascade != always) as usize;
        if *same {
            genuine += 1;
            tar += cascade as usize;
        } else {
            impostor += 1;
            fa += cascade as usize;
        }
        one.remove_person(pid);
    }
    Ok(serde_json::json!({
        "recognition": recognition.as_str(), "fused_model_id": spec.fused_model_id,
        "verify_pairs": test_pairs.len(), "verify_genuine": genuine, "verify_impostor": impostor,
        "verify_tar_at_1e-4": tar as f64 / genuine.max(1) as f64,
        "verify_false_accepts": fa, "verify_others_run": ran1,
        "verify_differ_from_always": differ1,
        "rank1": serde_json::Value::Null,
        "fnir_at_target": 1.0 - hits as f64 / mated.len() as f64,
        "fpir_measured": fp as f64 / non_mated.len() as f64,
        "false_positives": fp,
        "others_run": ran, "probes": probes,
        "others_share": ran as f64 / probes as f64,
        "differ_from_always": differ,
    }))
}
