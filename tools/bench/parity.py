#!/usr/bin/env python3
"""Compares Candela's logits with ONNX Runtime's on the models in .cache/models/.

For each model (every .cache/models/*.onnx, or --models) and each batch size (1 and 2): a seeded
random float32 NCHW input, ONNX Runtime's logits (CPUExecutionProvider, default graph
optimisations) and Candela's (`candela infer --model M --input X.npy --out Y.npy`, timed as wall
time of the whole process: load + one forward). Prints max abs error, max relative error
(max|a - b| / max|b|, b = ORT), top-1 agreement (rows whose argmax match) and Candela's wall time.

Inputs and outputs go to .cache/parity/<model>/{input,ort,candela}_b<N>.npy, a summary to
.cache/parity/summary.json, and a Candela failure's message to .cache/parity/<model>/candela_b<N>.log.
Exits 1 if any relative error exceeds --tol (1e-4), an output shape differs, or Candela fails.

Python is tooling only. Usage:
  .venv/bin/python tools/bench/parity.py [--candela PATH] [--models a,b] [--tol 1e-4]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / ".cache" / "models"
OUT = ROOT / ".cache" / "parity"
RELEASE = ROOT / ".build" / "release" / "candela"
DEBUG = ROOT / ".build" / "debug" / "candela"


def resolve_candela(path):
    if path:
        p = Path(path)
        if not p.is_file():
            sys.exit(f"error: no Candela binary at {p}")
        return p
    if RELEASE.is_file():
        return RELEASE
    if DEBUG.is_file():
        print(f"warning: {RELEASE.relative_to(ROOT)} not found, using the debug build "
              f"{DEBUG.relative_to(ROOT)} (slow; wall times are not representative)", file=sys.stderr)
        return DEBUG
    sys.exit("error: no Candela binary (.build/release/candela or .build/debug/candela); build one or pass --candela")


def model_input(sess):
    inp = sess.get_inputs()[0]
    shape = inp.shape
    if len(shape) != 4:
        raise RuntimeError(f"expected a 4-D NCHW input, got {inp.name} {shape}")
    chw = [d if isinstance(d, int) and d > 0 else default for d, default in zip(shape[1:], (3, 224, 224))]
    return inp.name, chw


def run_candela(candela, model, x_path, y_path, log_path, timeout):
    cmd = [str(candela), "infer", "--model", str(model), "--input", str(x_path), "--out", str(y_path)]
    y_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        msg = f"timed out after {timeout} s: {' '.join(cmd)}"
        log_path.write_text(msg + "\n")
        return None, time.perf_counter() - t0, msg
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not y_path.is_file():
        msg = (proc.stderr.strip() or proc.stdout.strip() or "(no output)")
        msg = f"exit {proc.returncode}: {msg}"
        log_path.write_text(f"$ {' '.join(cmd)}\n{msg}\n")
        return None, wall, msg
    log_path.unlink(missing_ok=True)
    return np.load(y_path), wall, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candela", help="Candela binary (default .build/release/candela, else .build/debug/candela)")
    ap.add_argument("--models", help="comma-separated model names in --model-dir (default: all *.onnx there)")
    ap.add_argument("--model-dir", type=Path, default=MODELS, help=f"default {MODELS}")
    ap.add_argument("--out", type=Path, default=OUT, help=f"default {OUT}")
    ap.add_argument("--batches", default="1,2", help="batch sizes (default 1,2)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max relative error allowed (default 1e-4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per candela infer run")
    args = ap.parse_args()

    import onnxruntime as ort

    candela = resolve_candela(args.candela)
    if args.models:
        models = [args.model_dir / f"{m.strip().removesuffix('.onnx')}.onnx" for m in args.models.split(",") if m.strip()]
        missing = [str(m) for m in models if not m.is_file()]
        if missing:
            sys.exit(f"error: missing model(s): {', '.join(missing)} (run tools/bench/export_models.py)")
    else:
        models = sorted(args.model_dir.glob("*.onnx"))
        if not models:
            sys.exit(f"error: no models in {args.model_dir} (run tools/bench/export_models.py)")
    batches = [int(b) for b in args.batches.split(",")]
    print(f"candela: {candela}   onnxruntime {ort.__version__}   tol {args.tol:g}\n")

    rows, failed = [], False
    header = f"{'model':<20} {'batch':>5} {'max abs err':>12} {'max rel err':>12} {'top-1':>7} {'candela s':>10}  status"
    print(header)
    print("-" * len(header))
    for model in models:
        name = model.stem
        d = args.out / name
        d.mkdir(parents=True, exist_ok=True)
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        in_name, chw = model_input(sess)
        for bi, batch in enumerate(batches):
            rng = np.random.default_rng(args.seed + bi)
            x = rng.standard_normal((batch, *chw)).astype(np.float32)
            x_path, o_path, c_path = d / f"input_b{batch}.npy", d / f"ort_b{batch}.npy", d / f"candela_b{batch}.npy"
            np.save(x_path, x)
            ref = sess.run(None, {in_name: x})[0]
            np.save(o_path, ref)
            got, wall, err = run_candela(candela, model, x_path, c_path, d / f"candela_b{batch}.log", args.timeout)
            row = {"model": name, "batch": batch, "candela_seconds": round(wall, 3), "ort_shape": list(ref.shape)}
            if err is not None:
                row.update(status="candela failed", error=err)
                status = "CANDELA FAILED"
            elif got.shape != ref.shape:
                row.update(status="shape mismatch", candela_shape=list(got.shape))
                status = f"SHAPE {tuple(got.shape)} != ORT {tuple(ref.shape)}"
            else:
                diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
                abs_err = float(diff.max())
                rel_err = abs_err / max(float(np.abs(ref).max()), 1e-30)
                if not np.all(np.isfinite(got)):
                    rel_err = float("inf")
                top1 = float(np.mean(got.reshape(batch, -1).argmax(1) == ref.reshape(batch, -1).argmax(1)))
                ok = rel_err <= args.tol
                status = "ok" if ok else f"MISMATCH (> {args.tol:g})"
                row.update(status="ok" if ok else "mismatch", max_abs_err=abs_err, max_rel_err=rel_err, top1_agreement=top1)
            failed |= row["status"] != "ok"
            rows.append(row)
            if "max_rel_err" in row:
                print(f"{name:<20} {batch:>5} {row['max_abs_err']:>12.3e} {row['max_rel_err']:>12.3e} "
                      f"{row['top1_agreement']:>7.0%} {wall:>10.2f}  {status}")
            else:
                print(f"{name:<20} {batch:>5} {'-':>12} {'-':>12} {'-':>7} {wall:>10.2f}  {status}")
            sys.stdout.flush()

    errors = [r for r in rows if "error" in r]
    if errors:
        print("\nCandela errors (verbatim):")
        for r in errors:
            print(f"  {r['model']} batch {r['batch']}: {r['error']}")
    summary = {"candela": str(candela), "onnxruntime": ort.__version__, "tol": args.tol, "rows": rows}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {args.out}/<model>/{{input,ort,candela}}_b<N>.npy and {args.out / 'summary.json'}")
    if failed:
        print("FAILED: see the rows above", file=sys.stderr)
        return 1
    print("all models within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
