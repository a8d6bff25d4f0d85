//! Int8 vectors held as two nibble planes, so that an exact scan reads half the bytes.
//!
//! Each int8 value `x` (−127..=127) is stored as `x + 128 = 16·h + l` with `h` and `l` in
//! 0..=15: the *high plane* holds every row's `h` (dim/2 bytes), the *low plane* every
//! row's `l` (dim/2 bytes), so memory stays one byte per dimension. Then
//!
//! ```text
//! q·x = 16·(q·h) + q·l − 128·Σq,    q·l = 7.5·Σq + q·(l − 7.5),    |q·(l − 7.5)| ≤ ‖q‖·‖l − 7.5‖
//! ```
//!
//! so the high plane alone gives an upper bound on every row's score (Cauchy–Schwarz
//! with the per-row norm `‖l − 7.5‖`, stored as one f32 rounded up). An exact top-k scan
//! streams the high plane, and reads a row's low plane only when that bound can still
//! beat the current k-th best exact score. The answer is the same as a full int8 scan,
//! score for score; only rows that provably cannot enter are skipped.

use crate::kernels::{self, KernelKind};
use zeroize::Zeroize;

/// Values per row in the planes: the dimension rounded up to a multiple of 128 (the
/// kernels' chunk); padding holds the encoding of 0 and meets zero query weights.
fn padded(dim: usize) -> usize {
    dim.div_ceil(128) * 128
}

/// A query prepared for the planes: padded int8 values, their sum and Euclidean norm.
pub(crate) struct PlaneQuery {
    q: Vec<i8>,
    dim: usize,
    sum: i32,
    norm: f64,
}

impl PlaneQuery {
    /// The query's int8 values (without the padding).
    pub fn values(&self) -> &[i8] {
        &self.q[..self.dim]
    }
}

impl Drop for PlaneQuery {
    fn drop(&mut self) {
        self.q.zeroize();
        self.sum = 0;
        self.norm = 0.0;
    }
}

pub(crate) struct I8Planes {
    dim: usize,
    dp: usize,
    hi: Vec<u8>,
    lo: Vec<u8>,
    /// `‖l − 7.5‖` over the real dimensions, rounded up to the next f32.
    rnorm: Vec<f32>,
}

impl Drop for I8Planes {
    fn drop(&mut self) {
        self.zeroize_all();
    }
}

impl I8Planes {
    pub fn new(dim: usize) -> Self {
        I8Planes {
            dim,
            dp: padded(dim),
            hi: vec![],
            lo: vec![],
            rnorm: vec![],
        }
    }

    fn rb(&self) -> usize {
        self.dp / 2
    }

    pub fn memory_bytes(&self) -> usize {
        self.hi.capacity() + self.lo.capacity() + self.rnorm.capacity() * 4
    }

    pub fn reserve(&mut self, additional: usize) {
        let rb = self.rb();
        self.hi.reserve_exact(additional * rb);
        self.lo.reserve_exact(additional * rb);
        self.rnorm.reserve_exact(additional);
    }

    /// Appends a row holding the zero vector.
    pub fn push_zero(&mut self) {
        let rb = self.rb();
        self.hi.resize(self.hi.len() + rb, 0x88);
        self.lo.resize(self.lo.len() + rb, 0);
        self.rnorm.push(0.0);
        let r = self.rnorm.len() - 1;
        self.rnorm[r] = self.residual_norm(r);
    }

    /// Byte and nibble position of value `i` within a row.
    #[inline]
    fn pos(i: usize) -> (usize, u32) {
        let (c, w) = (i / 128, i % 128);
        (c * 64 + w % 64, if w < 64 { 0 } else { 4 })
    }

    /// Stores `v` (length `dim`, values in −127..=127) in row `r`.
    pub fn set(&mut self, r: usize, v: &[i8]) {
        assert_eq!(v.len(), self.dim);
        let rb = self.rb();
        let (hi, lo) = (
            &mut self.hi[r * rb..(r + 1) * rb],
            &mut self.lo[r * rb..(r + 1) * rb],
        );
        hi.fill(0x88); // padding = encoding of 0: h = 8, l = 0
        lo.fill(0);
        for (i, &x) in v.iter().enumerate() {
            let u = (x as i32 + 128) as u8;
            let (b, sh) = Self::pos(i);
            hi[b] = (hi[b] & !(0x0f << sh)) | ((u >> 4) << sh);
            lo[b] |= (u & 15) << sh;
        }
        self.rnorm[r] = self.residual_norm(r);
    }

    fn residual_norm(&self, r: usize) -> f32 {
        let rb = self.rb();
        let lo = &self.lo[r * rb..(r + 1) * rb];
        let mut s = 0f64;
        for i in 0..self.dim {
            let (b, sh) = Self::pos(i);
            let l = ((lo[b] >> sh) & 15) as f64 - 7.5;
            s += l * l;
        }
        let n = s.sqrt();
        let f = n as f32;
        if (f as f64) < n {
            f.next_up()
        } else {
            f
        }
    }

