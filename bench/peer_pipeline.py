#!/usr/bin/env python3
"""facegate vs a straightforward Python onnxruntime pipeline, side by side.

Times, in one run on the same images, `facegate bench speed` (the release
binary) and a plain Python pipeline of the same steps with the same models:
decode -> detect -> landmarks -> align -> embed -> liveness. Prints both
per-face figures and their ratio, once with the peer on the newest
onnxruntime pip resolves and once with onnxruntime==1.26.0 (the version
facegate loads).

The peer gets its best documented settings: ORT_ENABLE_ALL, the same
intra-op thread count as facegate, sequential execution, OpenCV (SIMD) for
decode/resize/warp; and, in the same run, once more with ORT's documented
`session.set_denormal_as_zero` session option (FTZ/DAZ on ORT's own pool
threads; `--peer-denormal-as-zero off|on|both`), since subnormal floats cost
Intel cores ~100x. The CPU (model, ISA extensions) is printed with the figures. Each onnxruntime version lives in its own venv under
bench/.venv (git-ignored; the 1.26.0 one nested in it), created with pip on first use.

Usage: python3 bench/peer_pipeline.py [--threads 1] [--iterations 10]
                                      [--peer-denormal-as-zero both] [IMAGES...]
       (default images: the face fixtures in the facegate cache)
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "facegate"
CACHE = Path(os.environ.get("FACEGATE_CACHE") or
             Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facegate")
FIXTURES = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png",
            "obama_partial_face.jpg"]

# --------------------------------------------------------------- the peer

PEER = r'''
import json, sys, time
import numpy as np, cv2, onnxruntime as ort

models, threads, iterations, daz, paths = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                           sys.argv[4] == "1", sys.argv[5:])
cv2.setNumThreads(1)

def session(name):
    so = ort.SessionOptions()
    if daz:
        # ORT's documented option: FTZ/DAZ on its intra-op pool threads.
        so.add_session_config_entry("session.set_denormal_as_zero", "1")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(f"{models}/{name}", so, providers=["CPUExecutionProvider"])

det, lmk, feat, live = (session(n) for n in
    ("fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx", "fr_liveness.onnx"))
REF = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)

def detect(rgb):
    h, w = rgb.shape[:2]
    x = cv2.resize(rgb, (320, 240)).astype(np.float32)
    x = ((x - 127.0) / 128.0).transpose(2, 0, 1)[None]
    scores, boxes = det.run(["scores", "boxes"], {"input": x})
    s = scores[0, :, 1]
    keep = s >= 0.5
    b = boxes[0][keep] * np.array([w, h, w, h], np.float32)
    s = s[keep]
    idx = cv2.dnn.NMSBoxes([[float(a), float(c), float(e - a), float(f - c)] for a, c, e, f in b],
                           s.tolist(), 0.5, 0.4)
    out = []
    for i in np.array(idx).reshape(-1):
        x1, y1, x2, y2 = b[i]
        side, cx, cy = y2 - y1, (x1 + x2) / 2, (y1 + y2) / 2
        out.append((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    return out

def landmarks(rgb, box):
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = [int(v) for v in box]
    bw, bh = max(x2 - x1, 1), max(y2 - y1, 1)
    crop = rgb[max(y1, 0):min(y2, h), max(x1, 0):min(x2, w)]
    grey = cv2.cvtColor(cv2.resize(crop, (64, 64)), cv2.COLOR_RGB2GRAY)
    x = (grey.astype(np.float32) / 256.0)[None, None]
    p = lmk.run(None, {"input": x})[0].reshape(-1, 2)[:68]
    return p * np.array([bw, bh], np.float32) + np.array([x1, y1], np.float32)

def align(rgb, lm):
    five = np.array([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]], np.float32)
    m, _ = cv2.estimateAffinePartial2D(five, REF, method=cv2.LMEDS)
    return cv2.warpAffine(rgb, m, (112, 112))

def embed(face):
    x = ((face.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
    v = feat.run(None, {"input": x})[0][0]
    return v / np.linalg.norm(v)

def liveness(rgb, box):
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = [int(v) for v in box]
    bw, bh = max(x2 - x1, 1), max(y2 - y1, 1)
    s = min((h - 1) / bh, (w - 1) / bw, 2.7)
    nw, nh = bw * s, bh * s
    cx, cy = x1 + bw / 2, y1 + bh / 2
    l, t = int(max(cx - nw / 2, 0)), int(max(cy - nh / 2, 0))
    r, b = int(min(l + nw, w)), int(min(t + nh, h))
    crop = cv2.resize(rgb[t:b, l:r], (128, 128)).astype(np.float32).transpose(2, 0, 1)[None]
    z = live.run(None, {"input": crop})[0][0]
    e = np.exp(z - z.max())
    return float(e[0] / e.sum())

blobs = [open(p, "rb").read() for p in paths]

def once():
    faces = 0
    for blob in blobs:
        bgr = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for box in detect(rgb):
            lm = landmarks(rgb, box)
            embed(align(rgb, lm))
            liveness(rgb, box)
            faces += 1
    return faces

once()  # warm-up
per_face = []
for _ in range(iterations):
    t = time.perf_counter()
    n = once()
    per_face.append((time.perf_counter() - t) * 1e3 / max(n, 1))
per_face.sort()
print(json.dumps({"end_to_end_ms_per_face": per_face[len(per_face) // 2],
                  "end_to_end_ms_per_face_min": per_face[0],
                  "faces_per_image": n / len(blobs), "onnxruntime": ort.__version__,
                  "set_denormal_as_zero": daz}))
'''


def venv(name, ort_spec):
    """A venv with numpy, OpenCV and the given onnxruntime, made with pip on first use."""
    d = ROOT / "bench" / name
    py = d / "bin" / "python"
    stamp = d / ".facegate-ready"
    if not stamp.exists():
        print(f"[peer] creating {d} with {ort_spec} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy", "opencv-python-headless",
                        ort_spec], check=True)
        stamp.write_text(ort_spec)
    return py


def run_peer(py, threads, iterations, images, daz=False):
    out = subprocess.run([str(py), "-c", PEER, str(CACHE / "models"), str(threads), str(iterations),
                          "1" if daz else "0", *map(str, images)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_facegate(threads, iterations, images):
    out = subprocess.run([str(BIN), "bench", "speed", "--json", "--threads", str(threads),
                          "--iterations", str(iterations), *map(str, images)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


ISA = ["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
       "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"]


def cpu_line():
    """The CPU model and the ISA extensions the kernels use (from /proc/cpuinfo)."""
    model, flags = "unknown", set()
    try:
        for line in open("/proc/cpuinfo"):
            k, _, v = line.partition(":")
            if k.strip() == "model name" and model == "unknown":
                model = v.strip()
            elif k.strip() == "flags" and not flags:
                flags = set(v.split())
    except OSError:
        pass
    have = [f for f in ISA if f in flags]
    return f"CPU: {model} ({os.cpu_count()} logical CPUs; {' '.join(have) or 'flags unknown'})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--skip-latest", action="store_true")
    ap.add_argument("--peer-denormal-as-zero", choices=["both", "off", "on"], default="both",
                    help="run the peer without ('off'), with ('on') or both ways ('both', the "
                         "default) with ORT's session.set_denormal_as_zero option")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("images", nargs="*")
    a = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: build it first with `cargo build --release -p facegate`")
    images = [Path(p) for p in a.images] or [CACHE / "fixtures" / f for f in FIXTURES]
    peers = [("default (latest)", ".venv", "onnxruntime")]
    if a.skip_latest:
        peers = []
    peers.append(("same version", ".venv/ort-1.26.0", "onnxruntime==1.26.0"))
    dazs = {"both": [False, True], "off": [False], "on": [True]}[a.peer_denormal_as_zero]
    cpu = cpu_line()
    rows = []
    for label, name, spec in peers:
        py = venv(name, spec)
        # Interleave to share whatever load the machine has fairly.
        fg = run_facegate(a.threads, a.iterations, images)
        peer_runs = [run_peer(py, a.threads, a.iterations, images, daz) for daz in dazs]
        fg2 = run_facegate(a.threads, a.iterations, images)
        # Best pass of each side: on a shared machine the least-disturbed pass
        # is the closest to the true cost (medians are printed too).
        fg_ms = min(fg["end_to_end_ms_per_face_min"], fg2["end_to_end_ms_per_face_min"])
        fg_med = min(fg["end_to_end_ms_per_face"], fg2["end_to_end_ms_per_face"])
        for peer in peer_runs:
            p_ms = peer["end_to_end_ms_per_face_min"]
            p_med = peer["end_to_end_ms_per_face"]
            rows.append({"peer": label, "peer_onnxruntime": peer["onnxruntime"],
                         "peer_set_denormal_as_zero": peer["set_denormal_as_zero"],
                         "threads": a.threads, "cpu": cpu,
                         "images": len(images), "iterations": a.iterations,
                         "facegate_ms_per_face": fg_ms, "peer_ms_per_face": p_ms,
                         "throughput_ratio": p_ms / fg_ms, "facegate_median_ms_per_face": fg_med,
                         "peer_median_ms_per_face": p_med, "median_ratio": p_med / fg_med,
                         "facegate_stages_ms": fg})
    if a.json:
        print(json.dumps(rows))
        return
    print(cpu)
    print(f"{len(images)} image(s), {a.iterations} iterations, {a.threads} intra-op thread(s) on both sides; "
          "end-to-end per face: decode -> detect -> landmarks -> align -> embed -> liveness")
    for r in rows:
        daz = "with set_denormal_as_zero" if r["peer_set_denormal_as_zero"] else "as configured by default"
        print(f"  peer on onnxruntime {r['peer_onnxruntime']:<8} ({r['peer']}, {daz}): "
              f"peer {r['peer_ms_per_face']:.2f} ms/face, facegate (ort 1.26.0) "
              f"{r['facegate_ms_per_face']:.2f} ms/face -> facegate throughput x{r['throughput_ratio']:.2f} "
              f"(best pass; medians {r['peer_median_ms_per_face']:.2f} vs "
              f"{r['facegate_median_ms_per_face']:.2f} -> x{r['median_ratio']:.2f})")


if __name__ == "__main__":
    main()
