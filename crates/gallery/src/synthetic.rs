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

/// `n` unit vectors drawn from a Gaussian fitted to `samples` (flat, `dim` columns): same
/// mean and covariance as the real embeddings, then normalised. Distractors that look like
/// "other people" to the matcher without being anyone's face.
pub fn gaussian_like(samples: &[f32], dim: usize, n: usize, seed: u64) -> Vec<f32> {
    let m = samples.len() / dim;
    assert!(m >= 2, "need at least two samples");
    let mut mean = vec![0f64; dim];
    for r in samples.chunks_exact(dim) {
        mean.iter_mut().zip(r).for_each(|(a, &b)| *a += b as f64);
    }
    mean.iter_mut().for_each(|a| *a /= m as f64);
    let centred: Vec<f32> = samples
        .chunks_exact(dim)
        .flat_map(|r| {
            r.iter()
                .zip(&mean)
                .map(|(&x, &mu)| x - mu as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    // Σ = Xcᵀ Xc / m  (dim × dim)
    let mut cov = vec![0f32; dim * dim];
    unsafe {
        matrixmultiply::sgemm(
            dim,
            m,
            dim,
            1.0 / m as f32,
            centred.as_ptr(),
            1,
            dim as isize,
            centred.as_ptr(),
            dim as isize,
            1,
            0.0,
            cov.as_mut_ptr(),
            dim as isize,
            1,
        );
    }
    // Cholesky Σ + εI = L Lᵀ (lower), in f64.
    let eps = 1e-6;
    let mut l = vec![0f64; dim * dim];
    for j in 0..dim {
        let mut d = cov[j * dim + j] as f64 + eps;
        for k in 0..j {
            d -= l[j * dim + k] * l[j * dim + k];
        }
        let d = d.max(1e-12).sqrt();
        l[j * dim + j] = d;
        for i in j + 1..dim {
            let mut s = cov[i * dim + j] as f64;
            for k in 0..j {
                s -= l[i * dim + k] * l[j * dim + k];
            }
            l[i * dim + j] = s / d;
        }
    }
    let lf: Vec<f32> = l.iter().map(|&x| x as f32).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let z: Vec<f32> = (0..n * dim).map(|_| gauss(&mut rng)).collect();
    let mut out = vec![0f32; n * dim];
    // out = Z · Lᵀ  (n × dim)
    unsafe {
        matrixmultiply::sgemm(
            n,
            dim,
            dim,
            1.0,
            z.as_ptr(),
            dim as isize,
            1,
            lf.as_ptr(),
            1,
            dim as isize,
            0.0,
            out.as_mut_ptr(),
            dim as isize,
            1,
        );
    }
    for v in out.chunks_exact_mut(dim) {
        v.iter_mut().zip(&mean).for_each(|(x, &mu)| *x += mu as f32);
        normalize(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_like_matches_the_sample_mean() {
        let src = face_like_vectors(3000, 32, 8, 1);
        let g = gaussian_like(&src, 32, 3000, 2);
        let mean = |v: &[f32]| -> Vec<f32> {
            let mut m = vec![0f32; 32];
            v.chunks_exact(32)
                .for_each(|r| m.iter_mut().zip(r).for_each(|(a, b)| *a += b / 3000.0));
            m
        };
        let (a, b) = (mean(&src), mean(&g));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 0.03, "{x} vs {y}");
        }
        // Second moments along the first axis agree too.
        let m2 = |v: &[f32]| v.chunks_exact(32).map(|r| r[0] * r[1]).sum::<f32>() / 3000.0;
        assert!(
            (m2(&src) - m2(&g)).abs() < 0.02,
            "{} vs {}",
            m2(&src),
            m2(&g)
        );
    }
}
