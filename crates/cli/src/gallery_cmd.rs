//! `facegate bench search | identify | calibrate`: gallery benchmarks. They print
//! figures (and `--json`), they never assert.

use anyhow::{bail, Context, Result};
use facegate_gallery::{
    kernels, synthetic, Calibration, Candidate, Encoding, Fusion, Gallery, GalleryOptions,
    HnswParams, PersonId, ScenarioId, Search, Template, TemplateId,
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
    /// Calibration table to use instead of the embedded one.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Only the first model (no second embedding, no fusion).
    #[arg(long)]
    first_only: bool,
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
    /// The fused score of both (with the embedded fusion weights).
    Fused,
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
    let embs = embed_images(&all, a.threads, false)?;
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

/// Both embeddings of one image's main face, as plain vectors.
struct Vecs {
    first: Vec<f32>,
    second: Option<Vec<f32>>,
}

/// Embeds images with the face engine (the same face choice and loop as `bench lfw`),
/// `jobs` at a time, as plain vectors; `None` where no face is found. The second
/// embedding only when `second` is set.
fn embed_images(paths: &[PathBuf], jobs: usize, second: bool) -> Result<Vec<Option<Vecs>>> {
    let engine = facegate_vision::Engine::new(facegate_vision::EngineOptions {
        liveness: false,
        pose: false,
        eyes: false,
        second_embedding: second,
        ..Default::default()
    })?;
    Ok(lfw::embed_all_both(&engine, paths, jobs)?
        .into_iter()
        .map(|e| {
            e.map(|e| Vecs {
                first: e.first.as_slice().to_vec(),
                second: e.second.map(|s| s.as_slice().to_vec()),
            })
        })
        .collect())
}

/// The score of two images' vectors for a table of `model`.
fn pair_score(model: ScoreModel, fusion: &Fusion, a: &Vecs, b: &Vecs) -> f32 {
    let second = || match (&a.second, &b.second) {
        (Some(x), Some(y)) => dot(x, y),
        _ => -1.0,
    };
    match model {
        ScoreModel::First => dot(&a.first, &b.first),
        ScoreModel::Second => second(),
        ScoreModel::Fused => fusion.score(dot(&a.first, &b.first), second()),
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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
    let embs = embed_images(&paths, a.threads, a.model != ScoreModel::First)?;
    let fusion = Fusion::builtin()?;
    let (model_id, default_out) = match a.model {
        ScoreModel::First => (
            facegate_vision::MODEL_ID,
            "crates/gallery/data/calibration.txt",
        ),
        ScoreModel::Second => (
            facegate_vision::SECOND_MODEL_ID,
            "crates/gallery/data/calibration-second.txt",
        ),
        ScoreModel::Fused => (
            facegate_vision::FUSED_MODEL_ID,
            "crates/gallery/data/calibration-fused.txt",
        ),
    };
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(default_out));
    let score = |x: &Vecs, y: &Vecs| pair_score(a.model, &fusion, x, y);
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
        ScoreModel::Fused => " --model fused",
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
                ScoreModel::First | ScoreModel::Second =>
                    "cosine similarity of L2-normalised embeddings",
                ScoreModel::Fused =>
                    "fused log-odds w1*cos(first) + w2*cos(second) + b (crates/gallery/data/fusion.txt)",
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
    println!("rebuild to embed it: the gallery crate reads it with include_str!");
    Ok(())
}

// ---------------------------------------------------------------- identify

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
    eprintln!("embedding {} images of {} people ...", all.len(), per.len());
    let both = !a.first_only;
    let embs = embed_images(&all, a.threads, both)?;
    let mut emb: HashMap<PathBuf, Vecs> = HashMap::new();
    for (p, e) in all.iter().zip(embs) {
        if let Some(e) = e {
            emb.insert(p.clone(), e);
        }
    }
    let calibration = match &a.calibration {
        Some(p) => Calibration::parse(&std::fs::read_to_string(p)?)?,
        None => Calibration::builtin().context(
            "the embedded calibration is missing: run `facegate bench calibrate` and rebuild",
        )?,
    };
    let model = facegate_vision::MODEL_ID;
    let scenario = ScenarioId::new();
    let opts = GalleryOptions {
        threads: a.threads,
        target_fpir: a.fpir,
        ..Default::default()
    };
    let mut g = Gallery::new(scenario, model, DIM, calibration, opts)?;
    // Enrol every other person with 2+ embedded images (one gallery image each); the
    // rest of the people are never enrolled.
    let mut enrolled: HashMap<PersonId, &Vecs> = HashMap::new();
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
                enrolled.insert(pid, got[0]);
                got[1..].iter().for_each(|e| mated.push((pid, e)));
                continue;
            }
        }
        non_mated.extend(got);
    }
    let n = g.len();
    // Each scorer answers a probe with its best candidate and the threshold it
    // calls a match above.
    type Scorer<'s> = Box<dyn Fn(&Vecs) -> Result<(PersonId, f32, f32)> + 's>;
    let mut scorers: Vec<(&str, &str, Scorer)> = vec![(
        "first",
        "int8 exact search of the first model's embedding",
        Box::new(|e: &Vecs| {
            let r = g.identify(&e.first, 1)?;
            Ok((r.candidates[0].person, r.candidates[0].score, r.threshold))
        }),
    )];
    if both {
        let second_cal = Calibration::builtin_for(facegate_vision::SECOND_MODEL_ID)?;
        let fused_cal = Calibration::builtin_for(facegate_vision::FUSED_MODEL_ID)?;
        let fusion = Fusion::builtin()?;
        let t2 = second_cal.identification_threshold(a.fpir, n);
        let tf = fused_cal.identification_threshold(a.fpir, n);
        let sec = |x: &Vecs, y: &Vecs| match (&x.second, &y.second) {
            (Some(p), Some(q)) => dot(p, q),
            _ => -1.0,
        };
        let enrolled = &enrolled;
        scorers.push((
            "second",
            "exact f32 scan of the second model's embedding",
            Box::new(move |e: &Vecs| {
                let best = enrolled
                    .iter()
                    .map(|(p, v)| (*p, sec(e, v)))
                    .max_by(|x, y| x.1.total_cmp(&y.1))
                    .context("empty gallery")?;
                Ok((best.0, best.1, t2))
            }),
        ));
        let (g, k) = (&g, a.rerank.clamp(1, n.max(1)));
        scorers.push((
            "fused",
            "first model's top candidates re-ranked by the fused score",
            Box::new(move |e: &Vecs| {
                let r = g.identify(&e.first, k)?;
                let best = r
                    .candidates
                    .iter()
                    .map(|c| {
                        let v = enrolled[&c.person];
                        (c.person, fusion.score(dot(&e.first, &v.first), sec(e, v)))
                    })
                    .max_by(|x, y| x.1.total_cmp(&y.1))
                    .context("empty gallery")?;
                Ok((best.0, best.1, tf))
            }),
        ));
    }
    let mut rows = vec![];
    for (name, how, scorer) in &scorers {
        let mut rank1 = 0usize;
        let mut fn_miss = 0usize;
        let mut mated_scores = vec![];
        let mut threshold = 0.0;
        for (pid, e) in &mated {
            let (p, s, t) = scorer(e)?;
            threshold = t;
            let hit = p == *pid;
            rank1 += hit as usize;
            mated_scores.push(if hit { s } else { f32::NEG_INFINITY });
            if !(hit && s > t) {
                fn_miss += 1;
            }
        }
        let mut fp = 0usize;
        let mut nm_scores = vec![];
        for e in &non_mated {
            let (_, s, t) = scorer(e)?;
            nm_scores.push(s);
            fp += (s > t) as usize;
        }
        // Oracle figure: the threshold chosen on these very non-mated scores for FPIR = target.
        nm_scores.sort_by(|x, y| y.total_cmp(x));
        let kq = ((a.fpir * nm_scores.len() as f64).floor() as usize).min(nm_scores.len() - 1);
        let oracle_t = nm_scores[kq];
        let oracle_fnir =
            mated_scores.iter().filter(|&&s| s <= oracle_t).count() as f64 / mated.len() as f64;
        rows.push(serde_json::json!({
            "model": name, "search": how, "threshold": threshold,
            "rank1": rank1 as f64 / mated.len() as f64,
            "fnir_at_target": fn_miss as f64 / mated.len() as f64,
            "fpir_measured": fp as f64 / non_mated.len() as f64, "false_positives": fp,
            "oracle_threshold": oracle_t, "fnir_at_oracle_threshold": oracle_fnir,
        }));
    }
    let last = rows.last().cloned().unwrap_or_default();
    let out = serde_json::json!({
        "people": per.len(), "images": all.len(), "embedded": emb.len(),
        "gallery": n, "mated_probes": mated.len(), "non_mated_probes": non_mated.len(),
        "target_fpir": a.fpir, "threshold": last["threshold"],
        "rank1": last["rank1"], "fnir_at_target": last["fnir_at_target"],
        "fpir_measured": last["fpir_measured"], "false_positives": last["false_positives"],
        "oracle_threshold": last["oracle_threshold"],
        "fnir_at_oracle_threshold": last["fnir_at_oracle_threshold"],
        "models": rows,
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
        "target FPIR {:.2} % at N={n}; FNIR and FPIR at the calibrated threshold",
        a.fpir * 100.0
    );
    println!(
        "{:<7} {:>10} {:>8} {:>8} {:>14} {:>12}  search",
        "model", "threshold", "rank-1", "FNIR", "FPIR measured", "oracle FNIR"
    );
    for r in &rows {
        println!(
            "{:<7} {:>10.4} {:>8.4} {:>8.4} {:>8.4} ({:>3}) {:>12.4}  {}",
            r["model"].as_str().unwrap_or_default(),
            r["threshold"].as_f64().unwrap_or(f64::NAN),
            r["rank1"].as_f64().unwrap_or(f64::NAN),
            r["fnir_at_target"].as_f64().unwrap_or(f64::NAN),
            r["fpir_measured"].as_f64().unwrap_or(f64::NAN),
            r["false_positives"].as_u64().unwrap_or(0),
            r["fnir_at_oracle_threshold"].as_f64().unwrap_or(f64::NAN),
            r["search"].as_str().unwrap_or_default(),
        );
    }
    Ok(())
}
