#!/usr/bin/env python3
"""Forward-pass throughput and peak memory: Candela's engine against ONNX Runtime.

For each model (default resnet18, mobilenet_v2 from .cache/models/) and batch size (1, 16):

  ORT      a child Python process loads an InferenceSession (CPUExecutionProvider;
           intra_op_num_threads=T, inter_op_num_threads=1, sequential execution, graph
           optimisations ALL, ORT's default), warms up, runs a random float32 batch in a loop
           for >= --seconds and reports images/s, ms/image and its own peak RSS
           (getrusage(RUSAGE_SELF).ru_maxrss; also its RSS right after the imports, i.e. what
           Python + numpy + onnxruntime cost before the model is loaded).
  Candela  `candela bench --model M --batch B --threads T --seconds S --json` in its own
           process; peak RSS from os.wait4() on that one child (its rusage alone).

Prints a table (img/s, ms/img, Candela/ORT throughput ratio, peak RSS in MB) and writes
.cache/bench/bench_vs_ort.json. The environment is passed on unchanged (no OPENBLAS_* / OMP_*
variables are set). Numbers are only meaningful on an otherwise idle machine: the share of CPU
time other processes use (sampled over 1 s from /proc/stat) is printed before and after, with a
warning above 15 %, and each measurement's row shows the share other processes used meanwhile.
A measurement that others disturbed (> 10 % of the CPUs) is repeated up to --retries times and
the least disturbed run is kept. Each model and batch is measured in --pairs rounds (default 3)
of ORT then Candela, the order swapped every other round; the table shows the round with the
median ratio and lists every round's ratio, since this kind of VM drifts by tens of percent over
seconds.

Python is tooling only. Usage:
  .venv/bin/python tools/bench/bench_vs_ort.py [--candela PATH] [--models a,b] [--batches 1,16]
                                               [--threads 2] [--seconds 3] [--retries 2] [--pairs 3] [--no-candela]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / ".cache" / "models"
OUT = ROOT / ".cache" / "bench"
RELEASE = ROOT / ".build" / "release" / "candela"
DEBUG = ROOT / ".build" / "debug" / "candela"


# ---------------------------------------------------------------- child: ONNX Runtime loop


def ort_session(model, batch, threads, seed=0):
    """(run, load seconds, ORT version, RSS after imports KB): an InferenceSession as below, a
    random float32 batch and a function that runs one pass on it."""
    import numpy as np
    import onnxruntime as ort

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0
    inp = sess.get_inputs()[0]
    chw = [d if isinstance(d, int) and d > 0 else dflt for d, dflt in zip(inp.shape[1:], (3, 224, 224))]
    x = np.random.default_rng(seed).standard_normal((batch, *chw)).astype(np.float32)
    feed = {inp.name: x}
    return (lambda: sess.run(None, feed)), load_s, ort.__version__, base_kb


def warm_up(run):
    """At least 2 runs and 0.5 s."""
    t0, n = time.perf_counter(), 0
    while n < 2 or time.perf_counter() - t0 < 0.5:
        run()
        n += 1


def timed(run, seconds):
    """(passes, elapsed seconds): `run` repeated until at least `seconds` have passed."""
    iters, t0 = 0, time.perf_counter()
    while True:
        run()
        iters += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return iters, elapsed


def ort_child(model, batch, threads, seconds):
    run, load_s, version, base_kb = ort_session(model, batch, threads)
    warm_up(run)
    iters, elapsed = timed(run, seconds)
    images = iters * batch
    print(json.dumps({
        "images_per_second": images / elapsed,
        "ms_per_image": 1000.0 * elapsed / images,
        "batch": batch,
        "threads": threads,
        "iterations": iters,
        "seconds": elapsed,
        "load_seconds": load_s,
        "rss_after_imports_mb": base_kb / 1024.0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "onnxruntime": version,
    }))


def ort_server(model, batch, threads):
    """The ORT side of --interleave: the protocol of `candela bench --rounds-from-stdin` (after
    warm-up print {"ready": true}; per line of seconds on stdin, time passes for that long and
    print one JSON line)."""
    run, _, version, base_kb = ort_session(model, batch, threads)
    warm_up(run)
    print(json.dumps({"ready": True, "onnxruntime": version, "rss_after_imports_mb": base_kb / 1024.0}), flush=True)
    for k, line in enumerate(sys.stdin, 1):
        iters, elapsed = timed(run, float(line))
        print(json.dumps({"round": k, "iterations": iters, "seconds": elapsed,
                          "ms_per_image": 1000.0 * elapsed / (iters * batch)}), flush=True)


# ---------------------------------------------------------------- parent


def resolve_candela(path):
    if path:
        p = Path(path)
        if not p.is_file():
            sys.exit(f"error: no Candela binary at {p}")
        if p.resolve() == DEBUG.resolve():
            print("warning: this is the debug build: its numbers are not representative", file=sys.stderr)
        return p
    if RELEASE.is_file():
        return RELEASE
    if DEBUG.is_file():
        print(f"warning: {RELEASE.relative_to(ROOT)} not found, falling back to the debug build "
              f"{DEBUG.relative_to(ROOT)}: its numbers are not representative (run `make release`)",
              file=sys.stderr)
        return DEBUG
    sys.exit("error: no Candela binary (.build/release/candela or .build/debug/candela); build one, "
             "pass --candela, or use --no-candela")


def _cpu_sample():
    """(total, idle) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]), v[3] + v[4]  # user..steal; idle + iowait


