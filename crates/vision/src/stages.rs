//! The pipeline stages, each callable on its own (benchmarks time them one by
//! one): detect → landmarks → five points → align → embed; liveness, pose and
//! eyes from the box or landmarks. Pre- and post-processing follow the model
//! package's reference code (`lib/fr_*.js`).

use image::RgbImage;

use crate::imgops::{resize_region, similarity, to_chw, to_grey, warp_affine, Region};
use crate::{BBox, Embedding, Engine, VisionError};

/// The ArcFace 112×112 reference positions of the five alignment points.
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

const DET_W: usize = 320;
const DET_H: usize = 240;

/// One detector hit: a square box (may extend past the image) and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
}

fn softmax(v: &[f32]) -> Vec<f32> {
    let m = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

fn missing(stage: &str) -> VisionError {
    VisionError::Runtime(format!(
        "the {stage} stage is switched off in EngineOptions"
    ))
}

/// The five alignment points from 68 landmarks, as the model package's
/// reference code takes them: the eye centres (means of the eyelid points
/// 37, 38, 40, 41 and 43, 44, 46, 47), the nose tip (30), and the mouth
/// corners (means of 48 & 60 and 54 & 64, outer and inner lip corners).
pub fn five_points(lm: &[[f32; 2]]) -> [[f32; 2]; 5] {
    let mean = |ix: &[usize]| {
        let n = ix.len() as f32;
        let (sx, sy) = ix
            .iter()
            .fold((0.0, 0.0), |(x, y), &i| (x + lm[i][0], y + lm[i][1]));
        [sx / n, sy / n]
    };
    [
        mean(&[37, 38, 40, 41]),
        mean(&[43, 44, 46, 47]),
        lm[30],
        mean(&[48, 60]),
        mean(&[54, 64]),
    ]
}

/// Warps the face onto the ArcFace 112×112 template by the least-squares
/// similarity transform of its five points.
pub fn align(img: &RgbImage, five: &[[f32; 2]; 5]) -> RgbImage {
    let m = similarity(five, &ARCFACE_TEMPLATE);
    warp_affine(img, &m, 112, 112)
}

/// Variance of the 4-neighbour Laplacian of the grey image.
pub(crate) fn sharpness(img: &RgbImage) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let g: Vec<f32> = img
        .pixels()
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect();
    let (mut s, mut s2, mut n) = (0f64, 0f64, 0f64);
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let i = y * w + x;
            let l = (g[i - 1] + g[i + 1] + g[i - w] + g[i + w] - 4.0 * g[i]) as f64;
            s += l;
            s2 += l * l;
            n += 1.0;
        }
    }
    if n == 0.0 {
        return 0.0;
    }
    (s2 / n - (s / n).powi(2)) as f32
}

/// Integer box of a float box, as the reference code takes it: `(x, y, w, h)`.
fn int_box(b: &BBox) -> (f32, f32, f32, f32) {
    let (x1, y1) = (b.x1.trunc(), b.y1.trunc());
    let (x2, y2) = (b.x2.trunc(), b.y2.trunc());
    (x1, y1, (x2 - x1).abs().max(1.0), (y2 - y1).abs().max(1.0))
}

/// The reference code's context crop: the box scaled by `scale` about its
/// centre, shrunk to fit the image, then shifted inside it.
fn context_region(img: &RgbImage, b: &BBox, scale: f32) -> Region {
    let (sw, sh) = (img.width() as f32, img.height() as f32);
    let (x, y, bw, bh) = int_box(&b.clamp_to(img.width(), img.height()));
    let s = ((sh - 1.0) / bh).min((sw - 1.0) / bw).min(scale);
    let (nw, nh) = (bw * s, bh * s);
    let (cx, cy) = (x + bw / 2.0, y + bh / 2.0);
    let (mut l, mut t, mut r, mut btm) =
        (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        btm -= t;
        t = 0.0;
    }
    if r > sw - 1.0 {
        l -= r - sw + 1.0;
        r = sw - 1.0;
    }
    if btm > sh - 1.0 {
        t -= btm - sh + 1.0;
        btm = sh - 1.0;
    }
    let (l, t) = (l.max(0.0).trunc(), t.max(0.0).trunc());
    Region {
        x: l,
        y: t,
        w: (r - l).trunc().clamp(1.0, sw - l),
        h: (btm - t).trunc().clamp(1.0, sh - t),
    }
}

