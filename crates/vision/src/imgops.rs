//! Small, allocation-light image operations on `RgbImage` buffers: region
//! resize (bilinear, OpenCV pixel-centre convention), integer box shrink,
//! affine warp, and the similarity (Umeyama) fit used for alignment.

use image::RgbImage;

/// An axis-aligned region in image coordinates (may extend past the image).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// Precomputed bilinear taps along one axis.
struct Taps {
    i0: Vec<i64>,
    frac: Vec<f32>,
}

fn taps(start: f32, len: f32, out: usize) -> Taps {
    let scale = len / out as f32;
    let mut i0 = Vec::with_capacity(out);
    let mut frac = Vec::with_capacity(out);
    for d in 0..out {
        let s = start + (d as f32 + 0.5) * scale - 0.5;
        let f = s.floor();
        i0.push(f as i64);
        frac.push(s - f);
    }
    Taps { i0, frac }
}

/// One output coordinate's two bilinear taps along an axis: source indices
/// (already clamped), weights, and whether each tap falls outside (→ `fill`).
#[derive(Clone, Copy)]
struct Tap2 {
    i: [usize; 2],
    w: [f32; 2],
    out: [bool; 2],
}

fn taps2(t: &Taps, lo: i64, hi: i64, fill: bool) -> Vec<Tap2> {
    t.i0.iter()
        .zip(&t.frac)
        .map(|(&i, &f)| {
            let mut tap = Tap2 {
                i: [0; 2],
                w: [1.0 - f, f],
                out: [false; 2],
            };
            for d in 0..2 {
                let v = i + d as i64;
                tap.out[d] = fill && (v < lo || v > hi);
                tap.i[d] = v.clamp(lo, hi) as usize;
            }
            tap
        })
        .collect()
}

/// The pixels a resize of region `r` may sample, `(x0, x1, y0, y1)` inclusive:
/// the region ∩ image (edge pixels replicated beyond it), or the whole image when
/// samples outside it take a fill value.
fn clamp_bounds(img: &RgbImage, r: Region, fill: bool) -> (i64, i64, i64, i64) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    if fill {
        return (0, iw - 1, 0, ih - 1);
    }
    let x0 = (r.x.floor() as i64).clamp(0, iw - 1);
    let x1 = ((r.x + r.w).ceil() as i64 - 1).clamp(x0, iw - 1);
    let y0 = (r.y.floor() as i64).clamp(0, ih - 1);
    let y1 = ((r.y + r.h).ceil() as i64 - 1).clamp(y0, ih - 1);
    (x0, x1, y0, y1)
}

/// Resizes `region` of `img` to `out_w × out_h` with bilinear interpolation
/// and returns interleaved RGB floats (0..255). Samples are clamped to the
/// part of the region inside the image (as `cv2.resize` on an ROI does);
/// where the region lies outside the image entirely, `fill` is used.
///
/// The taps are worked out once per row and column, so the inner loop is four
/// loads and multiply-adds per channel; the arithmetic (and its order) is that of
/// the straightforward form, so results are identical to it.
pub(crate) fn resize_region(
    img: &RgbImage,
    r: Region,
    out_w: usize,
    out_h: usize,
    fill: Option<f32>,
) -> Vec<f32> {
    let tx = taps(r.x, r.w, out_w);
    let ty = taps(r.y, r.h, out_h);
    let (cx0, cx1, cy0, cy1) = clamp_bounds(img, r, fill.is_some());
    let xs = taps2(&tx, cx0, cx1, fill.is_some());
    let ys = taps2(&ty, cy0, cy1, fill.is_some());
    let f = fill.unwrap_or(0.0);
    let buf = img.as_raw();
    let stride = img.width() as usize * 3;
    let mut out = vec![0f32; out_w * out_h * 3];
    for (row, ty) in out.chunks_exact_mut(out_w * 3).zip(&ys) {
        let row_inside = !ty.out[0] && !ty.out[1];
        let (l0, l1) = (&buf[ty.i[0] * stride..], &buf[ty.i[1] * stride..]);
        for (px, tx) in row.chunks_exact_mut(3).zip(&xs) {
            if row_inside && !tx.out[0] && !tx.out[1] {
                // All four taps inside the image: the same products added in
                // the same order as below, without the branches. A zero
                // weight adds +0.0 (every sample is ≥ 0), which leaves the
                // sum as it was, so skipping it or not gives the same bits.
                let (a, b) = (tx.i[0] * 3, tx.i[1] * 3);
                let (p00, p01) = (&l0[a..a + 3], &l0[b..b + 3]);
                let (p10, p11) = (&l1[a..a + 3], &l1[b..b + 3]);
                let (w00, w01) = (tx.w[0] * ty.w[0], tx.w[1] * ty.w[0]);
                let (w10, w11) = (tx.w[0] * ty.w[1], tx.w[1] * ty.w[1]);
                for c in 0..3 {
                    let mut acc = 0f32;
                    acc += w00 * p00[c] as f32;
                    acc += w01 * p01[c] as f32;
                    acc += w10 * p10[c] as f32;
                    acc += w11 * p11[c] as f32;
                    px[c] = acc;
                }
                continue;
            }
            let mut acc = [0f32; 3];
            for dy in 0..2 {
                let wy = ty.w[dy];
                if wy == 0.0 {
                    continue;
                }
                let line = &buf[ty.i[dy] * stride..];
                for dx in 0..2 {
                    let wx = tx.w[dx];
                    if wx == 0.0 {
                        continue;
                    }
                    let w = wx * wy;
                    if ty.out[dy] || tx.out[dx] {
                        for a in &mut acc {
                            *a += w * f;
                        }
                    } else {
                        let p = &line[tx.i[dx] * 3..tx.i[dx] * 3 + 3];
                        for c in 0..3 {
                            acc[c] += w * p[c] as f32;
                        }
                    }
                }
            }
            px.copy_from_slice(&acc);
        }
    }
    out
}