def cpu_busy(interval=1.0):
    """Fraction of all CPUs busy over `interval` seconds (from /proc/stat), or None."""
    sample = _cpu_sample
    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
    except OSError:
        return None
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def run_measured(cmd, timeout):
    """Runs cmd in its own process.

    Returns (exit code, stdout, stderr, that child's peak RSS MB, other load): other load is the
    share of all CPUs that processes other than this child kept busy meanwhile (None if unknown).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            s0 = _cpu_sample()
        except OSError:
            s0 = None
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)  # this child's own rusage
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        other = None
        if s0 is not None:
            s1 = _cpu_sample()
            busy_s = ((s1[0] - s1[1]) - (s0[0] - s0[1])) / os.sysconf("SC_CLK_TCK")
            own_s = usage.ru_utime + usage.ru_stime
            other = max(0.0, (busy_s - own_s) / (wall * (os.cpu_count() or 1)))
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), usage.ru_maxrss / 1024.0, other


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


def measure_ort(model, batch, threads, seconds, timeout):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--ort-child", str(model),
           "--batch-child", str(batch), "--threads", str(threads), "--seconds", str(seconds)]
    code, out, err, rss, other = run_measured(cmd, timeout)
    if code != 0:
        raise RuntimeError(f"ORT child exit {code}: {err.strip() or out.strip()}")
    r = last_json(out)
    r["wait4_peak_rss_mb"] = rss
    r["other_cpu"] = other
    return r


def measure_candela(candela, model, batch, threads, seconds, timeout):
    cmd = [str(candela), "bench", "--model", str(model), "--batch", str(batch),
           "--threads", str(threads), "--seconds", str(seconds), "--json"]
    code, out, err, rss, other = run_measured(cmd, timeout)
    if code != 0:
        raise RuntimeError(f"exit {code}: {err.strip() or out.strip()}")
    r = last_json(out)
    r["peak_rss_mb"] = rss
    r["other_cpu"] = other
    return r


def least_disturbed(measure, retries, limit=0.1):
    """Runs measure() until other processes used <= limit of the CPUs, at most 1 + retries
    times; returns the run they disturbed least."""
    best = None
    for attempt in range(1 + retries):
        r = measure()
        r["attempts"] = attempt + 1
        if best is None or (r.get("other_cpu") or 0) < (best.get("other_cpu") or 0):
            best = r
        if (r.get("other_cpu") or 0) <= limit:
            break
        time.sleep(5)
    return best


class Server:
    """One engine kept warm in its own process that times a round of forward passes whenever it
    is sent a number of seconds (`candela bench --rounds-from-stdin`, or ort_server above)."""

    def __init__(self, name, cmd):
        self.name = name
        self.err = tempfile.TemporaryFile("w+")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  text=True, bufsize=1)
        self.info = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            self.err.seek(0)
            raise RuntimeError(f"{self.name} exited {self.p.returncode}: {self.err.read().strip()}")
        return json.loads(line)

    def round(self, seconds):
        self.p.stdin.write(f"{seconds}\n")
        self.p.stdin.flush()
        return self._read()["ms_per_image"]

    def close(self):
        """Ends the process; returns its peak RSS in MB (its own rusage, from wait4)."""
        self.p.stdin.close()
        _, status, usage = os.wait4(self.p.pid, 0)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        return usage.ru_maxrss / 1024.0


def quantile(values, q):
    v = sorted(values)
    x = q * (len(v) - 1)
    i = int(x)
    return v[i] if i + 1 >= len(v) else v[i] + (x - i) * (v[i + 1] - v[i])


def interleaved(args, candela, model, batch):
    """--interleave: ORT, Candela (and --baseline) each warm in its own process; --interleave
    rounds of --round-seconds each, one engine after the other, the order rotated every round.
    Ratios are taken within a round, so the machine's drift over seconds cancels."""
    engines = [("ort", [sys.executable, str(Path(__file__).resolve()), "--ort-serve", str(model),
                        "--batch-child", str(batch), "--threads", str(args.threads)])]
    bench = ["bench", "--model", str(model), "--batch", str(batch), "--threads", str(args.threads),
             "--rounds-from-stdin"]
    if candela is not None:
        engines.append(("candela", [str(candela)] + bench))
    if args.baseline:
        engines.append(("baseline", [str(args.baseline)] + bench))
    servers = []
    try:
        for name, cmd in engines:  # one at a time: each warms up alone
            servers.append(Server(name, cmd))
        s0 = _cpu_sample()
        t0 = time.perf_counter()
        ms = {s.name: [] for s in servers}
        for k in range(args.interleave):
            turn = servers[k % len(servers):] + servers[:k % len(servers)]
            for s in turn:
                # ORT's idle workers spin for some 40 ms after a round (measured from
                # /proc/PID/stat): let them stop before the next engine starts.
                time.sleep(args.round_gap)
                ms[s.name].append(s.round(args.round_seconds))
        wall = time.perf_counter() - t0 - args.round_gap * args.interleave * len(servers)
        s1 = _cpu_sample()
    finally:
        rss = {}
        for s in servers:
            try:
                rss[s.name] = s.close()
            except Exception:
                s.p.kill()
    # Busy CPU beyond the engines' own share (one engine at a time on `threads` threads).
    busy = ((s1[0] - s1[1]) - (s0[0] - s0[1])) / os.sysconf("SC_CLK_TCK")
    other = max(0.0, busy / wall - args.threads) / (os.cpu_count() or 1)
    row = {"model": model.stem, "batch": batch, "rounds": args.interleave, "round_seconds": args.round_seconds,
           "ms_per_image": ms, "peak_rss_mb": rss, "other_cpu": other}
    for name in ("candela", "baseline"):
        if name in ms:
            r = [o / c for o, c in zip(ms["ort"], ms[name])]
            row[f"{name}_ratios"] = r
    if "baseline" in ms:
        row["candela_vs_baseline"] = [b / c for b, c in zip(ms["baseline"], ms["candela"])]
    return row


