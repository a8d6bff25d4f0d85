//! Similarity kernels: nibble-plane, int8 and f32 dot products over many rows, with
//! AVX-512 VNNI and AVX2 versions chosen at run time and portable scalar fallbacks that
//! give identical integer results.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Which implementation the dispatching kernels use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// AVX-512 VNNI (`vpdpbusd`, 64 byte products per instruction) for the nibble-plane
    /// kernels that int8 scans and 1:1 scores use; AVX2 for everything else. Chosen when
    /// the CPU has avx512f, avx512bw and avx512vnni.
    Avx512Vnni,
    /// AVX2 (+FMA for f32), hand-written.
    Avx2,
    /// Portable Rust.
    Scalar,
}

/// The kernel the dispatcher picks on this CPU: AVX-512 VNNI when present, else AVX2 (with
/// FMA), else scalar.
pub fn detected() -> KernelKind {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            if has_vnni() {
                return KernelKind::Avx512Vnni;
            }
            return KernelKind::Avx2;
        }
    }
    KernelKind::Scalar
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
fn has_vnni() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni")
}

/// `kind` if this CPU can run it, else the best kernel it can run (a gallery opened with
/// an explicit kind on another machine degrades instead of faulting).
fn usable(kind: KernelKind) -> KernelKind {
    #[cfg(target_arch = "x86_64")]
    {
        match kind {
            KernelKind::Avx512Vnni if has_vnni() && has_avx2() => return KernelKind::Avx512Vnni,
            KernelKind::Avx512Vnni | KernelKind::Avx2 if has_avx2() => return KernelKind::Avx2,
            _ => {}
        }
    }
    let _ = kind;
    KernelKind::Scalar
}

/// `out[r] = Σ q[i]·db[r·dim + i]` for every row `r` (`out.len()` rows), int8 inputs in
/// -127..=127 (−128 is not allowed), exact i32 result.
pub fn dots_i8(kind: KernelKind, q: &[i8], db: &[i8], dim: usize, out: &mut [i32]) {
    assert_eq!(q.len(), dim);
    assert!(db.len() >= out.len() * dim);
    match usable(kind) {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::Avx512Vnni => unsafe { dots_i8_avx2(q, db, dim, out) },
        _ => dots_i8_scalar(q, db, dim, out),
    }
}

/// `out[r] = Σ q[i]·db[r·dim + i]` in f32.
pub fn dots_f32(kind: KernelKind, q: &[f32], db: &[f32], dim: usize, out: &mut [f32]) {
    assert_eq!(q.len(), dim);
    assert!(db.len() >= out.len() * dim);
    match usable(kind) {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::Avx512Vnni => unsafe { dots_f32_avx2(q, db, dim, out) },
        _ => dots_f32_scalar(q, db, dim, out),
    }
}

/// Batched int8: `out[j·rows + r] = Σ qs[j·dim + i]·db[r·dim + i]` for `m` queries and
/// `rows` rows. `abs_qs` must hold `|qs|` (precomputed once per batch).
#[allow(clippy::too_many_arguments)]
pub fn batch_dots_i8(
    kind: KernelKind,
    qs: &[i8],
    abs_qs: &[i8],
    m: usize,
    db: &[i8],
    rows: usize,
    dim: usize,
    out: &mut [i32],
) {
    assert!(qs.len() >= m * dim && abs_qs.len() >= m * dim && db.len() >= rows * dim);
    assert!(out.len() >= m * rows);
    match usable(kind) {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::Avx512Vnni if dim.is_multiple_of(32) => unsafe {
            batch_dots_i8_avx2(qs, abs_qs, m, db, rows, dim, out)
        },
        _ => {
            for j in 0..m {
                dots_i8_scalar(
                    &qs[j * dim..(j + 1) * dim],
                    db,
                    dim,
                    &mut out[j * rows..(j + 1) * rows],
                )
            }
        }
    }
}

/// Nibble-plane dot products: `out[r] = Σ_i q[i]·v_r[i]` where `v_r[i]` in 0..=15 is packed
/// two per byte, 128 values per 64 bytes: byte `j` of 64-byte chunk `c` holds value
/// `128c + j` in its low nibble and value `128c + 64 + j` in its high nibble. `dp` (the
/// number of values per row, `q.len()`) must be a multiple of 128; rows are `dp / 2`
/// bytes. Exact i32 result.
pub fn dots_nib(kind: KernelKind, q: &[i8], db: &[u8], dp: usize, out: &mut [i32]) {
    assert_eq!(q.len(), dp);
    assert!(dp.is_multiple_of(128));
    assert!(db.len() >= out.len() * dp / 2);
    match usable(kind) {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni => unsafe { dots_nib_vnni(q, db, dp, out) },
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 => unsafe { dots_nib_avx2(q, db, dp, out) },
        _ => dots_nib_scalar(q, db, dp, out),
    }
}