/// Shrinks an image by an integer factor, averaging each `k × k` block (like
/// `cv2.INTER_AREA`), so that a later bilinear resize does not alias.
///
/// Rows are summed first (a plain loop over whole rows, which vectorises), then
/// each output pixel adds `k` column sums; same rounding as the straightforward form.
pub(crate) fn box_shrink(img: &RgbImage, k: u32) -> RgbImage {
    box_shrink_blocks(img, k, (0, 0), (img.width() / k, img.height() / k))
}

/// The part of [`box_shrink`]`(img, k)` that starts at block `(bx, by)` and is
/// `w × h` blocks large (each must lie inside the shrunk image), computed
/// without shrinking the rest: the same pixels, bit for bit.
pub(crate) fn box_shrink_blocks(
    img: &RgbImage,
    k: u32,
    (bx, by): (u32, u32),
    (w, h): (u32, u32),
) -> RgbImage {
    debug_assert!(bx + w <= img.width() / k || w == 0);
    debug_assert!(by + h <= img.height() / k || h == 0);
    let src = img.as_raw();
    let stride = img.width() as usize * 3;
    let mut out = RgbImage::new(w.max(1), h.max(1));
    let (k, kk) = (k as usize, k * k);
    let used = w as usize * k * 3; // columns that fall into whole blocks
    let first_col = bx as usize * k * 3;
    let mut col = vec![0u32; used];
    for (oy, dst) in out
        .as_mut()
        .chunks_exact_mut(w.max(1) as usize * 3)
        .enumerate()
        .take(h as usize)
    {
        col.iter_mut().for_each(|s| *s = 0);
        for yy in 0..k {
            let row = &src[((by as usize + oy) * k + yy) * stride + first_col..][..used];
            for (s, &v) in col.iter_mut().zip(row) {
                *s += v as u32;
            }
        }
        match k {
            2 => block_means::<2>(&col, dst, kk),
            3 => block_means::<3>(&col, dst, kk),
            4 => block_means::<4>(&col, dst, kk),
            5 => block_means::<5>(&col, dst, kk),
            6 => block_means::<6>(&col, dst, kk),
            8 => block_means::<8>(&col, dst, kk),
            _ => {
                for (d, block) in dst.chunks_exact_mut(3).zip(col.chunks_exact(3 * k)) {
                    let mut sum = [0u32; 3];
                    for p in block.chunks_exact(3) {
                        sum[0] += p[0];
                        sum[1] += p[1];
                        sum[2] += p[2];
                    }
                    for c in 0..3 {
                        d[c] = ((sum[c] + kk / 2) / kk) as u8;
                    }
                }
            }
        }
    }
    out
}

