#!/usr/bin/env python3
"""Score-fusion study on LFW View 1 from facegate's own embeddings (issue 13).

Reads the embedding cache that `facegate bench identify --third --cache FILE` (or
`bench calibrate --cache FILE`) writes (JSON lines: image path and the three models'
unit vectors), and on the pairs files prints, for every way of scoring tried:
the threshold chosen on DevTrain, the DevTest accuracy and TAR at FAR 1e-3. Everything
that is fitted (thresholds, logistic weights, the cohort for score normalisation) is
fitted on DevTrain only; DevTest is only scored. Then it lists the DevTest pairs the
best fusion gets wrong, with each model's score against its own threshold, so one can
see which model is wrong on which pair.

Pure Python (no numpy), a minute or two.

Usage: python3 bench/lfw_fusion_study.py --cache /tmp/emb.jsonl \
           [--images ../shared/eval/lfw-view1] [--cohort 400] [--top 50]
"""

import argparse
import json
import math
import operator
from pathlib import Path


def read_pairs(images, name):
    lines = (Path(images) / name).read_text().split("\n")
    n = int(lines[0].strip())
    out = []
    for line in lines[1:]:
        f = line.split()
        if len(f) == 3:
            out.append(((f[0], int(f[1])), (f[0], int(f[2])), True))
        elif len(f) == 4:
            out.append(((f[0], int(f[1])), (f[2], int(f[3])), False))
    assert len(out) == 2 * n, (name, len(out))
    return out


def img_path(images, img):
    return str(Path(images) / img[0] / f"{img[0]}_{img[1]:04d}.jpg")


def dot(a, b):
    return sum(map(operator.mul, a, b))


def best_threshold(scored):
    """The threshold that maximises accuracy (midpoint between neighbours)."""
    v = sorted(scored)
    best, t_best = -1, 0.0
    # accept when score >= t; sweep t over the midpoints
    n_same = sum(1 for _, s in v if s)
    correct = n_same  # t below everything: every pair accepted, the genuine ones right
    for i in range(len(v) + 1):
        if correct > best:
            best = correct
            lo = v[i - 1][0] if i > 0 else v[0][0] - 1
            hi = v[i][0] if i < len(v) else v[-1][0] + 1
            t_best = (lo + hi) / 2
        if i < len(v):
            correct += -1 if v[i][1] else 1
    return t_best


def accuracy(scored, t):
    return sum(1 for s, y in scored if (s >= t) == y) / len(scored)


def tar_at_far(scored, far):
    imp = sorted((s for s, y in scored if not y), reverse=True)
    gen = [s for s, y in scored if y]
    t = imp[min(int(far * len(imp)), len(imp) - 1)]
    return sum(1 for s in gen if s > t) / len(gen)


def solve(a, b):
    n = len(b)
    a = [row[:] for row in a]
    b = b[:]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(a[r][c]))
        a[c], a[p] = a[p], a[c]
        b[c], b[p] = b[p], b[c]
        for r in range(c + 1, n):
            f = a[r][c] / a[c][c]
            for k in range(c, n):
                a[r][k] -= f * a[c][k]
            b[r] -= f * b[c]
    x = [0.0] * n
    for r in reversed(range(n)):
        x[r] = (b[r] - sum(a[r][k] * x[k] for k in range(r + 1, n))) / a[r][r]
    return x


