//! Synthetic embeddings for benchmarks and tests: random unit vectors and noisy probes.
//! Not face data; real-data figures come from LFW through `facegate-vision`.

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// `n` random unit vectors of `dim` (uniform in the cube, then normalised), generated in
/// parallel and reproducibly from `seed`. Returned flat (`n × dim`).
pub fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut out = vec![0f32; n * dim];
    const CH: usize = 4096;
    out.par_chunks_mut(CH * dim)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(
                seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            for v in chunk.chunks_exact_mut(dim) {
                for x in v.iter_mut() {
                    *x = rng.gen_range(-1.0f32..1.0);
                }
                normalize(v);
            }
        });
    out
}

/// `n` unit vectors with face-embedding-like structure: `normalize(A·z + 0.5·e)` with
/// `z ~ N(0, I_rank)`, a fixed random `A` (dim × rank) and isotropic noise `e`. Most of the
/// energy lies in a `rank`-dimensional subspace, so different vectors correlate the way
/// different people's embeddings do (impostor cosine spread ≈ 0.1 for rank 64, against
/// 0.044 for uniform vectors), and graph indexes such as HNSW can navigate them.
pub fn face_like_vectors(n: usize, dim: usize, rank: usize, seed: u64) -> Vec<f32> {
    let mut arng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xA11CE);
    let a: Vec<f32> = (0..dim * rank)
        .map(|_| gauss(&mut arng) / (rank as f32).sqrt())
        .collect();
    let mut out = vec![0f32; n * dim];
    const CH: usize = 4096;
    out.par_chunks_mut(CH * dim)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(
                seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let mut z = vec![0f32; rank];
            for v in chunk.chunks_exact_mut(dim) {
                z.iter_mut().for_each(|x| *x = gauss(&mut rng));
                for (i, x) in v.iter_mut().enumerate() {
                    let row = &a[i * rank..(i + 1) * rank];
                    *x =
                        row.iter().zip(&z).map(|(p, q)| p * q).sum::<f32>() + 0.5 * gauss(&mut rng);
                }
                normalize(v);
            }
        });
    out
}

fn gauss(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.gen_range(1e-7f32..1.0);
    let u2: f32 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// A probe near `v`: `v + noise·u` for a random unit `u`, normalised. With `noise = 1`
/// the cosine to `v` is about 0.7 (a typical same-person score).
pub fn probe_near(v: &[f32], noise: f32, rng: &mut impl Rng) -> Vec<f32> {
    let mut u: Vec<f32> = (0..v.len()).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    normalize(&mut u);
    let mut p: Vec<f32> = v.iter().zip(&u).map(|(a, b)| a + noise * b).collect();
    normalize(&mut p);
    p
}

/// Cosine scores of all pairs among `m` random unit vectors (an impostor distribution
/// for synthetic galleries).
pub fn impostor_scores(m: usize, dim: usize, seed: u64) -> Vec<f32> {
    let vs = unit_vectors(m, dim, seed);
    let mut s = Vec::with_capacity(m * (m - 1) / 2);
    for i in 0..m {
        for j in i + 1..m {
            s.push(dot(
                &vs[i * dim..(i + 1) * dim],
                &vs[j * dim..(j + 1) * dim],
            ));
        }
    }
    s
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// `count` probes near randomly chosen rows of `base` (flat, `dim` columns), each made by
/// [`probe_near`]. Returns (flat probes, chosen row indices).
pub fn probes(
    base: &[f32],
    dim: usize,
    count: usize,
    noise: f32,
    seed: u64,
) -> (Vec<f32>, Vec<usize>) {
    let n = base.len() / dim;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count * dim);
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let i = rng.gen_range(0..n);
        out.extend(probe_near(&base[i * dim..(i + 1) * dim], noise, &mut rng));
        rows.push(i);
    }
    (out, rows)
}
