//! The in-memory gallery of one scenario and one embedding model: 1:1 verification,
//! 1:N identification with an open-set decision, exact and approximate search.

use crate::hnsw::{Hnsw, HnswParams};
use crate::idtable::IdTable;
use crate::kernels::{self, KernelKind};
use crate::planes::I8Planes;
use crate::template::{normalized, quantize_into};
use crate::topk::{Hit, TopK};
use crate::{Calibration, Encoding, Error, PersonId, ScenarioId, Template, TemplateId, Vector};
use rayon::prelude::*;
use std::sync::Arc;
use zeroize::Zeroize;

const DEAD: u32 = u32::MAX;
const NONE: u32 = u32::MAX;
/// Rows per parallel work item in exact scans.
const BLOCK: usize = 2048;

/// The best k-th score any worker of one scan has found (monotone, lock-free): an f32
/// kept as u32 bits mapped so that integer order is float order.
struct SharedFloor(std::sync::atomic::AtomicU32);

impl SharedFloor {
    fn new() -> Self {
        SharedFloor(std::sync::atomic::AtomicU32::new(Self::key(
            f32::NEG_INFINITY,
        )))
    }
    fn key(f: f32) -> u32 {
        let b = f.to_bits();
        if b & 0x8000_0000 != 0 {
            !b
        } else {
            b | 0x8000_0000
        }
    }
    fn get(&self) -> f32 {
        let k = self.0.load(std::sync::atomic::Ordering::Relaxed);
        f32::from_bits(if k & 0x8000_0000 != 0 {
            k & 0x7fff_ffff
        } else {
            !k
        })
    }
    fn raise(&self, f: f32) {
        if !f.is_nan() {
            self.0
                .fetch_max(Self::key(f), std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Per-row scratch of an int8 scan (score bounds), reused across
/// queries. It holds no vector data.
#[derive(Default)]
struct ScanScratch {
    ub: Vec<f32>,
}

/// Decoded int8 rows of one block; wiped when the worker is done with it.
#[derive(Default)]
struct Scratch(Vec<i8>);

impl Drop for Scratch {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// How a gallery stores and searches vectors.
#[derive(Clone, Debug)]
pub struct GalleryOptions {
    /// In-memory vector encoding: `Int8` (≈ 0.55 kB per template, default) or `F32`.
    pub encoding: Encoding,
    /// Worker threads for searches (default 2).
    pub threads: usize,
    /// Open-set target: false-positive identification rate for `identify` (default 0.01).
    pub target_fpir: f64,
    /// Per-comparison false-match rate for `verify` (default 1e-4). With several templates
    /// per person, the threshold is set for `verify_fmr / templates` per comparison.
    pub verify_fmr: f64,
    /// Kernel choice (default: detected at run time).
    pub kernel: KernelKind,
}

impl Default for GalleryOptions {
    fn default() -> Self {
        GalleryOptions {
            encoding: Encoding::Int8,
            threads: 2,
            target_fpir: 0.01,
            verify_fmr: 1e-4,
            kernel: kernels::detected(),
        }
    }
}

/// One search result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub person: PersonId,
    pub template: TemplateId,
    /// Cosine similarity (for int8, computed from the quantised vectors).
    pub score: f32,
}

/// The open-set answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// The best candidate scored above the threshold.
    Known { person: PersonId, score: f32 },
    /// Nobody in the gallery scored above the threshold: do not guess.
    Unknown,
}

/// Result of [`Gallery::identify`].
#[derive(Clone, Debug, PartialEq)]
pub struct Identification {
    /// Best candidates, one per person, best first (returned even when `Unknown`).
    pub candidates: Vec<Candidate>,
    pub decision: Decision,
    /// The score the best candidate had to exceed.
    pub threshold: f32,
    /// Per-comparison false-match rate behind `threshold`.
    pub fmr: f64,
    /// Target false-positive identification rate.
    pub fpir: f64,
    /// Templates searched.
    pub gallery_size: usize,
    /// The decision's score and threshold are the fused log-odds of a
    /// [`crate::FusedGallery`] (else the first model's cosine).
    pub fused: bool,
}

/// Result of [`Gallery::verify`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    pub person: PersonId,
    /// Best score over the person's templates (max fusion).
    pub score: f32,
    pub threshold: f32,
    /// Per-comparison FMR behind `threshold`.
    pub fmr: f64,
    pub templates_compared: usize,
    /// `score > threshold`.
    pub accepted: bool,
    /// `score` and `threshold` are the fused log-odds of a
    /// [`crate::FusedGallery`] (else the first model's cosine).
    pub fused: bool,
}

/// Search method for [`Gallery::search_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    /// HNSW if built, else exact.
    Auto,
    /// Exact scan over all templates.
    Exact,
    /// HNSW with this `ef` (exact scores for the final ranking).
    Ann { ef: usize },
}

struct PersonEntry {
    id: PersonId,
    head: u32,
    count: u32,
}

/// A prepared query in the gallery's encoding.
pub(crate) enum Query {
    F32(Vec<f32>),
    /// Int8 values (held inside the plane query, which wipes them on drop) and scale.
    I8 {
        scale: f32,
        pq: crate::planes::PlaneQuery,
    },
}

impl Drop for Query {
    fn drop(&mut self) {
        match self {
            Query::F32(v) => v.zeroize(),
            Query::I8 { .. } => {}
        }
    }
}

/// Templates of one scenario and one model, held in memory for matching.
///
/// Vectors live in one contiguous array (int8 + one f32 scale, or f32); removal wipes
/// the vector at once and frees its slot for reuse (no rebuild). Persist with
/// [`Gallery::save_sealed`]; nothing is ever written in the clear.
pub struct Gallery {
    scenario: ScenarioId,
    model_id: String,
    dim: usize,
    opts: GalleryOptions,
    calibration: Calibration,
    pool: Arc<rayon::ThreadPool>,
    scratch: std::sync::Mutex<Vec<ScanScratch>>,
    // per slot
    ids: Vec<TemplateId>,
    person_of: Vec<u32>,
    next_of: Vec<u32>,
    /// Int8 vectors as two nibble planes (see `planes`): exact scans read half the bytes.
    v_i8: I8Planes,
    v_scale: Vec<f32>,
    v_f32: Vec<f32>,
    free: Vec<u32>,
    live: usize,
    // per person
    persons: Vec<PersonEntry>,
    id_index: IdTable,
    person_index: IdTable,
    hnsw: Option<Hnsw>,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Gallery(scenario {}, model {}, {} templates of {} people, {:?})",
            self.scenario,
            self.model_id,
            self.live,
            self.persons.len(),
            self.opts.encoding
        )
    }
}

