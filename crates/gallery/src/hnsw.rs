//! HNSW (Malkov & Yashunin) over gallery slots, built in parallel.
//!
//! The graph stores only neighbour ids; similarities come from the gallery (int8 or f32
//! dot products), so the index adds about `2·m·4` bytes per template. Neighbour lists
//! are atomics guarded by striped locks for writers (as in hnswlib), so inserts run on
//! all the gallery's threads. Final rankings are recomputed exactly by the gallery.

use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, RwLock};

const EMPTY: u32 = u32::MAX;
const NOT_IN_GRAPH: u8 = u8::MAX;
const NLOCKS: usize = 4096;

/// HNSW parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on upper layers (twice this on layer 0). Default 16.
    pub m: usize,
    /// Candidate list size while building. Default 100.
    pub ef_construction: usize,
    /// Candidate list size while searching (raise for recall). Default 64.
    pub ef_search: usize,
    /// Seed for level assignment (reproducible builds).
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 100,
            ef_search: 64,
            seed: 0x5eed,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
struct Sc(f32, u32);
impl Eq for Sc {}
impl PartialOrd for Sc {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sc {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

thread_local! {
    static VISITED: RefCell<(Vec<u32>, u32)> = const { RefCell::new((Vec::new(), 0)) };
}

pub(crate) struct Hnsw {
    params: HnswParams,
    ml: f64,
    levels: Vec<u8>,
    layer0: Vec<AtomicU32>,
    upper: HashMap<u32, Box<[AtomicU32]>>,
    locks: Vec<Mutex<()>>,
    entry: RwLock<(u32, u8)>,
    rng: rand::rngs::StdRng,
}

type PairSim<'a> = dyn Fn(u32, u32) -> f32 + Sync + 'a;

impl Hnsw {
    fn cap0(&self) -> usize {
        2 * self.params.m
    }

    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    pub fn memory_bytes(&self) -> usize {
        self.levels.capacity()
            + self.layer0.capacity() * 4
            + self
                .upper
                .values()
                .map(|b| b.len() * 4 + 16 + 8)
                .sum::<usize>()
            + self.upper.capacity()
            + NLOCKS * std::mem::size_of::<Mutex<()>>()
    }

    fn empty(n_slots: usize, params: HnswParams) -> Self {
        let params = HnswParams {
            m: params.m.clamp(2, 128),
            ef_construction: params.ef_construction.max(params.m),
            ef_search: params.ef_search.max(1),
            seed: params.seed,
        };
        let cap0 = 2 * params.m;
        Hnsw {
            ml: 1.0 / (params.m as f64).ln(),
            levels: vec![NOT_IN_GRAPH; n_slots],
            layer0: (0..n_slots * cap0).map(|_| AtomicU32::new(EMPTY)).collect(),
            upper: HashMap::new(),
            locks: (0..NLOCKS).map(|_| Mutex::new(())).collect(),
            entry: RwLock::new((EMPTY, 0)),
            rng: rand::rngs::StdRng::seed_from_u64(params.seed),
            params,
        }
    }

    fn random_level(&mut self) -> u8 {
        let u: f64 = self.rng.gen_range(f64::MIN_POSITIVE..1.0);
        ((-u.ln() * self.ml).floor() as usize).min(32) as u8
    }

    fn links(&self, node: u32, level: u8) -> &[AtomicU32] {
        if level == 0 {
            let c = self.cap0();
            &self.layer0[node as usize * c..(node as usize + 1) * c]
        } else {
            let m = self.params.m;
            let l = level as usize - 1;
            &self.upper[&node][l * m..(l + 1) * m]
        }
    }

    /// Builds over `slots` (ids < `n_slots`) in parallel on the current rayon pool.
    pub fn build(n_slots: usize, slots: &[u32], params: HnswParams, sim: &PairSim<'_>) -> Self {
        let mut h = Self::empty(n_slots, params);
        for &s in slots {
            let l = h.random_level();
            h.levels[s as usize] = l;
            if l > 0 {
                let b: Box<[AtomicU32]> = (0..l as usize * h.params.m)
                    .map(|_| AtomicU32::new(EMPTY))
                    .collect();
                h.upper.insert(s, b);
            }
        }
        if let Some((&first, rest)) = slots.split_first() {
            h.insert(first, sim);
            let hr = &h;
            rest.par_iter()
                .with_min_len(64)
                .for_each(|&s| hr.insert(s, sim));
        }
        h
    }

    /// Inserts one more slot (single-threaded).
    pub fn insert_one(&mut self, slot: u32, sim: &PairSim<'_>) {
        let s = slot as usize;
        if s >= self.levels.len() {
            self.levels.resize(s + 1, NOT_IN_GRAPH);
            let c = self.cap0();
            self.layer0
                .resize_with((s + 1) * c, || AtomicU32::new(EMPTY));
        }
        let l = self.random_level();
        self.levels[s] = l;
        if l > 0 {
            let b: Box<[AtomicU32]> = (0..l as usize * self.params.m)
                .map(|_| AtomicU32::new(EMPTY))
                .collect();
            self.upper.insert(slot, b);
        }
        self.insert(slot, sim);
    }