def logistic(xs, ys, ridge=1e-3):
    """Newton's method, like facegate_gallery::FusionN::fit."""
    k = len(xs[0])
    beta = [0.0] * (k + 1)
    for _ in range(60):
        g = [0.0] * (k + 1)
        h = [[0.0] * (k + 1) for _ in range(k + 1)]
        for x, y in zip(xs, ys):
            x = list(x) + [1.0]
            z = sum(b * v for b, v in zip(beta, x))
            p = 1 / (1 + math.exp(-max(min(z, 50), -50)))
            r = p - (1.0 if y else 0.0)
            w = max(p * (1 - p), 1e-12)
            for i in range(k + 1):
                g[i] += r * x[i]
                for j in range(k + 1):
                    h[i][j] += w * x[i] * x[j]
        for i in range(k):
            g[i] += ridge * beta[i]
            h[i][i] += ridge
        step = solve(h, g)
        beta = [b - s for b, s in zip(beta, step)]
        if max(abs(s) for s in step) < 1e-10:
            break
    return beta[:-1], beta[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--images", default="../shared/eval/lfw-view1")
    ap.add_argument("--train", default="pairsDevTrain.txt")
    ap.add_argument("--test", default="pairsDevTest.txt")
    ap.add_argument("--cohort", type=int, default=400,
                    help="DevTrain images in the score-normalisation cohort")
    ap.add_argument("--top", type=int, default=50,
                    help="highest cohort scores whose mean and spread normalise a score")
    a = ap.parse_args()

    emb = {}
    for line in open(a.cache):
        if line.strip():
            e = json.loads(line)
            f = e["face"]
            # the cache holds paths as the command was given them
            key = str(Path(e["path"]))
            emb[key] = None if f is None else (f["first"], f["second"], f["third"])
    train = read_pairs(a.images, a.train)
    test = read_pairs(a.images, a.test)

    def vec(img):
        return emb.get(img_path(a.images, img))

    missing = [p for p in train + test if vec(p[0]) is None or vec(p[1]) is None]
    print(f"pairs: {len(train)} {a.train}, {len(test)} {a.test}; "
          f"{len(missing)} with an image without a face or not in the cache")

    def raw(p):
        x, y = vec(p[0]), vec(p[1])
        if x is None or y is None:
            return [-1.0, -1.0, -1.0]
        return [dot(x[m], y[m]) for m in range(3)]

    tr_raw = [raw(p) for p in train]
    te_raw = [raw(p) for p in test]
    tr_y = [p[2] for p in train]
    te_y = [p[2] for p in test]

    # Cohort: every k-th DevTrain image (a fixed, deterministic choice).
    train_imgs = sorted({i for p in train for i in p[:2] if vec(i) is not None})
    step = max(1, len(train_imgs) // a.cohort)
    cohort = train_imgs[::step][: a.cohort]
    stats = {}

    def norm_stats(img):
        if img in stats:
            return stats[img]
        v = vec(img)
        out = []
        for m in range(3):
            s = sorted((dot(v[m], vec(c)[m]) for c in cohort if c[0] != img[0]), reverse=True)
            s = s[: a.top]
            mu = sum(s) / len(s)
            sd = math.sqrt(sum((x - mu) ** 2 for x in s) / len(s)) or 1.0
            out.append((mu, sd))
        stats[img] = out
        return out

    def snorm(p, r):
        if vec(p[0]) is None or vec(p[1]) is None:
            return [-10.0] * 3
        sa, sb = norm_stats(p[0]), norm_stats(p[1])
        return [0.5 * ((r[m] - sa[m][0]) / sa[m][1] + (r[m] - sb[m][0]) / sb[m][1])
                for m in range(3)]

    print(f"cohort: {len(cohort)} DevTrain images (top {a.top} scores per image) ...", flush=True)
    tr_sn = [snorm(p, r) for p, r in zip(train, tr_raw)]
    te_sn = [snorm(p, r) for p, r in zip(test, te_raw)]

    rows = []

    def report(name, tr_scores, te_scores):
        tr = list(zip(tr_scores, tr_y))
        te = list(zip(te_scores, te_y))
        t = best_threshold(tr)
        rows.append((name, t, accuracy(tr, t), accuracy(te, t), tar_at_far(te, 1e-3)))
        return t

    names = ["first", "second", "third"]
    for m in range(3):
        report(names[m], [r[m] for r in tr_raw], [r[m] for r in te_raw])
    for m in range(3):
        report(names[m] + " s-norm", [r[m] for r in tr_sn], [r[m] for r in te_sn])
    fits = {}
    for label, tr_x, te_x in [("raw", tr_raw, te_raw), ("s-norm", tr_sn, te_sn)]:
        for models in ([0, 1], [0, 2], [0, 1, 2]):
            w, b = logistic([[x[i] for i in models] for x in tr_x], tr_y)

            def f(v, w=w, b=b, models=tuple(models)):
                return sum(wi * v[i] for wi, i in zip(w, models)) + b

            name = "fused" + "".join(str(i + 1) for i in models) + " " + label
            t = report(name, [f(x) for x in tr_x], [f(x) for x in te_x])
            fits[name] = (f, t, w, b)
    print(f"{'score':<22} {'threshold':>10} {'DevTrain':>9} {'DevTest':>8} {'TAR@1e-3':>9}")
    for name, t, tr_acc, te_acc, tar in rows:
        print(f"{name:<22} {t:>10.4f} {tr_acc * 100:>8.2f}% {te_acc * 100:>7.2f}% {tar * 100:>8.2f}%")
    for name, (_, _, w, b) in fits.items():
        print(f"{name:<22} weights {' '.join(f'{x:.3f}' for x in w)} bias {b:.3f}")

    # The DevTest errors of the three-model fusion, and which model is wrong on each.
    single_t = {r[0]: r[1] for r in rows}
    for name in ("fused123 raw", "fused123 s-norm"):
        f, t, _, _ = fits[name]
        x = te_raw if name.endswith("raw") else te_sn
        print(f"\nDevTest errors of {name} (threshold {t:.4f}); per model: score and whether it is right")
        for p, r, v in zip(test, te_raw, x):
            if (f(v) >= t) != p[2]:
                per = []
                for m in range(3):
                    ok = (r[m] >= single_t[names[m]]) == p[2]
                    per.append(f"{names[m]} {r[m]:.3f} {'ok' if ok else 'WRONG'}")
                kind = "same" if p[2] else "diff"
                print(f"  {kind} {p[0][0]}_{p[0][1]:04d} / {p[1][0]}_{p[1][1]:04d}: "
                      f"fused {f(v):+.2f}; " + "; ".join(per))


if __name__ == "__main__":
    main()