impl Drop for Gallery {
    fn drop(&mut self) {
        self.v_i8.zeroize_all();
        self.v_f32.zeroize();
        self.v_scale.zeroize();
    }
}

impl Gallery {
    /// An empty gallery for `scenario` holding `dim`-dimensional vectors of `model_id`.
    /// The calibration must be for the same model.
    pub fn new(
        scenario: ScenarioId,
        model_id: &str,
        dim: usize,
        calibration: Calibration,
        opts: GalleryOptions,
    ) -> Result<Self, Error> {
        if calibration.model_id() != model_id {
            return Err(Error::ModelMismatch {
                expected: model_id.to_string(),
                got: format!("calibration for {}", calibration.model_id()),
            });
        }
        if dim == 0 || dim > u16::MAX as usize {
            return Err(Error::InvalidVector(format!(
                "dimension {dim} out of range"
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads.max(1))
            .thread_name(|i| format!("gallery-{i}"))
            .build()
            .map_err(|e| Error::Io {
                path: "<thread pool>".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        Ok(Gallery {
            scenario,
            model_id: model_id.to_string(),
            dim,
            opts,
            calibration,
            pool: Arc::new(pool),
            scratch: Default::default(),
            ids: vec![],
            person_of: vec![],
            next_of: vec![],
            v_i8: I8Planes::new(dim),
            v_scale: vec![],
            v_f32: vec![],
            free: vec![],
            live: 0,
            persons: vec![],
            id_index: IdTable::default(),
            person_index: IdTable::default(),
            hnsw: None,
        })
    }

    pub fn scenario(&self) -> ScenarioId {
        self.scenario
    }
    pub fn model_id(&self) -> &str {
        &self.model_id
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn options(&self) -> &GalleryOptions {
        &self.opts
    }
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }
    /// Number of templates.
    pub fn len(&self) -> usize {
        self.live
    }
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
    /// Number of distinct people.
    pub fn people(&self) -> usize {
        self.persons.len()
    }
    /// Whether an HNSW index is built.
    pub fn has_ann(&self) -> bool {
        self.hnsw.is_some()
    }
    /// Whether the template is in the gallery.
    pub fn contains(&self, id: TemplateId) -> bool {
        self.slot_of(id).is_some()
    }
    /// Template ids of a person.
    pub fn templates_of(&self, person: PersonId) -> Vec<TemplateId> {
        self.person_slots(person)
            .into_iter()
            .map(|s| self.ids[s as usize])
            .collect()
    }

    /// Bytes of memory held by the gallery (vectors, ids, indexes, HNSW graph).
    pub fn memory_bytes(&self) -> usize {
        self.ids.capacity() * 16
            + self.person_of.capacity() * 4
            + self.next_of.capacity() * 4
            + self.v_i8.memory_bytes()
            + self.scan_scratch_bytes()
            + self.v_scale.capacity() * 4
            + self.v_f32.capacity() * 4
            + self.free.capacity() * 4
            + self.persons.capacity() * std::mem::size_of::<PersonEntry>()
            + self.id_index.memory_bytes()
            + self.person_index.memory_bytes()
            + self.hnsw.as_ref().map_or(0, |h| h.memory_bytes())
    }

    /// Per-row scratch of int8 scans (4 bytes per slot): what the pool holds, and at
    /// least what the first query will allocate.
    fn scan_scratch_bytes(&self) -> usize {
        if self.opts.encoding != Encoding::Int8 {
            return 0;
        }
        let pooled = self
            .scratch
            .lock()
            .map_or(0, |s| s.iter().map(|x| x.ub.capacity() * 4).sum());
        pooled.max(self.ids.len() * 4)
    }

    /// Bytes held by the HNSW graph alone (0 without one).
    pub fn ann_memory_bytes(&self) -> usize {
        self.hnsw.as_ref().map_or(0, |h| h.memory_bytes())
    }

    /// Reserves room for `additional` more templates.
    pub fn reserve(&mut self, additional: usize) {
        let n = self.ids.len() + additional;
        self.ids.reserve_exact(additional);
        self.person_of.reserve_exact(additional);
        self.next_of.reserve_exact(additional);
        match self.opts.encoding {
            Encoding::Int8 => {
                self.v_i8.reserve(additional);
                self.v_scale.reserve_exact(additional);
            }
            Encoding::F32 => self.v_f32.reserve_exact(additional * self.dim),
        }
        let ids = &self.ids;
        self.id_index.reserve(n, |v| ids[v as usize].as_bytes());
    }

    fn slot_of(&self, id: TemplateId) -> Option<u32> {
        let ids = &self.ids;
        self.id_index
            .get(id.as_bytes(), |v| ids[v as usize].as_bytes())
    }

    fn person_idx(&self, person: PersonId) -> Option<u32> {
        let ps = &self.persons;
        self.person_index
            .get(person.as_bytes(), |v| ps[v as usize].id.as_bytes())
    }

    fn person_slots(&self, person: PersonId) -> Vec<u32> {
        let mut out = vec![];
        if let Some(p) = self.person_idx(person) {
            let mut s = self.persons[p as usize].head;
            while s != NONE {
                out.push(s);
                s = self.next_of[s as usize];
            }
        }
        out
    }

    /// The top `k` people (each by their best template) for a prepared query.
    pub(crate) fn people_for(&self, q: &Query, k: usize) -> Vec<Candidate> {
        self.to_candidates(self.run(q, k.max(1), Search::Auto, true).into_vec())
    }

    /// Every template of `person` with its score against the prepared query
    /// (the re-rank of [`crate::FusedGallery`] reads these).
    pub(crate) fn person_template_scores(
        &self,
        person: PersonId,
        q: &Query,
    ) -> Vec<(TemplateId, f32)> {
        self.person_slots(person)
            .into_iter()
            .map(|s| (self.ids[s as usize], self.query_sim(q, s)))
            .collect()
    }

    /// Adds a template (its vector is converted to the gallery's encoding). Fails if the
    /// scenario, model or dimension differ, or the id is already present.
    pub fn add(&mut self, t: &Template) -> Result<(), Error> {
        if t.scenario != self.scenario {
            return Err(Error::ScenarioMismatch);
        }
        if t.model_id != self.model_id {
            return Err(Error::ModelMismatch {
                expected: self.model_id.clone(),
                got: t.model_id.clone(),
            });
        }
        if t.vector.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: t.vector.dim(),
            });
        }
        if self.contains(t.id) {
            return Err(Error::DuplicateTemplate(t.id));
        }
        // Person entry.
        let pidx = match self.person_idx(t.person) {
            Some(p) => p,
            None => {
                let p = self.persons.len() as u32;
                self.persons.push(PersonEntry {
                    id: t.person,
                    head: NONE,
                    count: 0,
                });
                let ps = &self.persons;
                self.person_index
                    .insert(t.person.as_bytes(), p, |v| ps[v as usize].id.as_bytes());
                p
            }
        };
        // Slot: reuse a freed one unless an HNSW graph refers to slots.
        let slot = match (self.hnsw.is_none(), self.free.pop()) {
            (true, Some(s)) => s,
            (_, popped) => {
                if let Some(s) = popped {
                    self.free.push(s);
                }
                let s = self.ids.len() as u32;
                self.ids.push(t.id);
                self.person_of.push(DEAD);
                self.next_of.push(NONE);
                match self.opts.encoding {
                    Encoding::Int8 => {
                        self.v_i8.push_zero();
                        self.v_scale.push(0.0);
                    }
                    Encoding::F32 => self.v_f32.resize(self.v_f32.len() + self.dim, 0.0),
                }
                s
            }
        };
        let d = self.dim;
        let su = slot as usize;
        match (self.opts.encoding, &t.vector) {
            (Encoding::Int8, Vector::Int8 { scale, data }) => {
                self.v_i8.set(su, data);
                self.v_scale[su] = *scale;
            }
            (Encoding::Int8, Vector::F32(v)) => {
                let mut n = normalized(v)?;
                let mut q = vec![0i8; d];
                self.v_scale[su] = quantize_into(&n, &mut q);
                self.v_i8.set(su, &q);
                q.zeroize();
                n.zeroize();
            }
            (Encoding::F32, v) => {
                let mut f = v.to_f32();
                let mut n = normalized(&f)?;
                self.v_f32[su * d..(su + 1) * d].copy_from_slice(&n);
                f.zeroize();
                n.zeroize();
            }
        }
        self.ids[su] = t.id;
        self.person_of[su] = pidx;
        let pe = &mut self.persons[pidx as usize];
        self.next_of[su] = pe.head;
        pe.head = slot;
        pe.count += 1;
        let ids = &self.ids;
        self.id_index
            .insert(t.id.as_bytes(), slot, |v| ids[v as usize].as_bytes());
        self.live += 1;
        if let Some(mut h) = self.hnsw.take() {
            h.insert_one(slot, &|a, b| self.pair_sim(a, b));
            self.hnsw = Some(h);
        }
        Ok(())
    }

    /// Removes a template and wipes its vector. Returns whether it was present.
    pub fn remove(&mut self, id: TemplateId) -> bool {
        let ids = &self.ids;
        let Some(slot) = self
            .id_index
            .remove(id.as_bytes(), |v| ids[v as usize].as_bytes())
        else {
            return false;
        };
        let su = slot as usize;
        let d = self.dim;
        let pidx = self.person_of[su];
        // Unlink from the person's chain.
        let pe = &mut self.persons[pidx as usize];
        if pe.head == slot {
            pe.head = self.next_of[su];
        } else {
            let mut s = pe.head;
            while s != NONE {
                let nx = self.next_of[s as usize];
                if nx == slot {
                    self.next_of[s as usize] = self.next_of[su];
                    break;
                }
                s = nx;
            }
        }
        pe.count -= 1;
        if pe.count == 0 {
            self.remove_person_entry(pidx);
        }
        // Wipe.
        match self.opts.encoding {
            Encoding::Int8 => {
                self.v_i8.wipe(su);
                self.v_scale[su] = 0.0;
            }
            Encoding::F32 => self.v_f32[su * d..(su + 1) * d].zeroize(),
        }
        self.person_of[su] = DEAD;
        self.next_of[su] = NONE;
        self.ids[su] = TemplateId::from_bytes([0; 16]);
        self.free.push(slot);
        self.live -= 1;
        true
    }

    /// Removes every template of a person; returns how many.
    pub fn remove_person(&mut self, person: PersonId) -> usize {
        let slots = self.person_slots(person);
        for &s in &slots {
            let id = self.ids[s as usize];
            self.remove(id);
        }
        slots.len()
    }

    fn remove_person_entry(&mut self, pidx: u32) {
        let ps = &self.persons;
        let pid = ps[pidx as usize].id;
        self.person_index
            .remove(pid.as_bytes(), |v| ps[v as usize].id.as_bytes());
        let last = self.persons.len() as u32 - 1;
        if pidx != last {
            // Move the last person into pidx.
            let moved_id = self.persons[last as usize].id;
            let mut s = self.persons[last as usize].head;
            while s != NONE {
                self.person_of[s as usize] = pidx;
                s = self.next_of[s as usize];
            }
            // Re-point the index while the moved entry is still at `last`.
            let ps = &self.persons;
            self.person_index
                .set(moved_id.as_bytes(), pidx, |v| ps[v as usize].id.as_bytes());
            self.persons.swap_remove(pidx as usize);
        } else {
            self.persons.pop();
        }
    }

    /// Validates a probe and prepares it in the gallery's encoding.
    pub(crate) fn prepare(&self, probe: &[f32]) -> Result<Query, Error> {
        if probe.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: probe.len(),
            });
        }
        let mut n = normalized(probe)?;
        Ok(match self.opts.encoding {
            Encoding::F32 => Query::F32(std::mem::take(&mut n)),
            Encoding::Int8 => {
                let mut q = vec![0i8; self.dim];
                let scale = quantize_into(&n, &mut q);
                n.zeroize();
                let pq = self.v_i8.prepare(&q);
                q.zeroize();
                Query::I8 { scale, pq }
            }
        })
    }

    /// Similarity of a prepared query to one slot.
    fn query_sim(&self, q: &Query, slot: u32) -> f32 {
        let d = self.dim;
        let s = slot as usize;
        match q {
            Query::I8 { scale, pq } => {
                self.v_i8.dot(self.opts.kernel, pq, s) as f32 * scale * self.v_scale[s]
            }
            Query::F32(v) => {
                let mut o = [0f32];
                kernels::dots_f32(
                    self.opts.kernel,
                    v,
                    &self.v_f32[s * d..(s + 1) * d],
                    d,
                    &mut o,
                );
                o[0]
            }
        }
    }

    /// Similarity between two stored slots.
    fn pair_sim(&self, a: u32, b: u32) -> f32 {
        let d = self.dim;
        let (a, b) = (a as usize, b as usize);
        match self.opts.encoding {
            Encoding::Int8 => {
                self.v_i8.dot_rows(self.opts.kernel, a, b) as f32
                    * self.v_scale[a]
                    * self.v_scale[b]
            }
            Encoding::F32 => {
                let mut o = [0f32];
                kernels::dots_f32(
                    self.opts.kernel,
                    &self.v_f32[a * d..(a + 1) * d],
                    &self.v_f32[b * d..(b + 1) * d],
                    d,
                    &mut o,
                );
                o[0]
            }
        }
    }

    fn key(&self, slot: u32, by_person: bool) -> u32 {
        if by_person {
            self.person_of[slot as usize]
        } else {
            slot
        }
    }

    fn to_candidates(&self, hits: Vec<Hit>) -> Vec<Candidate> {
        hits.into_iter()
            .map(|h| Candidate {
                person: self.persons[self.person_of[h.slot as usize] as usize].id,
                template: self.ids[h.slot as usize],
                score: h.score,
            })
            .collect()
    }

    /// Exact scan of all slots.
    fn scan_exact(&self, q: &Query, k: usize, by_person: bool) -> TopK {
        match q {
            Query::I8 { scale, pq } => self.scan_exact_i8(pq, *scale, k, by_person),
            Query::F32(v) => self.scan_exact_f32(v, k, by_person),
        }
    }

    /// Exact int8 scan in two phases over contiguous row ranges (a few per thread):
    ///
    /// 1. stream the high nibble plane, keeping an upper bound on each row's score (4
    ///    bytes per row of scratch) and the rows with the largest bounds;
    /// 2. score those rows exactly, which sets a floor close to the final k-th best, then
    ///    score exactly only the rows whose bound beats the floor (the floor rises as
    ///    workers find better rows and is shared through an atomic).
    ///
    /// The result equals a full int8 scan; rows are skipped only when their bound proves
    /// they cannot enter the top k.
    fn scan_exact_i8(
        &self,
        pq: &crate::planes::PlaneQuery,
        scale: f32,
        k: usize,
        by_person: bool,
    ) -> TopK {
        let n = self.ids.len();
        if n == 0 {
            return TopK::new(k);
        }
        let kern = self.opts.kernel;
        let parts = (self.pool.current_num_threads() * 4).clamp(1, n.div_ceil(BLOCK));
        let per = n.div_ceil(parts).div_ceil(BLOCK) * BLOCK;
        let mut scratch = self
            .scratch
            .lock()
            .map(|mut s| s.pop())
            .unwrap_or(None)
            .unwrap_or_default();
        scratch.ub.resize(n, 0.0);
        let seeds = k.saturating_mul(4).saturating_add(16);
        let exact = |r: usize| self.v_i8.dot(kern, pq, r) as f32 * scale * self.v_scale[r];
        let ub = &mut scratch.ub;
        let best_bounds: TopK = self.pool.install(|| {
            ub.par_chunks_mut(per)
                .enumerate()
                .map(|(p, ub)| {
                    let mut best = TopK::new(seeds);
                    let mut hd = vec![0i32; BLOCK];
                    for (c, ub) in ub.chunks_mut(BLOCK).enumerate() {
                        let r0 = p * per + c * BLOCK;
                        let rows = ub.len();
                        let hd = &mut hd[..rows];
                        self.v_i8.dots_hi(kern, pq, r0, hd);
                        let max = self.v_i8.score_bounds(
                            pq,
                            r0,
                            hd,
                            scale,
                            &self.v_scale[r0..r0 + rows],
                            ub,
                        );
                        let mut floor = best.floor();
                        if max <= floor {
                            continue;
                        }
                        for (i, &u) in ub.iter().enumerate() {
                            if u > floor && self.person_of[r0 + i] != DEAD {
                                let slot = (r0 + i) as u32;
                                best.push(Hit {
                                    score: u,
                                    key: slot,
                                    slot,
                                });
                                floor = best.floor();
                            }
                        }
                    }
                    best
                })
                .reduce(|| TopK::new(seeds), TopK::merge)
        });
        // Exact scores of the most promising rows: the starting floor.
        let mut seed = TopK::new(k);
        for h in best_bounds.into_vec() {
            let r = h.slot as usize;
            seed.push(Hit {
                score: exact(r),
                key: self.key(h.slot, by_person),
                slot: h.slot,
            });
        }
        let shared = SharedFloor::new();
        shared.raise(seed.floor());
        let ub = &*ub;
        let top = self.pool.install(|| {
            ub.par_chunks(per)
                .enumerate()
                .map(|(p, ub)| {
                    let mut top = TopK::new(k);
                    let mut floor = shared.get();
                    // Rows that beat the starting floor (few), then their low planes with
                    // prefetch a few rows ahead: these reads are scattered.
                    let base = p * per;
                    let cands: Vec<usize> = ub
                        .iter()
                        .enumerate()
                        .filter(|&(i, &u)| u > floor && self.person_of[base + i] != DEAD)
                        .map(|(i, _)| base + i)
                        .collect();
                    const AHEAD: usize = 4;
                    for &r in cands.iter().take(AHEAD) {
                        self.v_i8.prefetch_row(r);
                    }
                    for (j, &r) in cands.iter().enumerate() {
                        if let Some(&ahead) = cands.get(j + AHEAD) {
                            self.v_i8.prefetch_row(ahead);
                        }
                        if ub[r - base] <= floor {
                            continue;
                        }
                        let s = exact(r);
                        if s > floor {
                            let slot = r as u32;
                            top.push(Hit {
                                score: s,
                                key: self.key(slot, by_person),
                                slot,
                            });
                            let f = top.floor();
                            if f > floor {
                                shared.raise(f);
                            }
                            floor = floor.max(f).max(shared.get());
                        }
                    }
                    top
                })
                .reduce(|| TopK::new(k), TopK::merge)
        });
        if let Ok(mut s) = self.scratch.lock() {
            s.push(scratch);
        }
        top.merge(seed)
    }

    fn scan_exact_f32(&self, v: &[f32], k: usize, by_person: bool) -> TopK {
        let n = self.ids.len();
        let d = self.dim;
        let nblocks = n.div_ceil(BLOCK);
        let kern = self.opts.kernel;
        self.pool.install(|| {
            (0..nblocks)
                .into_par_iter()
                .fold(
                    || (TopK::new(k), Vec::<f32>::new()),
                    |(mut top, mut bf), b| {
                        let r0 = b * BLOCK;
                        let r1 = (r0 + BLOCK).min(n);
                        let rows = r1 - r0;
                        bf.resize(rows, 0.0);
                        kernels::dots_f32(kern, v, &self.v_f32[r0 * d..r1 * d], d, &mut bf);
                        for (i, &s) in bf.iter().enumerate() {
                            if s > top.floor() && self.person_of[r0 + i] != DEAD {
                                let slot = (r0 + i) as u32;
                                top.push(Hit {
                                    score: s,
                                    key: self.key(slot, by_person),
                                    slot,
                                });
                            }
                        }
                        (top, bf)
                    },
                )
                .map(|(t, _)| t)
                .reduce(|| TopK::new(k), TopK::merge)
        })
    }

    fn scan_ann(&self, q: &Query, k: usize, ef: usize, by_person: bool) -> TopK {
        let h = self.hnsw.as_ref().expect("ann built");
        let cands = h.search(ef.max(k), &|s| self.query_sim(q, s));
        // Exact re-ranking of the candidate set, skipping removed slots.
        let mut top = TopK::new(k);
        for (_, slot) in cands {
            if self.person_of[slot as usize] == DEAD {
                continue;
            }
            let s = self.query_sim(q, slot);
            top.push(Hit {
                score: s,
                key: self.key(slot, by_person),
                slot,
            });
        }
        top
    }

    /// Top-`k` templates for a probe (exact, or HNSW when built), best first.
    pub fn search(&self, probe: &[f32], k: usize) -> Result<Vec<Candidate>, Error> {
        self.search_with(probe, k, Search::Auto)
    }

    /// Top-`k` templates with an explicit method.
    pub fn search_with(
        &self,
        probe: &[f32],
        k: usize,
        how: Search,
    ) -> Result<Vec<Candidate>, Error> {
        let q = self.prepare(probe)?;
        Ok(self.to_candidates(self.run(&q, k, how, false).into_vec()))
    }

    fn run(&self, q: &Query, k: usize, how: Search, by_person: bool) -> TopK {
        match (how, &self.hnsw) {
            (Search::Ann { ef }, Some(_)) => self.scan_ann(q, k, ef, by_person),
            (Search::Auto, Some(h)) => self.scan_ann(q, k, h.params().ef_search, by_person),
            _ => self.scan_exact(q, k, by_person),
        }
    }

    /// Exact top-`k` templates for many probes at once (`probes` holds `m × dim` values).
    /// Int8 galleries use a register-tiled int8 kernel; f32 galleries an sgemm
    /// (blocked matrix product). Same results as [`Search::Exact`] one by one.
    pub fn search_batch(&self, probes: &[f32], k: usize) -> Result<Vec<Vec<Candidate>>, Error> {
        let d = self.dim;
        if probes.is_empty() || !probes.len().is_multiple_of(d) {
            return Err(Error::DimensionMismatch {
                expected: d,
                got: probes.len(),
            });
        }
        let m = probes.len() / d;
        let n = self.ids.len();
        let kern = self.opts.kernel;
        let preps = probes
            .chunks_exact(d)
            .map(|p| self.prepare(p))
            .collect::<Result<Vec<_>, _>>()?;
        const BB: usize = 256; // rows per block (128 kB int8) – stays in L2
        let nblocks = n.div_ceil(BB);
        let tops: Vec<TopK> = match self.opts.encoding {
            Encoding::Int8 => {
                let mut qs: Vec<i8> = Vec::with_capacity(m * d);
                let mut qscale = Vec::with_capacity(m);
                for p in &preps {
                    if let Query::I8 { scale, pq } = p {
                        qs.extend_from_slice(pq.values());
                        qscale.push(*scale);
                    }
                }
                let abs: Vec<i8> = qs.iter().map(|x| x.abs()).collect();
                let r = self.pool.install(|| {
                    (0..nblocks)
                        .into_par_iter()
                        .fold(
                            || (vec![TopK::new(k); m], Vec::<i32>::new(), Scratch::default()),
                            |(mut tops, mut out, mut rows_i8), b| {
                                let r0 = b * BB;
                                let r1 = (r0 + BB).min(n);
                                let rows = r1 - r0;
                                out.resize(m * rows, 0);
                                // Unpack the block once (it stays in L2) for all m queries.
                                rows_i8.0.resize(rows * d, 0);
                                self.v_i8.decode_rows(r0, r1, &mut rows_i8.0);
                                kernels::batch_dots_i8(
                                    kern, &qs, &abs, m, &rows_i8.0, rows, d, &mut out,
                                );
                                for (j, top) in tops.iter_mut().enumerate() {
                                    let qsc = qscale[j];
                                    for (i, &dot) in
                                        out[j * rows..(j + 1) * rows].iter().enumerate()
                                    {
                                        let s = dot as f32 * qsc * self.v_scale[r0 + i];
                                        if s > top.floor() && self.person_of[r0 + i] != DEAD {
                                            let slot = (r0 + i) as u32;
                                            top.push(Hit {
                                                score: s,
                                                key: slot,
                                                slot,
                                            });
                                        }
                                    }
                                }
                                (tops, out, rows_i8)
                            },
                        )
                        .map(|(t, _, _)| t)
                        .reduce(
                            || vec![TopK::new(k); m],
                            |a, b| a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect(),
                        )
                });
                qs.zeroize();
                r
            }
            Encoding::F32 => {
                let mut qf = Vec::with_capacity(m * d);
                for p in &preps {
                    if let Query::F32(v) = p {
                        qf.extend_from_slice(v);
                    }
                }
                const FB: usize = 1024;
                let nb = n.div_ceil(FB);
                let r = self.pool.install(|| {
                    (0..nb)
                        .into_par_iter()
                        .fold(
                            || (vec![TopK::new(k); m], Vec::<f32>::new()),
                            |(mut tops, mut c), b| {
                                let r0 = b * FB;
                                let r1 = (r0 + FB).min(n);
                                let rows = r1 - r0;
                                c.resize(m * rows, 0.0);
                                // C (m × rows) = Q (m × d) · Bᵀ, B = rows × d row-major.
                                unsafe {
                                    matrixmultiply::sgemm(
                                        m,
                                        d,
                                        rows,
                                        1.0,
                                        qf.as_ptr(),
                                        d as isize,
                                        1,
                                        self.v_f32[r0 * d..].as_ptr(),
                                        1,
                                        d as isize,
                                        0.0,
                                        c.as_mut_ptr(),
                                        rows as isize,
                                        1,
                                    );
                                }
                                for (j, top) in tops.iter_mut().enumerate() {
                                    for (i, &s) in c[j * rows..(j + 1) * rows].iter().enumerate() {
                                        if s > top.floor() && self.person_of[r0 + i] != DEAD {
                                            let slot = (r0 + i) as u32;
                                            top.push(Hit {
                                                score: s,
                                                key: slot,
                                                slot,
                                            });
                                        }
                                    }
                                }
                                (tops, c)
                            },
                        )
                        .map(|(t, _)| t)
                        .reduce(
                            || vec![TopK::new(k); m],
                            |a, b| a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect(),
                        )
                });
                qf.zeroize();
                r
            }
        };
        Ok(tops
            .into_iter()
            .map(|t| self.to_candidates(t.into_vec()))
            .collect())
    }

    /// Builds an HNSW index over the current templates (in parallel on the gallery's
    /// threads). Later adds are inserted into it; removals are filtered out of results.
    pub fn build_ann(&mut self, params: HnswParams) {
        let slots: Vec<u32> = (0..self.ids.len() as u32)
            .filter(|&s| self.person_of[s as usize] != DEAD)
            .collect();
        let h = self
            .pool
            .install(|| Hnsw::build(self.ids.len(), &slots, params, &|a, b| self.pair_sim(a, b)));
        self.hnsw = Some(h);
    }

    /// Drops the HNSW index (searches become exact).
    pub fn drop_ann(&mut self) {
        self.hnsw = None;
    }

    /// 1:N identification with the open-set decision: the best candidate is `Known` only
    /// if its score exceeds the threshold for the target FPIR at this gallery size.
    pub fn identify(&self, probe: &[f32], k: usize) -> Result<Identification, Error> {
        self.identify_with(probe, k, Search::Auto)
    }

    /// [`Gallery::identify`] with an explicit search method.
    pub fn identify_with(
        &self,
        probe: &[f32],
        k: usize,
        how: Search,
    ) -> Result<Identification, Error> {
        let q = self.prepare(probe)?;
        let candidates = self.to_candidates(self.run(&q, k.max(1), how, true).into_vec());
        Ok(self.decide(candidates))
    }

    /// The open-set decision for ranked candidates against this gallery.
    fn decide(&self, candidates: Vec<Candidate>) -> Identification {
        let n = self.live.max(1);
        let fpir = self.opts.target_fpir;
        let fmr = Calibration::fmr_for_fpir(fpir, n);
        let threshold = self.calibration.threshold(fmr);
        let decision = match candidates.first() {
            Some(c) if c.score > threshold => Decision::Known {
                person: c.person,
                score: c.score,
            },
            _ => Decision::Unknown,
        };
        Identification {
            candidates,
            decision,
            threshold,
            fmr,
            fpir,
            gallery_size: self.live,
            fused: false,
        }
    }

    /// 1:1 verification of a probe against all templates of `person` (max fusion).
    pub fn verify(&self, person: PersonId, probe: &[f32]) -> Result<Match, Error> {
        let slots = self.person_slots(person);
        if slots.is_empty() {
            return Err(Error::UnknownPerson(person));
        }
        let q = self.prepare(probe)?;
        let score = slots
            .iter()
            .map(|&s| self.query_sim(&q, s))
            .fold(f32::NEG_INFINITY, f32::max);
        let fmr = Calibration::fmr_for_fpir(self.opts.verify_fmr, slots.len());
        let threshold = self.calibration.threshold(fmr);
        Ok(Match {
            person,
            score,
            threshold,
            fmr,
            templates_compared: slots.len(),
            accepted: score > threshold,
            fused: false,
        })
    }

    /// The stored template (in the gallery's encoding) for sealing.
    pub fn template(&self, id: TemplateId) -> Option<Template> {
        let s = self.slot_of(id)? as usize;
        let d = self.dim;
        let vector = match self.opts.encoding {
            Encoding::Int8 => {
                let mut data = vec![0i8; d];
                self.v_i8.get(s, &mut data);
                Vector::Int8 {
                    scale: self.v_scale[s],
                    data,
                }
            }
            Encoding::F32 => Vector::F32(self.v_f32[s * d..(s + 1) * d].to_vec()),
        };
        Some(Template {
            id,
            person: self.persons[self.person_of[s] as usize].id,
            scenario: self.scenario,
            model_id: self.model_id.clone(),
            vector,
        })
    }

    /// All template ids, in slot order.
    pub fn template_ids(&self) -> Vec<TemplateId> {
        (0..self.ids.len())
            .filter(|&s| self.person_of[s] != DEAD)
            .map(|s| self.ids[s])
            .collect()
    }
}