    /// Row `r` decoded into `out` (length `dim`).
    pub fn get(&self, r: usize, out: &mut [i8]) {
        let rb = self.rb();
        let (hi, lo) = (
            &self.hi[r * rb..(r + 1) * rb],
            &self.lo[r * rb..(r + 1) * rb],
        );
        if self.dim == self.dp {
            // Whole 128-value chunks: a branch-free loop the compiler vectorises.
            for ((o, h), l) in out
                .chunks_exact_mut(128)
                .zip(hi.chunks_exact(64))
                .zip(lo.chunks_exact(64))
            {
                let (a, b) = o.split_at_mut(64);
                for j in 0..64 {
                    a[j] = ((((h[j] & 15) << 4) | (l[j] & 15)) ^ 0x80) as i8;
                    b[j] = (((h[j] & 0xf0) | (l[j] >> 4)) ^ 0x80) as i8;
                }
            }
            return;
        }
        for (i, o) in out.iter_mut().enumerate().take(self.dim) {
            let (b, sh) = Self::pos(i);
            let u = (((hi[b] >> sh) & 15) << 4) | ((lo[b] >> sh) & 15);
            *o = (u as i32 - 128) as i8;
        }
    }

    /// Rows `r0..r1` decoded into `out` (`(r1 − r0) × dim`), for the batch kernel.
    pub fn decode_rows(&self, r0: usize, r1: usize, out: &mut [i8]) {
        let d = self.dim;
        for (k, r) in (r0..r1).enumerate() {
            self.get(r, &mut out[k * d..(k + 1) * d]);
        }
    }

    /// Overwrites row `r` with the zero vector.
    pub fn wipe(&mut self, r: usize) {
        let rb = self.rb();
        self.hi[r * rb..(r + 1) * rb].fill(0x88);
        self.lo[r * rb..(r + 1) * rb].fill(0);
        self.rnorm[r] = self.residual_norm(r);
    }

    pub fn zeroize_all(&mut self) {
        self.hi.zeroize();
        self.lo.zeroize();
        self.rnorm.zeroize();
    }

    pub fn prepare(&self, q: &[i8]) -> PlaneQuery {
        assert_eq!(q.len(), self.dim);
        let mut p = vec![0i8; self.dp];
        p[..self.dim].copy_from_slice(q);
        PlaneQuery {
            dim: self.dim,
            sum: q.iter().map(|&v| v as i32).sum(),
            norm: q
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
                .sqrt(),
            q: p,
        }
    }

    /// `out[i] = q·h` for rows `r0..r0 + out.len()` (the high plane only).
    pub fn dots_hi(&self, kind: KernelKind, q: &PlaneQuery, r0: usize, out: &mut [i32]) {
        let rb = self.rb();
        kernels::dots_nib(kind, &q.q, &self.hi[r0 * rb..], self.dp, out);
    }

    /// For rows `r0..r0 + hd.len()`: an upper bound on the score `(q·x)·q_scale·scale[i]`
    /// as the gallery computes it in f32; `hd` from [`Self::dots_hi`]. The bound is
    /// computed in f64 and widened by 1e-5 (relative) before it is stored as f32, which
    /// covers both the f32 rounding of the gallery's score (a few 1e-8) and of the store.
    /// A row whose bound is at or below the current k-th best score cannot enter the
    /// top k. Returns the largest bound. (A plain loop, so that it vectorises.)
    pub fn score_bounds(
        &self,
        q: &PlaneQuery,
        r0: usize,
        hd: &[i32],
        q_scale: f32,
        scale: &[f32],
        out: &mut [f32],
    ) -> f32 {
        let c0 = (7.5 - 128.0) * q.sum as f64;
        let qn = q.norm;
        let qs = q_scale as f64;
        let rn = &self.rnorm[r0..r0 + hd.len()];
        let mut max = f32::NEG_INFINITY;
        for (((o, &h), &n), &s) in out.iter_mut().zip(hd).zip(rn).zip(scale) {
            let ub = (16.0 * h as f64 + c0 + qn * n as f64) * qs * s as f64;
            *o = (ub + ub.abs() * 1e-5 + 1e-12) as f32;
            max = max.max(*o);
        }
        max
    }