/// Portable nibble-plane dot products (see [`dots_nib`]).
pub fn dots_nib_scalar(q: &[i8], db: &[u8], dp: usize, out: &mut [i32]) {
    let rb = dp / 2;
    for (r, o) in out.iter_mut().enumerate() {
        let row = &db[r * rb..(r + 1) * rb];
        let mut s = 0i32;
        for (c, chunk) in row.chunks_exact(64).enumerate() {
            let qa = &q[128 * c..128 * c + 64];
            let qb = &q[128 * c + 64..128 * c + 128];
            for j in 0..64 {
                s += qa[j] as i32 * (chunk[j] & 15) as i32 + qb[j] as i32 * (chunk[j] >> 4) as i32;
            }
        }
        *o = s;
    }
}

/// Portable int8 dot products.
pub fn dots_i8_scalar(q: &[i8], db: &[i8], dim: usize, out: &mut [i32]) {
    for (r, o) in out.iter_mut().enumerate() {
        let row = &db[r * dim..(r + 1) * dim];
        *o = q.iter().zip(row).map(|(&a, &b)| a as i32 * b as i32).sum();
    }
}

/// Portable f32 dot products (8 partial sums, so the compiler can vectorise).
pub fn dots_f32_scalar(q: &[f32], db: &[f32], dim: usize, out: &mut [f32]) {
    for (r, o) in out.iter_mut().enumerate() {
        let row = &db[r * dim..(r + 1) * dim];
        let mut acc = [0f32; 8];
        let mut qc = q.chunks_exact(8);
        let mut rc = row.chunks_exact(8);
        for (a, b) in (&mut qc).zip(&mut rc) {
            for l in 0..8 {
                acc[l] += a[l] * b[l];
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (a, b) in qc.remainder().iter().zip(rc.remainder()) {
            s += a * b;
        }
        *o = s;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0b01));
    _mm_cvtss_f32(s)
}

/// One 32-byte step: `acc += Σ q·x` via |q| (unsigned) × (x·sign q) (signed) → i16 pairs → i32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn step_i8(acc: __m256i, aq: __m256i, vq: __m256i, x: __m256i, ones: __m256i) -> __m256i {
    let p = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(x, vq));
    _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_i8_avx2(q: &[i8], db: &[i8], dim: usize, out: &mut [i32]) {
    let rows = out.len();
    let chunks = dim / 32;
    let tail = chunks * 32;
    let ones = _mm256_set1_epi16(1);
    let qp = q.as_ptr();
    let tail_dot = |row: &[i8]| -> i32 {
        q[tail..]
            .iter()
            .zip(&row[tail..])
            .map(|(&a, &b)| a as i32 * b as i32)
            .sum()
    };
    let mut r = 0;
    while r + 4 <= rows {
        let p = db.as_ptr().add(r * dim);
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
        );
        for c in 0..chunks {
            let o = c * 32;
            let vq = _mm256_loadu_si256(qp.add(o) as *const __m256i);
            let aq = _mm256_sign_epi8(vq, vq);
            let x0 = _mm256_loadu_si256(p.add(o) as *const __m256i);
            let x1 = _mm256_loadu_si256(p.add(dim + o) as *const __m256i);
            let x2 = _mm256_loadu_si256(p.add(2 * dim + o) as *const __m256i);
            let x3 = _mm256_loadu_si256(p.add(3 * dim + o) as *const __m256i);
            a0 = step_i8(a0, aq, vq, x0, ones);
            a1 = step_i8(a1, aq, vq, x1, ones);
            a2 = step_i8(a2, aq, vq, x2, ones);
            a3 = step_i8(a3, aq, vq, x3, ones);
        }
        for (k, a) in [a0, a1, a2, a3].into_iter().enumerate() {
            let row = &db[(r + k) * dim..(r + k + 1) * dim];
            out[r + k] = hsum_epi32(a) + if tail < dim { tail_dot(row) } else { 0 };
        }
        r += 4;
    }
    while r < rows {
        let p = db.as_ptr().add(r * dim);
        let mut a0 = _mm256_setzero_si256();
        for c in 0..chunks {
            let o = c * 32;
            let vq = _mm256_loadu_si256(qp.add(o) as *const __m256i);
            let aq = _mm256_sign_epi8(vq, vq);
            let x0 = _mm256_loadu_si256(p.add(o) as *const __m256i);
            a0 = step_i8(a0, aq, vq, x0, ones);
        }
        let row = &db[r * dim..(r + 1) * dim];
        out[r] = hsum_epi32(a0) + if tail < dim { tail_dot(row) } else { 0 };
        r += 1;
    }
}

