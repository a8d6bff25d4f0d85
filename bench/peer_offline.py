#!/usr/bin/env python3
"""bench/peer_pipeline.py on a machine without registry access.

The peer runs on this interpreter's own onnxruntime (its "default") and on
an onnxruntime 1.26.0 installed beforehand into a folder (e.g.
`pip install --no-index --no-deps --target DIR onnxruntime-1.26.0-*.whl`),
instead of venvs created with pip. Everything else, including facegate's
side, is peer_pipeline.py as it stands.

Usage: python3 bench/peer_offline.py --ort126 DIR [peer_pipeline.py options]
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_pipeline as pp  # noqa: E402

args = sys.argv[1:]
if "--ort126" not in args:
    sys.exit(__doc__)
i = args.index("--ort126")
ort126 = args[i + 1]
del args[i:i + 2]
sys.argv = [sys.argv[0], *args]


def venv(_name, spec):
    if "1.26.0" in spec:
        os.environ["PYTHONPATH"] = ort126
    else:
        os.environ.pop("PYTHONPATH", None)
    return sys.executable


pp.venv = venv
pp.main()