/// Output pixels of one row of [`box_shrink`]: each adds `K` column sums per
/// channel (a fixed `K`, so the loops unroll) and rounds the mean.
fn block_means<const K: usize>(col: &[u32], dst: &mut [u8], kk: u32) {
    // Division by the constant block area as a multiply: exact for these ranges
    // (sums ≤ 255·K² < 2^14, so (s + kk/2) · ⌈2^32/kk⌉ >> 32 is the floor quotient).
    let inv = (1u64 << 32).div_ceil(kk as u64);
    for (d, block) in dst.chunks_exact_mut(3).zip(col.chunks_exact(3 * K)) {
        let mut sum = [0u32; 3];
        for p in 0..K {
            sum[0] += block[3 * p];
            sum[1] += block[3 * p + 1];
            sum[2] += block[3 * p + 2];
        }
        for c in 0..3 {
            d[c] = (((sum[c] + kk / 2) as u64 * inv) >> 32) as u8;
        }
    }
}

/// A 2×3 affine matrix mapping source (image) to destination coordinates.
pub type Affine = [[f32; 3]; 2];

/// Least-squares similarity transform (rotation, uniform scale, translation)
/// taking `src` points onto `dst` points (Umeyama 1991, no reflection).
pub fn similarity(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Affine {
    let n = src.len() as f64;
    let (mut sx, mut sy, mut dx, mut dy) = (0f64, 0f64, 0f64, 0f64);
    for (s, d) in src.iter().zip(dst) {
        sx += s[0] as f64;
        sy += s[1] as f64;
        dx += d[0] as f64;
        dy += d[1] as f64;
    }
    let (sx, sy, dx, dy) = (sx / n, sy / n, dx / n, dy / n);
    // With complex numbers: d = a * s + t, a = sum(conj(s)·d) / sum(|s|²).
    let (mut re, mut im, mut var) = (0f64, 0f64, 0f64);
    for (s, d) in src.iter().zip(dst) {
        let (px, py) = (s[0] as f64 - sx, s[1] as f64 - sy);
        let (qx, qy) = (d[0] as f64 - dx, d[1] as f64 - dy);
        re += px * qx + py * qy;
        im += px * qy - py * qx;
        var += px * px + py * py;
    }
    let (a, b) = if var > 0.0 {
        (re / var, im / var)
    } else {
        (1.0, 0.0)
    };
    let tx = dx - (a * sx - b * sy);
    let ty = dy - (b * sx + a * sy);
    [
        [a as f32, -b as f32, tx as f32],
        [b as f32, a as f32, ty as f32],
    ]
}

/// The inverse of an affine matrix (identity if singular).
pub fn invert(m: &Affine) -> Affine {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det.abs() < 1e-12 {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    }
    let (a, b, c, d) = (m[1][1] / det, -m[0][1] / det, -m[1][0] / det, m[0][0] / det);
    [
        [a, b, -(a * m[0][2] + b * m[1][2])],
        [c, d, -(c * m[0][2] + d * m[1][2])],
    ]
}

/// Warps `img` by `m` (source → destination) into an `out_w × out_h` image,
/// bilinear, black outside the source (as `cv2.warpAffine` with a constant border).
pub fn warp_affine(img: &RgbImage, m: &Affine, out_w: u32, out_h: u32) -> RgbImage {
    warp_affine_window(img, (0, 0), m, out_w, out_h)
}

/// [`warp_affine`] of a larger image of which `img` is the window whose top-left
/// pixel is `(ox, oy)`: `m` maps the larger image's coordinates. Where every
/// sample the warp takes lies in the window (or outside the larger image), the
/// result is [`warp_affine`] of the larger image bit for bit (the source
/// coordinates are shifted by whole pixels, which is exact in `f32`).
pub(crate) fn warp_affine_window(
    img: &RgbImage,
    (ox, oy): (u32, u32),
    m: &Affine,
    out_w: u32,
    out_h: u32,
) -> RgbImage {
    let (ox, oy) = (ox as f32, oy as f32);
    let inv = invert(m);
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let src = img.as_raw();
    let stride = iw as usize * 3;
    let mut out = RgbImage::new(out_w, out_h);
    let dst = out.as_mut();
    for v in 0..out_h as usize {
        for u in 0..out_w as usize {
            let (uf, vf) = (u as f32, v as f32);
            let x = inv[0][0] * uf + inv[0][1] * vf + inv[0][2] - ox;
            let y = inv[1][0] * uf + inv[1][1] * vf + inv[1][2] - oy;
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let mut acc = [0f32; 3];
            for (dy, wy) in [(0i64, 1.0 - fy), (1, fy)] {
                let sy = y0 + dy;
                if sy < 0 || sy >= ih {
                    continue;
                }
                for (dx, wx) in [(0i64, 1.0 - fx), (1, fx)] {
                    let sx = x0 + dx;
                    if sx < 0 || sx >= iw {
                        continue;
                    }
                    let w = wx * wy;
                    let o = sy as usize * stride + sx as usize * 3;
                    acc[0] += w * src[o] as f32;
                    acc[1] += w * src[o + 1] as f32;
                    acc[2] += w * src[o + 2] as f32;
                }
            }
            let o = (v * out_w as usize + u) * 3;
            for c in 0..3 {
                dst[o + c] = acc[c].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Interleaved RGB floats to planar CHW with `(x - mean[c]) * scale[c]`.
pub(crate) fn to_chw(hwc: &[f32], mean: [f32; 3], scale: [f32; 3]) -> Vec<f32> {
    let n = hwc.len() / 3;
    let mut out = vec![0f32; hwc.len()];
    let (r, rest) = out.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for (i, px) in hwc.chunks_exact(3).enumerate() {
        r[i] = (px[0] - mean[0]) * scale[0];
        g[i] = (px[1] - mean[1]) * scale[1];
        b[i] = (px[2] - mean[2]) * scale[2];
    }
    out
}

/// Interleaved RGB floats to one grey plane (ITU-R BT.601 weights, as OpenCV).
pub(crate) fn to_grey(hwc: &[f32], scale: f32) -> Vec<f32> {
    hwc.chunks_exact(3)
        .map(|p| (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]).round() * scale)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward form of [`resize_region`] (the fast one must match it bit for bit).
    ///
    /// Resizes `region` of `img` to `out_w × out_h` with bilinear interpolation
    /// and returns interleaved RGB floats (0..255). Samples are clamped to the
    /// part of the region inside the image (as `cv2.resize` on an ROI does);
    /// where the region lies outside the image entirely, `fill` is used.
    fn resize_region_reference(
        img: &RgbImage,
        r: Region,
        out_w: usize,
        out_h: usize,
        fill: Option<f32>,
    ) -> Vec<f32> {
        let tx = taps(r.x, r.w, out_w);
        let ty = taps(r.y, r.h, out_h);
        let (cx0, cx1, cy0, cy1) = clamp_bounds(img, r, fill.is_some());
        let buf = img.as_raw();
        let stride = img.width() as usize * 3;
        let mut out = vec![0f32; out_w * out_h * 3];
        let outside = |v: i64, lo: i64, hi: i64| v < lo || v > hi;
        for (oy, row) in out.chunks_exact_mut(out_w * 3).enumerate() {
            let y = ty.i0[oy];
            let fy = ty.frac[oy];
            for (ox, px) in row.chunks_exact_mut(3).enumerate() {
                let x = tx.i0[ox];
                let fx = tx.frac[ox];
                let mut acc = [0f32; 3];
                for (dy, wy) in [(0i64, 1.0 - fy), (1, fy)] {
                    if wy == 0.0 {
                        continue;
                    }
                    for (dx, wx) in [(0i64, 1.0 - fx), (1, fx)] {
                        if wx == 0.0 {
                            continue;
                        }
                        let (sx, sy) = (x + dx, y + dy);
                        let w = wx * wy;
                        match fill {
                            Some(f) if outside(sx, cx0, cx1) || outside(sy, cy0, cy1) => {
                                for a in &mut acc {
                                    *a += w * f;
                                }
                            }
                            _ => {
                                let sx = sx.clamp(cx0, cx1) as usize;
                                let sy = sy.clamp(cy0, cy1) as usize;
                                let o = sy * stride + sx * 3;
                                for c in 0..3 {
                                    acc[c] += w * buf[o + c] as f32;
                                }
                            }
                        }
                    }
                }
                px.copy_from_slice(&acc);
            }
        }
        out
    }

    /// The straightforward form of [`box_shrink`].
    ///
    /// Shrinks an image by an integer factor, averaging each `k × k` block (like
    /// `cv2.INTER_AREA`), so that a later bilinear resize does not alias.
    fn box_shrink_reference(img: &RgbImage, k: u32) -> RgbImage {
        let (w, h) = (img.width() / k, img.height() / k);
        let src = img.as_raw();
        let stride = img.width() as usize * 3;
        let mut out = RgbImage::new(w.max(1), h.max(1));
        let kk = k * k;
        let mut sums = vec![0u32; w as usize * 3];
        for oy in 0..h as usize {
            sums.iter_mut().for_each(|s| *s = 0);
            for yy in 0..k as usize {
                let row = &src[(oy * k as usize + yy) * stride..];
                for ox in 0..w as usize {
                    let base = ox * k as usize * 3;
                    for xx in 0..k as usize {
                        let o = base + xx * 3;
                        sums[ox * 3] += row[o] as u32;
                        sums[ox * 3 + 1] += row[o + 1] as u32;
                        sums[ox * 3 + 2] += row[o + 2] as u32;
                    }
                }
            }
            let dst = &mut out.as_mut()[oy * w as usize * 3..(oy + 1) * w as usize * 3];
            for (d, s) in dst.iter_mut().zip(&sums) {
                *d = ((s + kk / 2) / kk) as u8;
            }
        }
        out
    }

    #[test]
    fn similarity_recovers_a_known_transform() {
        let (s, th, tx, ty) = (1.7f32, 0.3f32, 12.0f32, -4.0f32);
        let (a, b) = (s * th.cos(), s * th.sin());
        let src = [[1.0, 2.0], [5.0, 3.0], [4.0, 8.0], [0.0, 0.0], [9.0, 1.0]];
        let dst: Vec<[f32; 2]> = src
            .iter()
            .map(|p| [a * p[0] - b * p[1] + tx, b * p[0] + a * p[1] + ty])
            .collect();
        let m = similarity(&src, &dst);
        assert!((m[0][0] - a).abs() < 1e-4 && (m[1][0] - b).abs() < 1e-4);
        assert!((m[0][2] - tx).abs() < 1e-3 && (m[1][2] - ty).abs() < 1e-3);
        let inv = invert(&m);
        let p = [3.0f32, 7.0];
        let q = [
            m[0][0] * p[0] + m[0][1] * p[1] + m[0][2],
            m[1][0] * p[0] + m[1][1] * p[1] + m[1][2],
        ];
        let r = [
            inv[0][0] * q[0] + inv[0][1] * q[1] + inv[0][2],
            inv[1][0] * q[0] + inv[1][1] * q[1] + inv[1][2],
        ];
        assert!((r[0] - p[0]).abs() < 1e-3 && (r[1] - p[1]).abs() < 1e-3);
    }

    #[test]
    fn fast_resize_and_shrink_equal_the_straightforward_forms() {
        // A textured image (not flat), odd sizes, regions inside, across and outside.
        let img = RgbImage::from_fn(173, 91, |x, y| {
            image::Rgb([
                (x * 7 + y * 3) as u8,
                (x * x + y) as u8,
                (x ^ (y * 5)) as u8,
            ])
        });
        let regions = [
            (0.0, 0.0, 173.0, 91.0),
            (10.3, 5.7, 60.2, 40.9),
            (-30.0, -12.5, 240.0, 130.0),
            (150.0, 70.0, 50.0, 50.0),
            (-80.0, -80.0, 40.0, 40.0),
        ];
        for (x, y, w, h) in regions {
            let r = Region { x, y, w, h };
            for fill in [None, Some(127.0), Some(0.0)] {
                for (ow, oh) in [(64, 64), (320, 240), (24, 24), (7, 13)] {
                    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
                    assert_eq!(
                        bits(resize_region(&img, r, ow, oh, fill)),
                        bits(resize_region_reference(&img, r, ow, oh, fill)),
                        "region {r:?} fill {fill:?} {ow}x{oh}"
                    );
                }
            }
        }
        for k in 1..=9 {
            assert_eq!(
                box_shrink(&img, k).as_raw(),
                box_shrink_reference(&img, k).as_raw(),
                "k {k}"
            );
        }
    }

    #[test]
    fn resize_of_a_flat_image_is_flat() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([10, 20, 30]));
        let out = resize_region(
            &img,
            Region {
                x: 0.0,
                y: 0.0,
                w: 37.0,
                h: 23.0,
            },
            64,
            48,
            None,
        );
        assert!(out
            .chunks_exact(3)
            .all(|p| (p[0] - 10.0).abs() < 1e-3 && (p[2] - 30.0).abs() < 1e-3));
        let shrunk = box_shrink(&img, 3);
        assert_eq!((shrunk.width(), shrunk.height()), (12, 7));
        assert_eq!(shrunk.get_pixel(5, 5).0, [10, 20, 30]);
    }
}