    fn insert(&self, node: u32, sim: &PairSim<'_>) {
        let level = self.levels[node as usize];
        let (ep, maxl) = {
            let e = self.entry.read().unwrap();
            *e
        };
        if ep == EMPTY {
            let mut e = self.entry.write().unwrap();
            if e.0 == EMPTY {
                *e = (node, level);
                return;
            }
        }
        let (ep, maxl) = if ep == EMPTY {
            *self.entry.read().unwrap()
        } else {
            (ep, maxl)
        };
        let q = |x: u32| sim(node, x);
        let mut cur = Sc(q(ep), ep);
        for l in ((level.saturating_add(1))..=maxl).rev() {
            cur = self.greedy(&q, cur, l);
        }
        let mut eps = vec![cur];
        for l in (0..=level.min(maxl)).rev() {
            let w = self.search_layer(&q, &eps, self.params.ef_construction, l);
            let cap = if l == 0 { self.cap0() } else { self.params.m };
            let sel = select(&w, self.params.m, sim);
            {
                let _g = self.locks[node as usize % NLOCKS].lock().unwrap();
                let links = self.links(node, l);
                for (i, a) in links.iter().enumerate() {
                    a.store(sel.get(i).map_or(EMPTY, |s| s.1), Relaxed);
                }
            }
            for s in &sel {
                self.add_link(s.1, node, s.0, l, cap, sim);
            }
            eps = w;
        }
        if level > maxl {
            let mut e = self.entry.write().unwrap();
            if level > e.1 {
                *e = (node, level);
            }
        }
    }

    fn add_link(&self, at: u32, new: u32, s_new: f32, l: u8, cap: usize, sim: &PairSim<'_>) {
        let _g = self.locks[at as usize % NLOCKS].lock().unwrap();
        let links = self.links(at, l);
        for a in links.iter() {
            let v = a.load(Relaxed);
            if v == new {
                return;
            }
            if v == EMPTY {
                a.store(new, Relaxed);
                return;
            }
        }
        // Full: re-select among the old links and the new one (heuristic).
        let mut c: Vec<Sc> = links
            .iter()
            .map(|a| a.load(Relaxed))
            .map(|v| Sc(sim(at, v), v))
            .collect();
        c.push(Sc(s_new, new));
        c.sort_by(|a, b| b.cmp(a));
        let sel = select(&c, cap, sim);
        for (i, a) in links.iter().enumerate() {
            a.store(sel.get(i).map_or(EMPTY, |s| s.1), Relaxed);
        }
    }

    fn greedy(&self, q: &dyn Fn(u32) -> f32, mut cur: Sc, l: u8) -> Sc {
        loop {
            let mut changed = false;
            for a in self.links(cur.1, l) {
                let v = a.load(Relaxed);
                if v == EMPTY {
                    break;
                }
                let s = q(v);
                if s > cur.0 {
                    cur = Sc(s, v);
                    changed = true;
                }
            }
            if !changed {
                return cur;
            }
        }
    }

    /// Beam search on one layer; returns up to `ef` nodes, best first.
    fn search_layer(&self, q: &dyn Fn(u32) -> f32, eps: &[Sc], ef: usize, l: u8) -> Vec<Sc> {
        VISITED.with(|vis| {
            let mut vis = vis.borrow_mut();
            let n = self.levels.len();
            if vis.0.len() < n {
                vis.0.resize(n, 0);
            }
            vis.1 = vis.1.wrapping_add(1);
            if vis.1 == 0 {
                vis.0.fill(0);
                vis.1 = 1;
            }
            let stamp = vis.1;
            let mut cand: BinaryHeap<Sc> = BinaryHeap::new();
            let mut res: BinaryHeap<std::cmp::Reverse<Sc>> = BinaryHeap::new();
            for &e in eps {
                vis.0[e.1 as usize] = stamp;
                cand.push(e);
                res.push(std::cmp::Reverse(e));
            }
            while res.len() > ef {
                res.pop();
            }
            while let Some(c) = cand.pop() {
                let worst = res.peek().map_or(f32::NEG_INFINITY, |r| r.0 .0);
                if c.0 < worst && res.len() >= ef {
                    break;
                }
                for a in self.links(c.1, l) {
                    let v = a.load(Relaxed);
                    if v == EMPTY {
                        break;
                    }
                    if vis.0[v as usize] == stamp {
                        continue;
                    }
                    vis.0[v as usize] = stamp;
                    let s = q(v);
                    let worst = res.peek().map_or(f32::NEG_INFINITY, |r| r.0 .0);
                    if res.len() < ef || s > worst {
                        cand.push(Sc(s, v));
                        res.push(std::cmp::Reverse(Sc(s, v)));
                        if res.len() > ef {
                            res.pop();
                        }
                    }
                }
            }
            let mut out: Vec<Sc> = res.into_iter().map(|r| r.0).collect();
            out.sort_by(|a, b| b.cmp(a));
            out
        })
    }

    /// Top `ef` (similarity, slot) pairs for a query, best first.
    pub fn search(&self, ef: usize, q: &dyn Fn(u32) -> f32) -> Vec<(f32, u32)> {
        let (ep, maxl) = *self.entry.read().unwrap();
        if ep == EMPTY {
            return vec![];
        }
        let mut cur = Sc(q(ep), ep);
        for l in (1..=maxl).rev() {
            cur = self.greedy(q, cur, l);
        }
        self.search_layer(q, &[cur], ef, 0)
            .into_iter()
            .map(|s| (s.0, s.1))
            .collect()
    }
}

/// The HNSW neighbour-selection heuristic: keep a candidate only if it is closer to the
/// base than to every neighbour kept so far (spreads links across directions).
fn select(cands: &[Sc], cap: usize, sim: &PairSim<'_>) -> Vec<Sc> {
    let mut out: Vec<Sc> = Vec::with_capacity(cap);
    for &c in cands {
        if out.len() >= cap {
            break;
        }
        if out.iter().all(|r| sim(c.1, r.1) < c.0) {
            out.push(c);
        }
    }
    out
}