/// Sums of four accumulators: lane `k` of the result = Σ lanes of `a[k]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn hsum4_epi32(a0: __m512i, a1: __m512i, a2: __m512i, a3: __m512i) -> __m128i {
    // Pairwise interleave-and-add: after two rounds every 128-bit lane holds
    // [a0, a1, a2, a3] partial sums; then fold the four 128-bit lanes.
    let t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
    let t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
    let u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
    let h = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
    _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1))
}

/// AVX-512 VNNI nibble kernel: per 64 packed bytes one load, two masks (one shifted) and
/// two `vpdpbusd` (nibbles are unsigned, the query signed: no bias needed). 4 rows at once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
unsafe fn dots_nib_vnni(q: &[i8], db: &[u8], dp: usize, out: &mut [i32]) {
    let rows = out.len();
    let rb = dp / 2;
    let chunks = rb / 64;
    let m = _mm512_set1_epi8(15);
    let qp = q.as_ptr();
    let mut r = 0;
    macro_rules! step {
        ($acc:ident, $p:expr, $qa:ident, $qb:ident) => {{
            let x = _mm512_loadu_si512($p as *const _);
            $acc = _mm512_dpbusd_epi32($acc, _mm512_and_si512(x, m), $qa);
            $acc = _mm512_dpbusd_epi32($acc, _mm512_and_si512(_mm512_srli_epi16(x, 4), m), $qb);
        }};
    }
    while r + 4 <= rows {
        let p = db.as_ptr().add(r * rb);
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
        );
        for c in 0..chunks {
            let qa = _mm512_loadu_si512(qp.add(128 * c) as *const _);
            let qb = _mm512_loadu_si512(qp.add(128 * c + 64) as *const _);
            let o = c * 64;
            step!(a0, p.add(o), qa, qb);
            step!(a1, p.add(rb + o), qa, qb);
            step!(a2, p.add(2 * rb + o), qa, qb);
            step!(a3, p.add(3 * rb + o), qa, qb);
        }
        _mm_storeu_si128(
            out.as_mut_ptr().add(r) as *mut __m128i,
            hsum4_epi32(a0, a1, a2, a3),
        );
        r += 4;
    }
    while r < rows {
        let p = db.as_ptr().add(r * rb);
        let mut a0 = _mm512_setzero_si512();
        for c in 0..chunks {
            let qa = _mm512_loadu_si512(qp.add(128 * c) as *const _);
            let qb = _mm512_loadu_si512(qp.add(128 * c + 64) as *const _);
            step!(a0, p.add(c * 64), qa, qb);
        }
        out[r] = _mm512_reduce_add_epi32(a0);
        r += 1;
    }
}

