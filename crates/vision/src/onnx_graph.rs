//! A graph rewrite that lets ONNX Runtime keep `PRelu` networks in its
//! blocked NCHWc layout, done on the ONNX protobuf bytes at load time.
//!
//! ONNX Runtime 1.26 runs convolutions in a blocked layout (NCHWc) at
//! `GraphOptimizationLevel::All`, but has no NCHWc `PRelu`: every `PRelu`
//! after a convolution forces a reorder back to NCHW and another reorder
//! forward for the next convolution. In `fr_feature` (33 `PRelu`s) the
//! reorders and the `PRelu` kernel cost about 2.1 ms of 6.1 ms on one thread.
//!
//! With a per-channel slope `a`, `PRelu(y) = Relu(y) + (−a)·Relu(−y)`, and
//! every piece has an NCHWc form: `Relu` runs in place on the blocked tensor,
//! and a per-channel scale written as `BatchNormalization` (scale `s`, bias 0,
//! mean 0, variance 1, epsilon 0) becomes a 1×1 depthwise NCHWc convolution,
//! into which the runtime fuses the following `Relu` or `Add`. The result is
//! bit-identical: for `y > 0` it is `y + (−a)·0 = y`, for `y ≤ 0` it is
//! `0 + (−a)·(−y) = a·y`, each a single correctly rounded product, which is
//! what `PRelu` computes (the test `prelu_rewrite_gives_identical_embeddings`
//! checks it on real faces). Measured on `fr_feature`, one thread: 6.13 →
//! 5.15 ms per call.
//!
//! Only the protobuf wire format is parsed, and only the fields needed: the
//! model's graph, the graph's nodes and initializers. Everything else is
//! copied byte for byte, so the rewrite cannot lose what it does not know.

use std::collections::{HashMap, HashSet};

pub(crate) mod tfjs;

/// What went wrong reading the model bytes.
#[derive(Debug)]
pub(crate) struct GraphError(String);

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ONNX graph rewrite: {}", self.0)
    }
}

fn bad(what: &str) -> GraphError {
    GraphError(what.to_string())
}

// ------------------------------------------------------------- wire format

#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// One field of a message: its number, its value and its bytes (key included).
#[derive(Clone, Copy)]
struct Field<'a> {
    num: u64,
    value: Value<'a>,
    raw: &'a [u8],
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, GraphError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint longer than 10 bytes"))
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], GraphError> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| bad("field runs past the end of its message"))?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(s)
}