impl Engine {
    /// Detects faces: the image is resized to 320×240 (after an area shrink
    /// when it is much larger), scored, thresholded, merged by NMS, and each
    /// box is made square (side = box height) about its centre.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        let k = (img.width() / DET_W as u32).min(img.height() / DET_H as u32);
        let shrunk;
        let (src, k) = if k >= 2 && !self.opts.detect_tiles {
            shrunk = crate::imgops::box_shrink(img, k);
            (&shrunk, k as f32)
        } else {
            (img, 1.0)
        };
        let (sw, sh) = (src.width() as f32, src.height() as f32);
        let mut views = vec![Region {
            x: 0.0,
            y: 0.0,
            w: sw,
            h: sh,
        }];
        if self.opts.detect_tiles {
            // The image with a 15 % grey margin (faces cut by the border get context) ...
            views.push(Region {
                x: -0.15 * sw,
                y: -0.15 * sh,
                w: 1.3 * sw,
                h: 1.3 * sh,
            });
            // ... and 2×2 tiles, each 60 % of the image, overlapping by 20 %.
            for (fx, fy) in [(0.0, 0.0), (0.4, 0.0), (0.0, 0.4), (0.4, 0.4)] {
                views.push(Region {
                    x: fx * sw,
                    y: fy * sh,
                    w: 0.6 * sw,
                    h: 0.6 * sh,
                });
            }
        }
        let mut cands: Vec<Detection> = Vec::new();
        for view in views {
            // Letterbox: a 4:3 window on the view (faces keep their shape), grey outside the image.
            let (vw, vh) = if view.w * 3.0 > view.h * 4.0 {
                (view.w, view.w * 0.75)
            } else {
                (view.h * 4.0 / 3.0, view.h)
            };
            let region = Region {
                x: view.x + (view.w - vw) / 2.0,
                y: view.y + (view.h - vh) / 2.0,
                w: vw,
                h: vh,
            };
            let hwc = resize_region(src, region, DET_W, DET_H, Some(127.0));
            let input = to_chw(&hwc, [127.0; 3], [1.0 / 128.0; 3]);
            let out = self
                .detect
                .run(&[1, 3, DET_H, DET_W], &input, &["scores", "boxes"])?;
            let (scores, boxes) = (&out[0], &out[1]);
            let map_x = |v: f32| (region.x + v * region.w) * k;
            let map_y = |v: f32| (region.y + v * region.h) * k;
            cands.extend(
                scores
                    .chunks_exact(2)
                    .zip(boxes.chunks_exact(4))
                    .filter(|(s, _)| s[1] >= self.opts.det_threshold)
                    .map(|(s, b)| Detection {
                        bbox: BBox {
                            x1: map_x(b[0]),
                            y1: map_y(b[1]),
                            x2: map_x(b[2]),
                            y2: map_y(b[3]),
                        },
                        score: s[1],
                    })
                    .filter(|d| d.bbox.width() > 0.0 && d.bbox.height() > 0.0),
            );
        }
        cands.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut kept: Vec<Detection> = Vec::new();
        for c in cands {
            // Also merge a box mostly inside a kept one (a face part seen by a tile).
            let overlaps = |k: &Detection| {
                let b = &c.bbox;
                let iw = (k.bbox.x2.min(b.x2) - k.bbox.x1.max(b.x1)).max(0.0);
                let ih = (k.bbox.y2.min(b.y2) - k.bbox.y1.max(b.y1)).max(0.0);
                let smaller = (k.bbox.width() * k.bbox.height()).min(b.width() * b.height());
                k.bbox.iou(b) >= self.opts.nms_iou || iw * ih >= 0.7 * smaller
            };
            if !kept.iter().any(overlaps) {
                kept.push(c);
            }
        }
        for d in &mut kept {
            let side = d.bbox.height();
            let cx = (d.bbox.x1 + d.bbox.x2) / 2.0;
            let cy = (d.bbox.y1 + d.bbox.y2) / 2.0;
            d.bbox = BBox {
                x1: cx - side / 2.0,
                y1: cy - side / 2.0,
                x2: cx + side / 2.0,
                y2: cy + side / 2.0,
            };
        }
        Ok(kept)
    }

    /// 68 landmarks of the face in `bbox` (64×64 grey crop of the box, black
    /// outside the image).
    pub fn landmarks(&self, img: &RgbImage, bbox: &BBox) -> Result<Vec<[f32; 2]>, VisionError> {
        let r = Region {
            x: bbox.x1,
            y: bbox.y1,
            w: bbox.width().max(1.0),
            h: bbox.height().max(1.0),
        };
        let hwc = resize_region(img, r, 64, 64, Some(0.0));
        let input = to_grey(&hwc, 1.0 / 256.0);
        let out = self.landmark.run(&[1, 1, 64, 64], &input, &["output"])?;
        Ok(out[0]
            .chunks_exact(2)
            .take(68)
            .map(|p| [p[0] * r.w + r.x, p[1] * r.h + r.y])
            .collect())
    }

    /// The embedding of an aligned 112×112 face (see [`align`]).
    pub fn embed(&self, aligned: &RgbImage) -> Result<Embedding, VisionError> {
        Ok(self.embed_with_norm(aligned)?.0)
    }

    /// The embedding and the L2 norm of the raw model output (a
    /// recognisability score: see [`crate::Quality::embedding_norm`]).
    pub fn embed_with_norm(&self, aligned: &RgbImage) -> Result<(Embedding, f32), VisionError> {
        // The model was trained on OpenCV's BGR order (LFW View 1 DevTest: 99.0 % in
        // BGR against 98.6 % in RGB, see bench/vision.md).
        let input = to_chw_bgr_u8(aligned.as_raw(), 127.0, 1.0 / 128.0);
        let mut out = self.feature.run(&[1, 3, 112, 112], &input, &["output"])?;
        let raw = std::mem::take(&mut out[0]);
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        Ok((Embedding::from_vec(raw)?, norm))
    }

    /// Passive liveness of the face in `bbox`: P(live), from a 128×128 crop of
    /// the box enlarged 2.7× (clamped to the image).
    pub fn liveness(&self, img: &RgbImage, bbox: &BBox) -> Result<f32, VisionError> {
        let model = self.liveness.as_ref().ok_or_else(|| missing("liveness"))?;
        let r = context_region(img, bbox, 2.7);
        let mut hwc = resize_region(img, r, 128, 128, None);
        // BGR, as the model was trained (on ../shared/eval/antispoof, RGB input
        // ranks spoofs above live faces; BGR ranks them correctly).
        hwc.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
        let input = to_chw(&hwc, [0.0; 3], [1.0; 3]);
        let out = model.run(&[1, 3, 128, 128], &input, &["output"])?;
        Ok(softmax(&out[0])[0])
    }

    /// Head pose `[yaw, pitch, roll]` in degrees, from a 224×224 crop of the
    /// box enlarged by a quarter on each side.
    pub fn pose(&self, img: &RgbImage, bbox: &BBox) -> Result<[f32; 3], VisionError> {
        let model = self.pose.as_ref().ok_or_else(|| missing("pose"))?;
        let (x, y, w, h) = int_box(bbox);
        let (sw, sh) = (img.width() as f32, img.height() as f32);
        let x1 = (x - (w / 4.0).trunc()).max(0.0);
        let y1 = (y - (h / 4.0).trunc()).max(0.0);
        let x2 = (x + w + (w / 4.0).trunc()).min(sw);
        let y2 = (y + h + (h / 4.0).trunc()).min(sh);
        let r = Region {
            x: x1,
            y: y1,
            w: (x2 - x1).max(1.0),
            h: (y2 - y1).max(1.0),
        };
        let hwc = resize_region(img, r, 224, 224, None);
        let input = to_chw(
            &hwc,
            [0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0],
            [
                1.0 / (0.229 * 255.0),
                1.0 / (0.224 * 255.0),
                1.0 / (0.225 * 255.0),
            ],
        );
        let out = model.run_all(&[1, 3, 224, 224], &input)?;
        let angle = |logits: &[f32]| {
            softmax(logits)
                .iter()
                .enumerate()
                .map(|(i, p)| i as f32 * p)
                .sum::<f32>()
                * 3.0
                - 99.0
        };
        Ok([angle(&out[0]), angle(&out[1]), angle(&out[2])])
    }

    /// Eye openness `[left, right]` (image left/right) as P(open), from 24×24
    /// grey crops around each eye.
    pub fn eyes(&self, img: &RgbImage, lm: &[[f32; 2]]) -> Result<[f32; 2], VisionError> {
        let model = self.eye.as_ref().ok_or_else(|| missing("eyes"))?;
        let (sw, sh) = (img.width() as f32, img.height() as f32);
        let mut res = [0f32; 2];
        for (k, (pts, c0, c1)) in [([37, 38, 40, 41], 36, 39), ([43, 44, 46, 47], 42, 45)]
            .into_iter()
            .enumerate()
        {
            let cx = (pts.iter().map(|&i| lm[i][0]).sum::<f32>() / 4.0).trunc();
            let cy = (pts.iter().map(|&i| lm[i][1]).sum::<f32>() / 4.0).trunc();
            let mut size = ((lm[c1][0] - lm[c0][0]) * 1.6).trunc().max(2.0);
            let x = (cx - (size / 2.0).trunc()).max(0.0);
            let y = (cy - (size / 2.0).trunc()).max(0.0);
            if x + size >= sw {
                size = sw - x - 1.0;
            }
            if y + size >= sh {
                size = sh - y - 1.0;
            }
            let r = Region {
                x,
                y,
                w: size.max(1.0),
                h: size.max(1.0),
            };
            let hwc = resize_region(img, r, 24, 24, None);
            let input = to_grey(&hwc, 1.0 / 255.0);
            let out = model.run(&[1, 1, 24, 24], &input, &["output"])?;
            res[k] = softmax(&out[0])[EYE_OPEN_CLASS];
        }
        Ok(res)
    }
}

/// Which `fr_eye` class means "open" (checked against open-eyed fixtures in the tests).
const EYE_OPEN_CLASS: usize = 1;

/// Interleaved RGB bytes to planar BGR floats, `(x - mean) * scale`.
fn to_chw_bgr_u8(rgb: &[u8], mean: f32, scale: f32) -> Vec<f32> {
    let n = rgb.len() / 3;
    let mut out = vec![0f32; rgb.len()];
    let (b, rest) = out.split_at_mut(n);
    let (g, r) = rest.split_at_mut(n);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        r[i] = (px[0] as f32 - mean) * scale;
        g[i] = (px[1] as f32 - mean) * scale;
        b[i] = (px[2] as f32 - mean) * scale;
    }
    out
}
