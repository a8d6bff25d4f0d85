#!/usr/bin/env python3
"""facegate 1:N search against FAISS on the SAME vectors in the same run.

facegate generates the vectors (synthetic, or real LFW embeddings plus synthetic
distractors), runs its own figures, and exports base/queries/exact-f32 top-1 as .npy;
this script then runs FAISS IndexFlatIP, IndexScalarQuantizer (QT_8bit, inner product)
and IndexHNSWFlat on those files and prints both side by side. The last line is
ratio_sq8=<facegate int8 single-query speed / FAISS SQ8 single-query speed> for the
largest --n.

Set up once (from the repository root):
    python3 -m venv bench/.venv && bench/.venv/bin/pip install faiss-cpu numpy
    CARGO_TARGET_DIR=target cargo build --release -p facegate
Run:
    bench/.venv/bin/python bench/search_vs_faiss.py --n 100000,1000000 --threads 2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="100000,1000000", help="gallery sizes, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--queries", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--binary", default=None, help="facegate binary (default: $CARGO_TARGET_DIR or target, release)")
    ap.add_argument("--real-lfw", default=None, help="LFW directory: real embeddings + synthetic distractors")
    ap.add_argument("--hnsw-max-n", type=int, default=1_000_000, help="skip HNSW (both sides) above this n")
    ap.add_argument("--facegate-ef", default="16,32,64,128")
    ap.add_argument("--faiss-ef", default="16,32,64,128,256")
    ap.add_argument("--faiss-hnsw-m", type=int, default=32)
    ap.add_argument("--faiss-ef-construction", type=int, default=40)
    return ap.parse_args()


def binary(args):
    if args.binary:
        return args.binary
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tdir = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    return os.path.join(tdir, "release", "facegate")


def recall(ids, gt):
    return float(np.mean(ids[:, 0] == gt))


def time_single(index, xq, k):
    index.search(xq[:1], k)  # warm-up
    out = np.empty((len(xq), k), dtype=np.int64)
    t = time.perf_counter()
    for i in range(len(xq)):
        _, I = index.search(xq[i : i + 1], k)
        out[i] = I[0]
    return (time.perf_counter() - t) * 1e3 / len(xq), out


def time_batch(index, xq, k, batch):
    out = np.empty((len(xq), k), dtype=np.int64)
    t = time.perf_counter()
    for s in range(0, len(xq), batch):
        _, I = index.search(xq[s : s + batch], k)
        out[s : s + batch] = I
    return (time.perf_counter() - t) * 1e3 / len(xq), out


def bytes_per(index, n):
    import faiss

    return faiss.serialize_index(index).nbytes / n


def main():
    args = parse()
    import faiss

    faiss.omp_set_num_threads(args.threads)
    exe = binary(args)
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: build it with `cargo build --release -p facegate` (or pass --binary)")
    sizes = [int(x) for x in args.n.split(",")]
    ratio = None
    ratio_sharded = None
    print(f"faiss {faiss.__version__} ({faiss.get_compile_options()}), omp threads {args.threads}, numpy {np.__version__}")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="facegate-faiss-") as tmp:
            cmd = [exe, "bench", "search", "--n", str(n), "--threads", str(args.threads),
                   "--queries", str(args.queries), "--k", str(args.k), "--batch", str(args.batch),
                   "--export", tmp, "--json", "--ef", args.facegate_ef]
            if args.real_lfw:
                cmd += ["--real-lfw", args.real_lfw]
            if n > args.hnsw_max_n:
                cmd += ["--no-hnsw"]
            print("\n$ " + " ".join(cmd), flush=True)
            fg = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            xb = np.load(os.path.join(tmp, "base.npy"))
            xq = np.load(os.path.join(tmp, "queries.npy"))
            gt = np.load(os.path.join(tmp, "gt.npy"))
        d = xb.shape[1]
        rows = []  # (side, method, ms/query, recall@1, bytes/template)
        for f in fg["figures"]:
            b = fg["bytes_per_template_int8"]
            if f["name"].startswith("f32"):
                b = fg["bytes_per_template_f32"]
            if f["name"].startswith("HNSW"):
                b = fg["bytes_per_template_int8"] + fg["bytes_per_template_hnsw_extra"]
            rows.append(("facegate", f["name"], f["ms_per_query"], f["recall_at_1"], b))
        fg_int8 = next(f for f in fg["figures"] if f["name"].startswith("int8 exact, single"))

        flat = faiss.IndexFlatIP(d)
        flat.add(xb)
        ms, I = time_single(flat, xq, args.k)
        rows.append(("faiss", "IndexFlatIP, single query", ms, recall(I, gt), bytes_per(flat, n)))
        ms, I = time_batch(flat, xq, args.k, args.batch)
        rows.append(("faiss", f"IndexFlatIP (BLAS), batch {args.batch}", ms, recall(I, gt), bytes_per(flat, n)))
        del flat

        t = time.perf_counter()
        sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sq.train(xb)
        sq.add(xb)
        sq_build = time.perf_counter() - t
        ms_sq, I_sq = time_single(sq, xq, args.k)
        rows.append(("faiss", "IndexScalarQuantizer QT_8bit, single query", ms_sq, recall(I_sq, gt), bytes_per(sq, n)))
        ms, I = time_batch(sq, xq, args.k, args.batch)
        rows.append(("faiss", f"IndexScalarQuantizer QT_8bit, batch {args.batch}", ms, recall(I, gt), bytes_per(sq, n)))
        # A single query runs on one thread inside IndexScalarQuantizer; IndexShards splits
        # the base so that one query uses every thread (the documented way to do that).
        sh = faiss.IndexShards(d, True, True)
        parts = []
        per = (n + args.threads - 1) // args.threads
        for s in range(0, n, per):
            p = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            p.train(xb)
            p.add(xb[s : s + per])
            parts.append(p)
            sh.add_shard(p)
        ms_sh, I = time_single(sh, xq, args.k)
        rows.append(("faiss", f"IndexShards({len(parts)}× SQ8), single query", ms_sh, recall(I, gt), bytes_per(sq, n)))
        del sh, parts, sq

        if n <= args.hnsw_max_n:
            t = time.perf_counter()
            h = faiss.IndexHNSWFlat(d, args.faiss_hnsw_m, faiss.METRIC_INNER_PRODUCT)
            h.hnsw.efConstruction = args.faiss_ef_construction
            h.add(xb)
            hb = time.perf_counter() - t
            hbytes = bytes_per(h, n)
            best = None
            for ef in [int(x) for x in args.faiss_ef.split(",")]:
                h.hnsw.efSearch = ef
                ms, I = time_single(h, xq, args.k)
                r = recall(I, gt)
                rows.append(("faiss", f"IndexHNSWFlat M={args.faiss_hnsw_m} ef={ef}, single query", ms, r, hbytes))
                if r >= 0.99 and best is None:
                    best = (ef, ms, r)
            print(f"faiss HNSW build {hb:.1f} s; first efSearch with recall@1 >= 0.99: {best}")
            del h

        print(f"\nN={n} dim={d} threads={args.threads} queries={len(xq)} data: {fg['data']}")
        print(f"facegate kernel {fg['kernel']}; facegate HNSW build {fg['hnsw_build_s']} s; faiss SQ8 train+add {sq_build:.1f} s")
        print(f"{'side':<9} {'method':<48} {'ms/query':>10} {'recall@1':>9} {'B/template':>11}")
        for side, m, ms, r, b in rows:
            rs = "-" if r is None else f"{r:.4f}"
            print(f"{side:<9} {m:<48} {ms:>10.3f} {rs:>9} {b:>11.1f}")
        ratio = ms_sq / fg_int8["ms_per_query"]
        ratio_sharded = ms_sh / fg_int8["ms_per_query"]
        print(f"top-1 recall: facegate int8 {fg_int8['recall_at_1']:.4f} vs faiss SQ8 {recall(I_sq, gt):.4f}")
        print(f"N={n}: ratio_sq8={ratio:.2f} ratio_sq8_sharded={ratio_sharded:.2f}")
    print(f"ratio_sq8_sharded={ratio_sharded:.2f}")
    print(f"ratio_sq8={ratio:.2f}")


if __name__ == "__main__":
    main()