/// AVX2 nibble kernel: nibble (unsigned) × query (signed) with `maddubs`; at most
/// 2·15·127 = 3810 per i16 lane, so four products are summed in i16 before one `madd`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_nib_avx2(q: &[i8], db: &[u8], dp: usize, out: &mut [i32]) {
    let rb = dp / 2;
    let m = _mm256_set1_epi8(15);
    let ones = _mm256_set1_epi16(1);
    let qp = q.as_ptr();
    for (r, o) in out.iter_mut().enumerate() {
        let p = db.as_ptr().add(r * rb);
        let mut acc = _mm256_setzero_si256();
        for c in 0..rb / 64 {
            let x0 = _mm256_loadu_si256(p.add(64 * c) as *const __m256i);
            let x1 = _mm256_loadu_si256(p.add(64 * c + 32) as *const __m256i);
            let q0 = _mm256_loadu_si256(qp.add(128 * c) as *const __m256i);
            let q1 = _mm256_loadu_si256(qp.add(128 * c + 32) as *const __m256i);
            let q2 = _mm256_loadu_si256(qp.add(128 * c + 64) as *const __m256i);
            let q3 = _mm256_loadu_si256(qp.add(128 * c + 96) as *const __m256i);
            let s = _mm256_add_epi16(
                _mm256_add_epi16(
                    _mm256_maddubs_epi16(_mm256_and_si256(x0, m), q0),
                    _mm256_maddubs_epi16(_mm256_and_si256(x1, m), q1),
                ),
                _mm256_add_epi16(
                    _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x0, 4), m), q2),
                    _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x1, 4), m), q3),
                ),
            );
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, ones));
        }
        *o = hsum_epi32(acc);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_f32_avx2(q: &[f32], db: &[f32], dim: usize, out: &mut [f32]) {
    let rows = out.len();
    let chunks = dim / 8;
    let tail = chunks * 8;
    let qp = q.as_ptr();
    let tail_dot =
        |row: &[f32]| -> f32 { q[tail..].iter().zip(&row[tail..]).map(|(a, b)| a * b).sum() };
    let mut r = 0;
    while r + 4 <= rows {
        let p = db.as_ptr().add(r * dim);
        let mut acc = [_mm256_setzero_ps(); 4];
        for c in 0..chunks {
            let o = c * 8;
            let vq = _mm256_loadu_ps(qp.add(o));
            acc[0] = _mm256_fmadd_ps(vq, _mm256_loadu_ps(p.add(o)), acc[0]);
            acc[1] = _mm256_fmadd_ps(vq, _mm256_loadu_ps(p.add(dim + o)), acc[1]);
            acc[2] = _mm256_fmadd_ps(vq, _mm256_loadu_ps(p.add(2 * dim + o)), acc[2]);
            acc[3] = _mm256_fmadd_ps(vq, _mm256_loadu_ps(p.add(3 * dim + o)), acc[3]);
        }
        for (k, a) in acc.into_iter().enumerate() {
            let row = &db[(r + k) * dim..(r + k + 1) * dim];
            out[r + k] = hsum_ps(a) + if tail < dim { tail_dot(row) } else { 0.0 };
        }
        r += 4;
    }
    while r < rows {
        let p = db.as_ptr().add(r * dim);
        let mut a = _mm256_setzero_ps();
        for c in 0..chunks {
            let o = c * 8;
            a = _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(o)), _mm256_loadu_ps(p.add(o)), a);
        }
        let row = &db[r * dim..(r + 1) * dim];
        out[r] = hsum_ps(a) + if tail < dim { tail_dot(row) } else { 0.0 };
        r += 1;
    }
}