/// Splits a message into its fields, in order.
fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, GraphError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = varint(buf, &mut pos)?;
        let value = match key & 7 {
            0 => Value::Varint(varint(buf, &mut pos)?),
            1 => {
                take(buf, &mut pos, 8)?;
                Value::Fixed64
            }
            2 => {
                let n = varint(buf, &mut pos)? as usize;
                Value::Bytes(take(buf, &mut pos, n)?)
            }
            5 => {
                let b = take(buf, &mut pos, 4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            t => return Err(GraphError(format!("unsupported wire type {t}"))),
        };
        out.push(Field {
            num: key >> 3,
            value,
            raw: &buf[start..pos],
        });
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, num: u64, b: &[u8]) {
    put_varint(out, num << 3 | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_uint(out: &mut Vec<u8>, num: u64, v: u64) {
    put_varint(out, num << 3);
    put_varint(out, v);
}

fn text(v: Value<'_>) -> Result<&str, GraphError> {
    match v {
        Value::Bytes(b) => std::str::from_utf8(b).map_err(|_| bad("a name is not UTF-8")),
        _ => Err(bad("a string field has the wrong wire type")),
    }
}

// ------------------------------------------------------------- ONNX messages

// Field numbers from onnx.proto.
const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_INITIALIZER: u64 = 5;
const GRAPH_INPUT: u64 = 11;
const NODE_INPUT: u64 = 1;
const NODE_OUTPUT: u64 = 2;
const NODE_NAME: u64 = 3;
const NODE_OP_TYPE: u64 = 4;
const NODE_ATTRIBUTE: u64 = 5;
const NODE_DOMAIN: u64 = 7;
const ATTR_NAME: u64 = 1;
const ATTR_F: u64 = 2;
const ATTR_I: u64 = 3;
const ATTR_TYPE_INT: u64 = 2;
const ATTR_TYPE: u64 = 20;
const ATTR_TYPE_FLOAT: u64 = 1;
const TENSOR_DIMS: u64 = 1;
const TENSOR_DATA_TYPE: u64 = 2;
const TENSOR_FLOAT_DATA: u64 = 4;
const TENSOR_NAME: u64 = 8;
const TENSOR_RAW_DATA: u64 = 9;
const TENSOR_DATA_LOCATION: u64 = 14;
const DATA_TYPE_FLOAT: u64 = 1;
const VALUE_INFO_NAME: u64 = 1;
const GRAPH_OUTPUT: u64 = 12;
const GRAPH_VALUE_INFO: u64 = 13;

struct Node<'a> {
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
    op_type: &'a str,
    domain: &'a str,
    /// The `group` attribute (1 when absent).
    group: u64,
}

fn parse_node(buf: &[u8]) -> Result<Node<'_>, GraphError> {
    let mut n = Node {
        inputs: vec![],
        outputs: vec![],
        op_type: "",
        domain: "",
        group: 1,
    };
    for f in fields(buf)? {
        match (f.num, f.value) {
            (NODE_INPUT, v) => n.inputs.push(text(v)?),
            (NODE_OUTPUT, v) => n.outputs.push(text(v)?),
            (NODE_OP_TYPE, v) => n.op_type = text(v)?,
            (NODE_DOMAIN, v) => n.domain = text(v)?,
            (NODE_ATTRIBUTE, Value::Bytes(a)) if attribute_named(a, b"group")? => {
                for f in fields(a)? {
                    if let (ATTR_I, Value::Varint(g)) = (f.num, f.value) {
                        n.group = g;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(n)
}

/// Whether an attribute (its bytes) is the one called `name`.
fn attribute_named(attr: &[u8], name: &[u8]) -> Result<bool, GraphError> {
    Ok(fields(attr)?
        .iter()
        .any(|f| f.num == ATTR_NAME && matches!(f.value, Value::Bytes(b) if b == name)))
}

/// The node with its `group` attribute set to `group` (every other field kept).
fn with_group(buf: &[u8], group: u64) -> Result<Vec<u8>, GraphError> {
    let mut out = Vec::with_capacity(buf.len() + 16);
    let mut attr = Vec::new();
    put_bytes(&mut attr, ATTR_NAME, b"group");
    put_uint(&mut attr, ATTR_I, group);
    put_uint(&mut attr, ATTR_TYPE, ATTR_TYPE_INT);
    for f in fields(buf)? {
        match (f.num, f.value) {
            (NODE_ATTRIBUTE, Value::Bytes(a)) if attribute_named(a, b"group")? => {}
            _ => out.extend_from_slice(f.raw),
        }
    }
    put_bytes(&mut out, NODE_ATTRIBUTE, &attr);
    Ok(out)
}

/// A float tensor's dims and values.
type FloatTensor = (Vec<u64>, Vec<f32>);

/// An initializer's name, without decoding its data.
fn tensor_name(buf: &[u8]) -> Result<&str, GraphError> {
    let f = fields(buf)?;
    f.iter()
        .find(|f| f.num == TENSOR_NAME)
        .map_or(Ok(""), |f| text(f.value))
}

/// A float initializer's dims and values (`None` for other types or external
/// data, which the rewrites leave alone).
fn parse_float_tensor(buf: &[u8]) -> Result<Option<FloatTensor>, GraphError> {
    let (mut dims, mut dtype, mut data, mut external) = (vec![], 0, vec![], false);
    for f in fields(buf)? {
        match (f.num, f.value) {
            (TENSOR_DIMS, Value::Varint(d)) => dims.push(d),
            (TENSOR_DIMS, Value::Bytes(b)) => {
                let mut p = 0;
                while p < b.len() {
                    dims.push(varint(b, &mut p)?);
                }
            }
            (TENSOR_DATA_TYPE, Value::Varint(t)) => dtype = t,
            (TENSOR_RAW_DATA, Value::Bytes(b)) | (TENSOR_FLOAT_DATA, Value::Bytes(b)) => {
                data.extend(
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            (TENSOR_FLOAT_DATA, Value::Fixed32(v)) => data.push(f32::from_bits(v)),
            (TENSOR_DATA_LOCATION, Value::Varint(1)) => external = true,
            _ => {}
        }
    }
    let count: u64 = dims.iter().product();
    let ok = dtype == DATA_TYPE_FLOAT && !external && count == data.len() as u64;
    Ok(ok.then_some((dims, data)))
}

fn node_bytes(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    epsilon: Option<f32>,
) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        put_bytes(&mut n, NODE_INPUT, i.as_bytes());
    }
    put_bytes(&mut n, NODE_OUTPUT, output.as_bytes());
    put_bytes(&mut n, NODE_NAME, name.as_bytes());
    put_bytes(&mut n, NODE_OP_TYPE, op.as_bytes());
    if let Some(eps) = epsilon {
        let mut a = Vec::new();
        put_bytes(&mut a, ATTR_NAME, b"epsilon");
        put_varint(&mut a, ATTR_F << 3 | 5);
        a.extend_from_slice(&eps.to_le_bytes());
        put_uint(&mut a, ATTR_TYPE, ATTR_TYPE_FLOAT);
        put_bytes(&mut n, NODE_ATTRIBUTE, &a);
    }
    n
}

fn tensor_bytes(name: &str, dims: &[u64], values: &[f32]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        put_uint(&mut t, TENSOR_DIMS, d);
    }
    put_uint(&mut t, TENSOR_DATA_TYPE, DATA_TYPE_FLOAT);
    put_bytes(&mut t, TENSOR_NAME, name.as_bytes());
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    put_bytes(&mut t, TENSOR_RAW_DATA, &raw);
    t
}

/// What both rewrites need to know about a model, read in one pass.
struct Graph<'a> {
    /// The model's top-level fields (the graph among them).
    top: Vec<Field<'a>>,
    /// The graph's fields, in order (nodes, initializers, inputs …).
    fields: Vec<Field<'a>>,
    /// The nodes, in graph order.
    nodes: Vec<Node<'a>>,
    /// Float initializers by name.
    floats: HashMap<&'a str, FloatTensor>,
    /// For each value name, the nodes that read it.
    consumers: HashMap<&'a str, Vec<usize>>,
    /// Every initializer and node output name.
    names: HashSet<&'a str>,
    inputs: HashSet<&'a str>,
    outputs: HashSet<&'a str>,
}

impl<'a> Graph<'a> {
    fn parse(model: &'a [u8]) -> Result<Graph<'a>, GraphError> {
        let top = fields(model)?;
        let graph = top
            .iter()
            .find(|f| f.num == MODEL_GRAPH)
            .ok_or_else(|| bad("the model has no graph"))?;
        let Value::Bytes(graph_buf) = graph.value else {
            return Err(bad("the graph field has the wrong wire type"));
        };
        let mut g = Graph {
            fields: fields(graph_buf)?,
            top,
            nodes: vec![],
            floats: HashMap::new(),
            consumers: HashMap::new(),
            names: HashSet::new(),
            inputs: HashSet::new(),
            outputs: HashSet::new(),
        };
        let value_names = |b: &'a [u8]| -> Result<Vec<&'a str>, GraphError> {
            fields(b)?
                .iter()
                .filter(|vf| vf.num == VALUE_INFO_NAME)
                .map(|vf| text(vf.value))
                .collect()
        };
        for f in &g.fields {
            match (f.num, f.value) {
                (GRAPH_NODE, Value::Bytes(b)) => {
                    let n = parse_node(b)?;
                    for &i in &n.inputs {
                        g.consumers.entry(i).or_default().push(g.nodes.len());
                    }
                    g.names.extend(&n.outputs);
                    g.nodes.push(n);
                }
                (GRAPH_INITIALIZER, Value::Bytes(b)) => {
                    let name = tensor_name(b)?;
                    g.names.insert(name);
                    if let Some(t) = parse_float_tensor(b)? {
                        g.floats.insert(name, t);
                    }
                }
                (GRAPH_INPUT, Value::Bytes(b)) => g.inputs.extend(value_names(b)?),
                (GRAPH_OUTPUT, Value::Bytes(b)) => g.outputs.extend(value_names(b)?),
                _ => {}
            }
        }
        Ok(g)
    }

    /// A float initializer a rewrite may change or drop: read by one node only,
    /// and not also a graph input.
    fn own(&self, name: &str) -> Option<&FloatTensor> {
        let one_reader = self.consumers.get(name).is_some_and(|c| c.len() == 1);
        (one_reader && !self.inputs.contains(name))
            .then(|| self.floats.get(name))
            .flatten()
    }

    /// A per-channel `[C,1,1]` or `[C]` float initializer of `c` values (any `c > 1`
    /// when `c` is `None`).
    fn per_channel(&self, name: &str, c: Option<u64>) -> Option<&[f32]> {
        let (d, v) = self.floats.get(name)?;
        let n = v.len() as u64;
        (c.is_none_or(|c| c == n) && n > 1 && (d.as_slice() == [n, 1, 1] || d.as_slice() == [n]))
            .then_some(v.as_slice())
    }

    /// A `Conv`'s 4-D weight, when the rewrite may change it.
    fn conv_weight(&self, n: &Node<'_>) -> Option<&FloatTensor> {
        (n.op_type == "Conv" && n.domain.is_empty() && n.inputs.len() >= 2)
            .then(|| self.own(n.inputs[1]))
            .flatten()
            .filter(|(d, _)| d.len() == 4)
    }

    /// The model with its graph replaced by `graph`.
    fn join(&self, graph: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(graph.len() + 1024);
        for f in &self.top {
            if f.num == MODEL_GRAPH {
                put_bytes(&mut out, MODEL_GRAPH, graph);
            } else {
                out.extend_from_slice(f.raw);
            }
        }
        out
    }
}

/// Rewrites every per-channel `PRelu` (slope of shape `[C,1,1]` or `[C]`) as
/// `Relu(y) + BN(−a)(Relu(BN(−1)(y)))`; returns the new model bytes and the
/// number of nodes rewritten. Other `PRelu`s and all other nodes are kept.
pub(crate) fn rewrite_prelu(model: &[u8]) -> Result<(Vec<u8>, usize), GraphError> {
    let g = Graph::parse(model)?;
    let slope = |n: &Node<'_>| -> Option<&[f32]> {
        (n.op_type == "PRelu" && n.domain.is_empty() && n.inputs.len() == 2 && n.outputs.len() == 1)
            .then(|| g.per_channel(n.inputs[1], None))
            .flatten()
    };
    // The slopes no other node reads are dropped (the runtime would warn about them).
    let dropped: HashSet<&str> = g
        .nodes
        .iter()
        .filter(|n| slope(n).is_some() && g.own(n.inputs[1]).is_some())
        .map(|n| n.inputs[1])
        .collect();
    // A prefix no existing name starts with, for the new names.
    let mut prefix = String::from("facegate_prelu");
    while g.names.iter().any(|n| n.starts_with(&prefix)) {
        prefix.push('_');
    }

    let mut graph = Vec::with_capacity(model.len() + 64 * 1024);
    let mut new_inits: Vec<Vec<u8>> = Vec::new();
    let mut nodes = g.nodes.iter();
    let mut rewritten = 0;
    for f in &g.fields {
        match (f.num, f.value) {
            (GRAPH_NODE, Value::Bytes(_)) => {
                let n = nodes.next().expect("one parsed node per node field");
                let Some(a) = slope(n) else {
                    graph.extend_from_slice(f.raw);
                    continue;
                };
                let name = |s: &str| format!("{prefix}{rewritten}_{s}");
                let c = [a.len() as u64];
                for (suffix, values) in [
                    ("neg", vec![-1.0f32; a.len()]),
                    ("slope", a.iter().map(|v| -v).collect()),
                    ("zero", vec![0.0; a.len()]),
                    ("one", vec![1.0; a.len()]),
                ] {
                    new_inits.push(tensor_bytes(&name(suffix), &c, &values));
                }
                // x·s + 0 with mean 0, variance 1, epsilon 0: a per-channel scale.
                let scale = |input: &str, s: &str, out: &str| {
                    let ins = [
                        input.to_string(),
                        name(s),
                        name("zero"),
                        name("zero"),
                        name("one"),
                    ];
                    let ins = ins.each_ref().map(String::as_str);
                    node_bytes(
                        "BatchNormalization",
                        &name(out),
                        &ins,
                        &name(out),
                        Some(0.0),
                    )
                };
                let (y, out) = (n.inputs[0], n.outputs[0]);
                for node in [
                    node_bytes("Relu", &name("pos"), &[y], &name("pos"), None),
                    scale(y, "neg", "neg_y"),
                    node_bytes(
                        "Relu",
                        &name("neg_part"),
                        &[&name("neg_y")],
                        &name("neg_part"),
                        None,
                    ),
                    scale(&name("neg_part"), "slope", "scaled"),
                    node_bytes(
                        "Add",
                        &name("add"),
                        &[&name("scaled"), &name("pos")],
                        out,
                        None,
                    ),
                ] {
                    put_bytes(&mut graph, GRAPH_NODE, &node);
                }
                rewritten += 1;
            }
            (GRAPH_INITIALIZER, Value::Bytes(b)) if dropped.contains(tensor_name(b)?) => {}
            _ => graph.extend_from_slice(f.raw),
        }
    }
    if rewritten == 0 {
        return Ok((model.to_vec(), 0));
    }
    for t in new_inits {
        put_bytes(&mut graph, GRAPH_INITIALIZER, &t);
    }
    Ok((g.join(&graph), rewritten))
}

/// Both rewrites, padding first (so the padded `PRelu`s are rewritten too):
/// returns the new model, the blocks padded and the `PRelu`s rewritten.
pub(crate) fn for_nchwc(model: &[u8]) -> Result<(Vec<u8>, usize, usize), GraphError> {
    let (padded, blocks) = pad_channels(model)?;
    let (out, prelus) = rewrite_prelu(&padded)?;
    Ok((out, blocks, prelus))
}

/// Pads the channels inside `Conv → [PRelu] → depthwise Conv → [PRelu] → Conv`
/// blocks to a multiple of 16 (NCHWc's block), when the inner width is not one:
/// the first convolution gets zero filters (weights and bias 0, so the new
/// channels are 0), the `PRelu`s and the depthwise convolution zero entries
/// (0 stays 0), and the last convolution zero weights for the new input
/// channels (they add nothing). The block's output is unchanged up to the order
/// of float additions. Returns the new model and the number of blocks padded.
pub(crate) fn pad_channels(model: &[u8]) -> Result<(Vec<u8>, usize), GraphError> {
    const BLOCK: u64 = 16;
    let g = Graph::parse(model)?;
    let nodes = &g.nodes;

    // name → (new dims, new values); node index → new group.
    let mut new_inits: HashMap<&str, FloatTensor> = HashMap::new();
    let mut new_groups: HashMap<usize, u64> = HashMap::new();
    let mut padded_tensors: HashSet<&str> = HashSet::new();
    let mut blocks = 0;
    'conv: for (ni, n) in nodes.iter().enumerate() {
        let Some((wd, _)) = g.conv_weight(n).filter(|_| n.group == 1) else {
            continue;
        };
        let c = wd[0];
        if c % BLOCK == 0 || n.outputs.len() != 1 {
            continue;
        }
        let p = c.div_ceil(BLOCK) * BLOCK;
        // Follow the single-consumer chain to the closing convolution.
        let mut chain: Vec<usize> = Vec::new();
        let mut tensors = vec![n.outputs[0]];
        let mut t = n.outputs[0];
        let mut depthwise_seen = false;
        let closing = loop {
            let [ci] = g.consumers.get(t).map_or(&[][..], Vec::as_slice) else {
                continue 'conv;
            };
            if g.outputs.contains(t) {
                continue 'conv;
            }
            let m = &nodes[*ci];
            let slope_ok = m.inputs.len() == 2
                && g.own(m.inputs[1]).is_some()
                && g.per_channel(m.inputs[1], Some(c)).is_some();
            if m.op_type == "PRelu" && slope_ok {
                chain.push(*ci);
            } else if let Some((d, _)) = g.conv_weight(m) {
                if m.group == c && d[0] == c && d[1] == 1 && !depthwise_seen {
                    depthwise_seen = true;
                    chain.push(*ci);
                } else if m.group == 1 && d[1] == c {
                    break *ci;
                } else {
                    continue 'conv;
                }
            } else {
                continue 'conv;
            }
            if m.outputs.len() != 1 {
                continue 'conv;
            }
            t = m.outputs[0];
            tensors.push(t);
        };
        let biases_ok = [ni]
            .iter()
            .chain(chain.iter().filter(|&&i| nodes[i].op_type == "Conv"))
            .all(|&i| nodes[i].inputs.get(2).is_none_or(|b| g.own(b).is_some()));
        if !depthwise_seen || !biases_ok {
            continue;
        }
        // Pads axis `axis` of a tensor to `p` with zeros.
        let pad = |(d, v): &FloatTensor, axis: usize| -> FloatTensor {
            let inner: u64 = d[axis + 1..].iter().product();
            let (n_old, n_new) = ((d[axis] * inner) as usize, (p * inner) as usize);
            let mut out = Vec::with_capacity(v.len() / n_old * n_new);
            for chunk in v.chunks_exact(n_old) {
                out.extend_from_slice(chunk);
                out.resize(out.len() + n_new - n_old, 0.0);
            }
            let mut nd = d.clone();
            nd[axis] = p;
            (nd, out)
        };
        let mut put = |name: &'_ str, axis: usize| {
            let (name, t) = g.floats.get_key_value(name).expect("checked above");
            new_inits.insert(name, pad(t, axis));
        };
        // The opening conv's filters, and the PRelus' and depthwise conv's entries,
        // sit on axis 0; the closing conv's input channels on axis 1.
        for &i in std::iter::once(&ni).chain(&chain) {
            let m = &nodes[i];
            put(m.inputs[1], 0);
            if m.op_type == "Conv" {
                if let Some(b) = m.inputs.get(2) {
                    put(b, 0);
                }
            }
        }
        for &i in chain.iter().filter(|&&i| nodes[i].op_type == "Conv") {
            new_groups.insert(i, p);
        }
        put(nodes[closing].inputs[1], 1);
        padded_tensors.extend(tensors);
        blocks += 1;
    }
    if blocks == 0 {
        return Ok((model.to_vec(), 0));
    }

    let mut graph = Vec::with_capacity(model.len() + model.len() / 4);
    let mut node_index = 0;
    for f in &g.fields {
        match (f.num, f.value) {
            (GRAPH_NODE, Value::Bytes(b)) => {
                match new_groups.get(&node_index) {
                    Some(&group) => put_bytes(&mut graph, GRAPH_NODE, &with_group(b, group)?),
                    None => graph.extend_from_slice(f.raw),
                }
                node_index += 1;
            }
            (GRAPH_INITIALIZER, Value::Bytes(b)) => {
                let name = tensor_name(b)?;
                match new_inits.get(name) {
                    Some((d, v)) => {
                        put_bytes(&mut graph, GRAPH_INITIALIZER, &tensor_bytes(name, d, v))
                    }
                    None => graph.extend_from_slice(f.raw),
                }
            }
            // Recorded shapes of the padded tensors would now be wrong: let the runtime infer them.
            (GRAPH_VALUE_INFO, Value::Bytes(b)) => {
                let name = fields(b)?
                    .iter()
                    .find(|vf| vf.num == VALUE_INFO_NAME)
                    .map(|vf| text(vf.value))
                    .transpose()?;
                if !name.is_some_and(|n| padded_tensors.contains(n)) {
                    graph.extend_from_slice(f.raw);
                }
            }
            _ => graph.extend_from_slice(f.raw),
        }
    }
    Ok((g.join(&graph), blocks))
}

/// Whether a float is subnormal (non-zero and smaller in magnitude than the
/// smallest normal `f32`).
fn subnormal(v: f32) -> bool {
    v != 0.0 && v.abs() < f32::MIN_POSITIVE
}

/// One float initializer with its subnormal values set to zero, every other
/// field kept byte for byte; `None` when it holds none (or is not float).
fn flush_tensor(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, GraphError> {
    let fs = fields(buf)?;
    let float = fs.iter().any(|f| {
        matches!(
            (f.num, f.value),
            (TENSOR_DATA_TYPE, Value::Varint(DATA_TYPE_FLOAT))
        )
    });
    if !float {
        return Ok(None);
    }
    let flush = |b: &[u8], n: &mut usize| -> Vec<u8> {
        b.chunks(4)
            .flat_map(|c| match <[u8; 4]>::try_from(c) {
                Ok(w) if subnormal(f32::from_le_bytes(w)) => {
                    *n += 1;
                    // Keep the sign, as the hardware's flush-to-zero does.
                    (f32::from_le_bytes(w).signum() * 0.0)
                        .to_le_bytes()
                        .to_vec()
                }
                _ => c.to_vec(),
            })
            .collect()
    };
    let mut n = 0;
    let mut out = Vec::with_capacity(buf.len());
    for f in &fs {
        match (f.num, f.value) {
            (TENSOR_RAW_DATA, Value::Bytes(b)) | (TENSOR_FLOAT_DATA, Value::Bytes(b)) => {
                let before = n;
                let flushed = flush(b, &mut n);
                if n > before {
                    put_bytes(&mut out, f.num, &flushed);
                } else {
                    out.extend_from_slice(f.raw);
                }
            }
            (TENSOR_FLOAT_DATA, Value::Fixed32(v)) if subnormal(f32::from_bits(v)) => {
                n += 1;
                put_varint(&mut out, TENSOR_FLOAT_DATA << 3 | 5);
                out.extend_from_slice(&(f32::from_bits(v).signum() * 0.0).to_le_bytes());
            }
            _ => out.extend_from_slice(f.raw),
        }
    }
    Ok((n > 0).then_some((out, n)))
}

/// Sets every subnormal value (|w| < `f32::MIN_POSITIVE`, w ≠ 0) of the
/// graph's float initializers to zero (sign kept); returns the new model and
/// how many values changed (the model comes back unchanged when none).
///
/// Why: x86 cores that handle subnormals in microcode (Intel's, not AMD's)
/// run every multiply that touches one about 100× slower; `fr_feature` ships
/// thousands of them, which made a 1×1 convolution run at 0.5 GFLOP/s on an
/// Intel Xeon. A subnormal weight contributes less than 1.2e-38 × |x| to a
/// sum, far below the rounding of any activation, so zero is the same model;
/// the runtime then also runs with flush-to-zero / denormals-are-zero (see
/// [`crate::denormals`]), which does the same to the activations.
pub(crate) fn flush_denormals(model: &[u8]) -> Result<(Vec<u8>, usize), GraphError> {
    let g = Graph::parse(model)?;
    let mut graph = Vec::with_capacity(model.len());
    let mut total = 0;
    for f in &g.fields {
        match (f.num, f.value) {
            (GRAPH_INITIALIZER, Value::Bytes(b)) => match flush_tensor(b)? {
                Some((t, n)) => {
                    total += n;
                    put_bytes(&mut graph, GRAPH_INITIALIZER, &t);
                }
                None => graph.extend_from_slice(f.raw),
            },
            _ => graph.extend_from_slice(f.raw),
        }
    }
    if total == 0 {
        return Ok((model.to_vec(), 0));
    }
    Ok((g.join(&graph), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormal_initializers_are_flushed_and_others_kept() {
        let tiny = f32::from_bits(1); // the smallest positive subnormal
        let values = [1.0, -tiny, 0.0, f32::MIN_POSITIVE, 2.5e-39, -3.0];
        let mut g = vec![];
        put_bytes(&mut g, GRAPH_INITIALIZER, &tensor_bytes("w", &[6], &values));
        put_bytes(&mut g, GRAPH_INITIALIZER, &tensor_bytes("b", &[1], &[0.5]));
        let mut m = vec![];
        put_uint(&mut m, 1, 7);
        put_bytes(&mut m, MODEL_GRAPH, &g);
        let (out, n) = flush_denormals(&m).unwrap();
        assert_eq!(n, 2, "two subnormals in w");
        let parsed = Graph::parse(&out).unwrap();
        let (_, w) = &parsed.floats["w"];
        assert_eq!(w, &[1.0, -0.0, 0.0, f32::MIN_POSITIVE, 0.0, -3.0]);
        assert!(w[1].is_sign_negative(), "the sign is kept");
        assert_eq!(parsed.floats["b"].1, vec![0.5]);
        // Nothing to flush: the same bytes come back.
        let (again, n) = flush_denormals(&out).unwrap();
        assert_eq!((again, n), (out, 0));
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = vec![];
            put_varint(&mut b, v);
            let mut p = 0;
            assert_eq!(varint(&b, &mut p).unwrap(), v);
            assert_eq!(p, b.len());
        }
    }

    #[test]
    fn truncated_or_garbage_bytes_are_errors_not_panics() {
        assert!(rewrite_prelu(&[0x3a, 0x05, 0x01]).is_err());
        assert!(rewrite_prelu(&[0xff; 12]).is_err());
        assert!(rewrite_prelu(b"").is_err(), "no graph");
    }

    #[test]
    fn a_graph_without_prelu_comes_back_unchanged() {
        let mut g = vec![];
        put_bytes(
            &mut g,
            GRAPH_NODE,
            &node_bytes("Relu", "r", &["x"], "y", None),
        );
        let mut m = vec![];
        put_uint(&mut m, 1, 7);
        put_bytes(&mut m, MODEL_GRAPH, &g);
        let (out, n) = rewrite_prelu(&m).unwrap();
        assert_eq!((out, n), (m, 0));
    }
}
