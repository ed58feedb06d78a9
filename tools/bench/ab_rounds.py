#!/usr/bin/env python3
"""A/B of Candela variants in interleaved rounds: builds, kernel switches or method parameters.

Each variant is one `candela bench --rounds-from-stdin` process kept warm; the script gives each
the same number of seconds per round, alternating the order every round, and prints each
variant's median ms per image and its speed against the first variant within each round
(median, middle half, rounds faster). On this VM the speed drifts by tens of per cent over
minutes, so only ratios taken within a round are worth comparing (tools/bench/README.md).

  .venv/bin/python tools/bench/ab_rounds.py --model .cache/models/resnet18.onnx --batch 16 \\
      'chunk4=--kernel-set chunk=4' 'chunk8=--kernel-set chunk=8'
  .venv/bin/python tools/bench/ab_rounds.py --model .cache/models/resnet18.onnx --rounds 8 --seconds 0.1 \\
      'old=bin:/tmp/candela-old --method occlusion' 'new=--method occlusion'

A variant is NAME=ARGS: extra `candela bench` arguments, split on spaces; a first word
`bin:PATH` names another binary (default .build/release/candela). With --method every round
runs at least one whole explanation. --avx2 runs every variant under tools/cpumask/run.sh.
Python is tooling only.
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start(binary, args, model, batch, avx2):
    pre = [str(ROOT / "tools" / "cpumask" / "run.sh")] if avx2 else []
    p = subprocess.Popen(pre + [binary, "bench", "--model", model, "--batch", str(batch), "--rounds-from-stdin"] + args,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if '"ready"' not in line:
        sys.exit(f"error: {' '.join(p.args)} did not start: {line.strip() or p.stderr.read().strip()}")
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("variants", nargs="+", help="NAME=ARGS; the first is the reference")
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds per variant per round (default 1)")
    ap.add_argument("--avx2", action="store_true", help="hide AVX-512 from every variant (tools/cpumask/run.sh)")
    a = ap.parse_args()
    variants = []
    for v in a.variants:
        name, _, rest = v.partition("=")
        words = rest.split()
        binary = str(ROOT / ".build" / "release" / "candela")
        if words and words[0].startswith("bin:"):
            binary, words = words[0][4:], words[1:]
        variants.append((name, binary, words))
    procs = [start(b, w, a.model, a.batch, a.avx2) for _, b, w in variants]
    ms = [[] for _ in variants]
    for r in range(a.rounds):
        order = list(range(len(procs))) if r % 2 == 0 else list(reversed(range(len(procs))))
        for i in order:
            procs[i].stdin.write(f"{a.seconds}\n")
            procs[i].stdin.flush()
            line = procs[i].stdout.readline()
            if not line:
                sys.exit(f"error: variant {variants[i][0]} stopped: {procs[i].stderr.read().strip()}")
            ms[i].append(json.loads(line)["ms_per_image"])
    for p in procs:
        p.stdin.close()
        p.wait()
    print(f"{a.rounds} rounds of {a.seconds} s per variant, {Path(a.model).name}, batch {a.batch}"
          f"{', AVX-512 hidden' if a.avx2 else ''}")
    for (name, _, _), m in zip(variants, ms):
        speed = sorted(ref / x for ref, x in zip(ms[0], m))
        q = len(speed)
        print(f"  {name:>12}: {statistics.median(m):10.3f} ms/image; speed vs {variants[0][0]}: {statistics.median(speed):.3f}"
              f" (middle half {speed[q // 4]:.3f}-{speed[(3 * q) // 4]:.3f}), faster in {sum(s > 1 for s in speed)} of {q}")


if __name__ == "__main__":
    main()