    /// Hints the CPU to fetch row `r` of both planes (for a [`Self::dot`] soon after).
    #[inline]
    pub fn prefetch_row(&self, r: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let rb = self.rb();
            for plane in [&self.hi, &self.lo] {
                if let Some(row) = plane.get(r * rb..(r + 1) * rb) {
                    for line in row.chunks(64) {
                        // SAFETY: a prefetch hint on an address inside the plane.
                        unsafe {
                            std::arch::x86_64::_mm_prefetch(
                                line.as_ptr() as *const i8,
                                std::arch::x86_64::_MM_HINT_T0,
                            )
                        };
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = r;
    }

    /// Exact `q·x` for row `r`, given its high-plane dot `hd`.
    #[inline]
    pub fn finish(&self, kind: KernelKind, q: &PlaneQuery, r: usize, hd: i32) -> i32 {
        let rb = self.rb();
        let mut o = [0i32];
        kernels::dots_nib(kind, &q.q, &self.lo[r * rb..(r + 1) * rb], self.dp, &mut o);
        16 * hd + o[0] - 128 * q.sum
    }

    /// Exact `x_a·x_b` between two stored rows (HNSW construction): row `a` is decoded
    /// into a per-thread buffer, so no allocation per call.
    pub fn dot_rows(&self, kind: KernelKind, a: usize, b: usize) -> i32 {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<i8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with(|buf| {
            let mut q = buf.borrow_mut();
            q.clear();
            q.resize(self.dp, 0);
            self.get(a, &mut q[..self.dim]);
            let sum: i32 = q.iter().map(|&v| v as i32).sum();
            let rb = self.rb();
            let (mut h, mut l) = ([0i32], [0i32]);
            kernels::dots_nib(kind, &q, &self.hi[b * rb..(b + 1) * rb], self.dp, &mut h);
            kernels::dots_nib(kind, &q, &self.lo[b * rb..(b + 1) * rb], self.dp, &mut l);
            q.zeroize();
            16 * h[0] + l[0] - 128 * sum
        })
    }

    /// Exact `q·x` for row `r`.
    pub fn dot(&self, kind: KernelKind, q: &PlaneQuery, r: usize) -> i32 {
        let mut h = [0i32];
        self.dots_hi(kind, q, r, &mut h);
        self.finish(kind, q, r, h[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The scan's bound for one row, with unit scales (so it bounds the raw dot product).
    fn bound(p: &I8Planes, q: &PlaneQuery, r: usize, hd: i32) -> f32 {
        let mut out = [0f32];
        p.score_bounds(q, r, &[hd], 1.0, &[1.0], &mut out);
        out[0]
    }

    #[test]
    fn planes_round_trip_and_bound_holds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for &dim in &[512usize, 100, 128, 7] {
            let rows = 50;
            let mut p = I8Planes::new(dim);
            let data: Vec<Vec<i8>> = (0..rows)
                .map(|_| (0..dim).map(|_| rng.gen_range(-127..=127)).collect())
                .collect();
            for v in &data {
                p.push_zero();
                p.set(p.rnorm.len() - 1, v);
            }
            let mut back = vec![0i8; dim];
            for (r, v) in data.iter().enumerate() {
                p.get(r, &mut back);
                assert_eq!(&back, v, "dim {dim} row {r}");
            }
            for kind in [kernels::detected(), KernelKind::Scalar] {
                for _ in 0..20 {
                    let q: Vec<i8> = (0..dim).map(|_| rng.gen_range(-127..=127)).collect();
                    let pq = p.prepare(&q);
                    let mut hd = vec![0; rows];
                    p.dots_hi(kind, &pq, 0, &mut hd);
                    for (r, v) in data.iter().enumerate() {
                        let want: i32 = q.iter().zip(v).map(|(&a, &b)| a as i32 * b as i32).sum();
                        assert_eq!(p.finish(kind, &pq, r, hd[r]), want);
                        assert_eq!(p.dot(kind, &pq, r), want);

                        assert!(bound(&p, &pq, r, hd[r]) >= want as f32);
                    }
                    // Worst case for the bound: low nibbles all 15 where q > 0 and 0 where
                    // q < 0, so q·(l − 7.5) = 7.5·Σ|q|, close to ‖q‖·‖l − 7.5‖.
                    let adv: Vec<i8> = q
                        .iter()
                        .map(|&a| {
                            let u = (a as i32 + 128) & 0xf0 | if a > 0 { 15 } else { 0 };
                            (u - 128).clamp(-127, 127) as i8
                        })
                        .collect();
                    let mut one = I8Planes::new(dim);
                    one.push_zero();
                    one.set(0, &adv);
                    let want: i32 = q.iter().zip(&adv).map(|(&a, &b)| a as i32 * b as i32).sum();
                    let mut h = [0];
                    one.dots_hi(kind, &pq, 0, &mut h);
                    let ub = bound(&one, &pq, 0, h[0]);
                    assert!(ub >= want as f32, "adversarial row: bound {ub} < {want}");
                    assert!(
                        ub < want as f32 * 1.5 + 1e4,
                        "bound far too loose: {ub} vs {want}"
                    );
                }
            }
            for (a, va) in data.iter().enumerate().take(5) {
                for (b, vb) in data.iter().enumerate() {
                    let want: i32 = va.iter().zip(vb).map(|(&x, &y)| x as i32 * y as i32).sum();
                    assert_eq!(p.dot_rows(kernels::detected(), a, b), want);
                }
            }
            p.wipe(3);
            p.get(3, &mut back);
            assert!(back.iter().all(|&x| x == 0));
        }
    }
}