/// Register-tiled batch kernel: 4 queries × 2 rows per tile (8 accumulators), `dim % 32 == 0`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn batch_dots_i8_avx2(
    qs: &[i8],
    abs_qs: &[i8],
    m: usize,
    db: &[i8],
    rows: usize,
    dim: usize,
    out: &mut [i32],
) {
    let chunks = dim / 32;
    let ones = _mm256_set1_epi16(1);
    let mut j = 0;
    while j < m {
        let nq = (m - j).min(4);
        if nq < 4 {
            // Leftover queries: the single-query kernel.
            for jj in j..m {
                dots_i8_avx2(
                    &qs[jj * dim..(jj + 1) * dim],
                    db,
                    dim,
                    &mut out[jj * rows..(jj + 1) * rows],
                );
            }
            break;
        }
        let q0 = qs.as_ptr().add(j * dim);
        let aq0 = abs_qs.as_ptr().add(j * dim);
        let mut r = 0;
        while r + 2 <= rows {
            let p = db.as_ptr().add(r * dim);
            let mut acc = [_mm256_setzero_si256(); 8];
            for c in 0..chunks {
                let o = c * 32;
                let x0 = _mm256_loadu_si256(p.add(o) as *const __m256i);
                let x1 = _mm256_loadu_si256(p.add(dim + o) as *const __m256i);
                for k in 0..4 {
                    let vq = _mm256_loadu_si256(q0.add(k * dim + o) as *const __m256i);
                    let aq = _mm256_loadu_si256(aq0.add(k * dim + o) as *const __m256i);
                    acc[2 * k] = step_i8(acc[2 * k], aq, vq, x0, ones);
                    acc[2 * k + 1] = step_i8(acc[2 * k + 1], aq, vq, x1, ones);
                }
            }
            for k in 0..4 {
                out[(j + k) * rows + r] = hsum_epi32(acc[2 * k]);
                out[(j + k) * rows + r + 1] = hsum_epi32(acc[2 * k + 1]);
            }
            r += 2;
        }
        if r < rows {
            for k in 0..4 {
                let mut o1 = [0i32; 1];
                dots_i8_avx2(
                    &qs[(j + k) * dim..(j + k + 1) * dim],
                    &db[r * dim..],
                    dim,
                    &mut o1,
                );
                out[(j + k) * rows + r] = o1[0];
            }
        }
        j += 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn int8_avx2_equals_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for &dim in &[512usize, 32, 100, 7] {
            let rows = 37;
            let mut q: Vec<i8> = (0..dim).map(|_| rng.gen_range(-127..=127)).collect();
            let mut db: Vec<i8> = (0..rows * dim).map(|_| rng.gen_range(-127..=127)).collect();
            // Extremes: the sign/maddubs trick must not saturate.
            q[0] = 127;
            q[dim - 1] = -127;
            db[..dim].fill(127);
            db[dim..2 * dim].fill(-127);
            db[2 * dim..3 * dim].copy_from_slice(&q);
            let mut a = vec![0; rows];
            let mut b = vec![0; rows];
            dots_i8(detected(), &q, &db, dim, &mut a);
            dots_i8_scalar(&q, &db, dim, &mut b);
            assert_eq!(a, b, "dim {dim}");
            if detected() != KernelKind::Scalar {
                let mut c = vec![0; rows];
                unsafe { dots_i8_avx2(&q, &db, dim, &mut c) };
                assert_eq!(c, b, "dim {dim} (avx2 forced)");
            } else {
                eprintln!("AVX2 not available: compared the dispatcher (scalar) only");
            }
            // Batched kernel agrees with both.
            let m = 7;
            let qs: Vec<i8> = (0..m * dim).map(|_| rng.gen_range(-127..=127)).collect();
            let abs: Vec<i8> = qs.iter().map(|x| x.abs()).collect();
            let mut bo = vec![0; m * rows];
            batch_dots_i8(detected(), &qs, &abs, m, &db, rows, dim, &mut bo);
            for j in 0..m {
                let mut s = vec![0; rows];
                dots_i8_scalar(&qs[j * dim..(j + 1) * dim], &db, dim, &mut s);
                assert_eq!(
                    &bo[j * rows..(j + 1) * rows],
                    &s[..],
                    "batch dim {dim} query {j}"
                );
            }
        }
    }

    #[test]
    fn nibble_kernels_equal_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for &dp in &[128usize, 512, 640] {
            let rows = 23;
            let mut q: Vec<i8> = (0..dp).map(|_| rng.gen_range(-127..=127)).collect();
            q[0] = -128; // i8::MIN is fine for the nibble kernels
            let mut db: Vec<u8> = (0..rows * dp / 2).map(|_| rng.gen()).collect();
            db[..dp / 2].fill(0xff);
            let mut want = vec![0; rows];
            dots_nib_scalar(&q, &db, dp, &mut want);
            // Reference: unpack by the documented layout.
            for r in 0..rows {
                let mut s = 0i32;
                for (i, &qi) in q.iter().enumerate() {
                    let (c, w) = (i / 128, i % 128);
                    let b = db[r * dp / 2 + c * 64 + w % 64];
                    let v = if w < 64 { b & 15 } else { b >> 4 };
                    s += qi as i32 * v as i32;
                }
                assert_eq!(want[r], s, "layout dp {dp} row {r}");
            }
            let mut got = vec![0; rows];
            dots_nib(detected(), &q, &db, dp, &mut got);
            assert_eq!(got, want, "dispatcher dp {dp}");
            if detected() != KernelKind::Scalar {
                unsafe { dots_nib_avx2(&q, &db, dp, &mut got) };
                assert_eq!(got, want, "avx2 dp {dp}");
            }
            if detected() == KernelKind::Avx512Vnni {
                unsafe { dots_nib_vnni(&q, &db, dp, &mut got) };
                assert_eq!(got, want, "vnni dp {dp}");
            }
        }
    }

    #[test]
    fn f32_avx2_matches_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        for &dim in &[512usize, 13] {
            let rows = 9;
            let q: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let db: Vec<f32> = (0..rows * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut a = vec![0.0; rows];
            let mut b = vec![0.0; rows];
            dots_f32(detected(), &q, &db, dim, &mut a);
            dots_f32_scalar(&q, &db, dim, &mut b);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-3, "{x} vs {y}");
            }
        }
    }
}