def print_interleaved(rows):
    pairs = [("candela_ratios", "candela", "ort", "Candela / ORT"), ("baseline_ratios", "baseline", "ort", "baseline / ORT"),
             ("candela_vs_baseline", "candela", "baseline", "Candela / baseline")]
    cols = ["model", "batch", "engines", "ms/img", "ratio", "middle half", "rounds > 1", "peak RSS MB"]
    widths = [14, 5, 18, 16, 6, 13, 10, 12]
    line = "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    print()
    print(line)
    print("-" * len(line))
    for r in rows:
        ms, rss = r["ms_per_image"], r["peak_rss_mb"]
        if not any(key in r for key, *_ in pairs):  # --no-candela: ORT alone
            vals = [r["model"], r["batch"], "ORT", f"{statistics.median(ms['ort']):.3f}", "-", "-", "-", f"{rss.get('ort', 0):.0f}"]
            print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(vals, widths))))
        for key, a, b, label in pairs:
            if key not in r:
                continue
            q = r[key]
            vals = [r["model"], r["batch"], label, f"{statistics.median(ms[a]):.3f} / {statistics.median(ms[b]):.3f}",
                    f"{statistics.median(q):.3f}", f"{quantile(q, 0.25):.3f}–{quantile(q, 0.75):.3f}",
                    f"{sum(x > 1 for x in q)}/{len(q)}", f"{rss.get(a, 0):.0f} / {rss.get(b, 0):.0f}"]
            print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(vals, widths))))
    print("\nratio = throughput ratio A / B (B's time over A's) within a round, median over the rounds; "
          "middle half = its 25th to 75th percentile;\nms/img = median of the rounds; peak RSS from wait4 on each "
          "engine's own process (ORT's includes Python)")


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candela", help="Candela binary (default .build/release/candela, falling back to .build/debug/candela)")
    ap.add_argument("--models", default="resnet18,mobilenet_v2", help="comma-separated names in --model-dir")
    ap.add_argument("--model-dir", type=Path, default=MODELS, help=f"default {MODELS}")
    ap.add_argument("--batches", default="1,16", help="batch sizes (default 1,16)")
    ap.add_argument("--threads", type=int, default=2, help="threads for both engines (default 2)")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per measurement (default 3)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per measurement process")
    ap.add_argument("--retries", type=int, default=2,
                    help="repeat a measurement up to N more times while other processes use > 10%% of the "
                         "CPUs during it; the least disturbed run is kept (default 2)")
    ap.add_argument("--pairs", type=int, default=3,
                    help="rounds of (ORT, Candela) per model and batch, order swapped every other round; the "
                         "table shows the pair with the median ratio (default 3)")
    ap.add_argument("--no-candela", action="store_true", help="measure ONNX Runtime only")
    ap.add_argument("--interleave", type=int, default=30, metavar="ROUNDS",
                    help="keep each engine warm in its own process and alternate ROUNDS short rounds "
                         "between them, ratios taken within a round (default 30; 0: the older --pairs "
                         "mode of one process per measurement)")
    ap.add_argument("--round-seconds", type=float, default=0.5, help="seconds per engine per round (default 0.5)")
    ap.add_argument("--round-gap", type=float, default=0.1,
                    help="idle seconds before each round, so the previous engine's spinning workers stop (default 0.1)")
    ap.add_argument("--baseline", help="with --interleave: a second Candela binary in the rotation (A/B of two builds)")
    ap.add_argument("--json-out", type=Path, default=OUT / "bench_vs_ort.json")
    ap.add_argument("--ort-child", help=argparse.SUPPRESS)
    ap.add_argument("--ort-serve", help=argparse.SUPPRESS)
    ap.add_argument("--batch-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.ort_child:
        ort_child(args.ort_child, args.batch_child, args.threads, args.seconds)
        return 0
    if args.ort_serve:
        ort_server(args.ort_serve, args.batch_child, args.threads)
        return 0

    candela = None if args.no_candela else resolve_candela(args.candela)
    models = [m.strip().removesuffix(".onnx") for m in args.models.split(",") if m.strip()]
    paths = {m: args.model_dir / f"{m}.onnx" for m in models}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        sys.exit(f"error: missing model(s): {', '.join(missing)} (run tools/bench/export_models.py)")
    batches = [int(b) for b in args.batches.split(",")]

    load0, busy0 = os.getloadavg()[0], cpu_busy()
    busy_txt = f"{busy0:.0%}" if busy0 is not None else "?"
    how = (f"{args.interleave} rounds of {args.round_seconds:g} s per engine" if args.interleave > 0
           else f">= {args.seconds:g} s per measurement")
    print(f"candela: {candela or '(skipped)'}   threads {args.threads}   {how}   "
          f"cpus {os.cpu_count()}   CPU busy before start {busy_txt}   load average (1 min) {load0:.2f}")
    if busy0 is not None and busy0 > 0.15:
        print(f"warning: other processes keep {busy_txt} of the CPUs busy; the numbers below are noisy",
              file=sys.stderr)
    print()

    if args.interleave > 0:
        rows = []
        for m in models:
            for b in batches:
                try:
                    row = interleaved(args, candela, paths[m], b)
                except Exception as e:  # keep going: report the rest
                    print(f"{m} batch {b}: failed: {e}", file=sys.stderr)
                    rows.append({"model": m, "batch": b, "error": str(e)})
                    continue
                rows.append(row)
                print(f"  measured {m} batch {b}: " + ", ".join(
                    f"{label} {statistics.median(row[key]):.3f}" for key, label in
                    (("candela_ratios", "Candela/ORT"), ("baseline_ratios", "baseline/ORT"),
                     ("candela_vs_baseline", "Candela/baseline")) if key in row)
                    + f" (median of {args.interleave} rounds; other CPU {row['other_cpu']:.0%})", flush=True)
        print_interleaved([r for r in rows if "error" not in r])
        load1, busy1 = os.getloadavg()[0], cpu_busy()
        print(f"CPU busy (other processes) before {busy_txt}, after "
              f"{f'{busy1:.0%}' if busy1 is not None else '?'}; load average (1 min) {load0:.2f} before, {load1:.2f} after")
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "mode": "interleave", "candela": str(candela) if candela else None, "baseline": args.baseline,
            "threads": args.threads, "cpu_busy_before": busy0, "cpu_busy_after": busy1, "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.json_out}")
        return 1 if any("error" in r for r in rows) else 0

    rows = []
    for m in models:
        for b in batches:
            row = {"model": m, "batch": b, "pairs": []}
            # --pairs rounds of (ORT, Candela), the order swapped every other round: the machine's
            # speed drifts over seconds, and one pair's ratio shows little; the median pair's does.
            for k in range(args.pairs):
                got = {}
                for which in (("ort", "candela") if k % 2 == 0 else ("candela", "ort")):
                    if which == "candela" and candela is None:
                        continue
                    try:
                        if which == "ort":
                            got["ort"] = least_disturbed(
                                lambda: measure_ort(paths[m], b, args.threads, args.seconds, args.timeout), args.retries)
                        else:
                            got["candela"] = least_disturbed(
                                lambda: measure_candela(candela, paths[m], b, args.threads, args.seconds, args.timeout),
                                args.retries)
                    except Exception as e:  # keep going: report the rest
                        row[f"{which}_error"] = str(e)
                        print(f"{m} batch {b}: {'ORT' if which == 'ort' else 'Candela'} failed: {e}", file=sys.stderr)
                if "ort" in got and "candela" in got:
                    got["ratio"] = got["candela"]["images_per_second"] / got["ort"]["images_per_second"]
                row["pairs"].append(got)
                if "ort_error" in row or "candela_error" in row:
                    break
            done = [p for p in row["pairs"] if "ratio" in p] or [p for p in row["pairs"] if "ort" in p]
            if done:
                middle = sorted(done, key=lambda p: p.get("ratio", p["ort"]["images_per_second"]))[(len(done) - 1) // 2]
                row.update({k: v for k, v in middle.items() if k in ("ort", "candela")})
                row["ratios"] = [p["ratio"] for p in row["pairs"] if "ratio" in p]
            rows.append(row)
            o, c = row.get("ort", {}), row.get("candela", {})
            print(f"  measured {m} batch {b}: ORT {fmt(o.get('images_per_second', '-'), '.1f')} img/s, "
                  f"Candela {fmt(c.get('images_per_second', '-'), '.1f')} img/s (median pair); ratios "
                  + " ".join(f"{r:.3f}" for r in row.get("ratios", [])), flush=True)

    cols = ["model", "batch", "ORT img/s", "ORT ms/img", "Candela img/s", "Candela ms/img", "ratio C/ORT",
            "ORT RSS MB", "Candela RSS MB", "other CPU", "ratio of each pair"]
    widths = [14, 5, 10, 10, 13, 14, 11, 10, 14, 11, 20]
    line = "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    print()
    print(line)
    print("-" * len(line))
    noisy = False
    for r in rows:
        o, c = r.get("ort", {}), r.get("candela", {})
        ratio = (c["images_per_second"] / o["images_per_second"]) if o and c else "-"
        vals = [r["model"], r["batch"], fmt(o.get("images_per_second", "-"), ".1f"),
                fmt(o.get("ms_per_image", "-"), ".2f"), fmt(c.get("images_per_second", "-"), ".1f"),
                fmt(c.get("ms_per_image", "-"), ".2f"), fmt(ratio, ".3f"),
                fmt(o.get("peak_rss_mb", "-"), ".0f"), fmt(c.get("peak_rss_mb", "-"), ".0f"),
                "/".join(fmt(d.get("other_cpu", "-") if d else "-", ".0%") for d in (o, c)),
                " ".join(f"{x:.2f}" for x in r.get("ratios", [])) or "-"]
        noisy |= any(d and (d.get("other_cpu") or 0) > 0.1 for d in (o, c))
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(vals, widths))))
    print("\nother CPU = share of the CPUs that other processes used during the ORT/Candela measurement")
    print(f"each row: the median of {args.pairs} pair(s) of measurements (ORT and Candela one after the other, "
          "the order swapped every other pair)")
    if noisy:
        print("warning: other processes used > 10 % of the CPUs during some measurements: rerun on an idle machine")
    base = [r["ort"]["rss_after_imports_mb"] for r in rows if "ort" in r]
    if base:
        print(f"\nORT RSS is a Python process's: {min(base):.0f} MB of it is Python + numpy + onnxruntime "
              f"before any model is loaded.")
    load1, busy1 = os.getloadavg()[0], cpu_busy()
    print(f"CPU busy (other processes) before {busy_txt}, after "
          f"{f'{busy1:.0%}' if busy1 is not None else '?'}; load average (1 min) {load0:.2f} before, {load1:.2f} after")
    if candela is not None and candela.resolve() == DEBUG.resolve():
        print("note: Candela numbers come from the DEBUG build and are not representative")

    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "candela": str(candela) if candela else None, "threads": args.threads, "seconds": args.seconds,
        "pairs": args.pairs,
        "cpu_busy_before": busy0, "cpu_busy_after": busy1,
        "load_average_before": load0, "load_average_after": load1, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json_out}")
    return 1 if any("ort_error" in r or "candela_error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
