#!/usr/bin/env python3
"""Times explanation methods on resnet18 (224x224): reference Python libraries against Candela.

For each method the script times the reference library in this process and
`candela bench --method ...` in a child process, on the same machine with 2 threads, and prints
ms/image for both, the ratio reference / Candela and whether it meets the goal:

  method      reference (goal = reference ms / Candela ms)                              goal
  gradcam     Captum LayerGradCam(layer4, relu_attributions=True)                        >= 2
              (also pytorch-grad-cam GradCAM(layer4[-1]), for information)
  ig          Captum IntegratedGradients, n_steps=32, gausslegendre, baselines=0         >= 2
  lrp         Zennit Gradient + EpsilonPlusFlat([ResNetCanonizer()])                     >= 2
  scorecam    pytorch-grad-cam ScoreCAM(layer4[-1]), its default batch size 16            >= 2
  occlusion   Captum Occlusion, window (3,16,16), strides (3,8,8), baselines=0, 16/eval  >= 5
  lime        lime LimeImageExplainer.explain_instance, 1000 samples, batch 16, quickshift >= 2

The torch model is export_models.build("resnet18") (torch.manual_seed(0) random weights,
calibrated BatchNorm), the same weights as .cache/models/resnet18.onnx; the script checks that
torch and onnxruntime agree on the benchmark input (max relative error <= 1e-4) before timing.
Every explanation targets class 0, as `candela bench` does. The forward pass of each engine
(torch no_grad batch 1, `candela bench` without --method) is timed too, for context.

Threads: torch.set_num_threads(2), torch.set_num_interop_threads(1); numpy/scipy BLAS limited
with threadpoolctl and OpenCV with cv2.setNumThreads; no environment variable is set. The
script reports each reference's process CPU time / wall time and its OS thread count.

Python is tooling only. Usage:
  .venv/bin/python tools/bench/bench_methods.py [--candela PATH] [--methods gradcam,ig,lrp,scorecam,occlusion,lime]
                                                [--threads 2] [--quick] [--retries 1] [--wait-idle S] [--no-candela]
                                                [--json-out FILE]
"""
import argparse
import atexit
import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from bench_vs_ort import (  # noqa: E402
    DEBUG, _cpu_sample, cpu_busy, fmt, last_json, least_disturbed, resolve_candela, run_measured,
)

ROOT = HERE.parents[1]
MODEL = ROOT / ".cache" / "models" / "resnet18.onnx"
OUT = ROOT / ".cache" / "bench" / "bench_methods.json"
SIZE = 224
TARGET = 0  # `candela bench` explains class 0
SEED = 0
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# name: (Candela method, Candela --set values, goal reference/Candela, slow)
METHODS = {
    "gradcam": ("gradcam", {"layer": "{layer}"}, 2.0, False),
    "ig": ("integratedgradients", {"steps": "32", "rule": "gausslegendre"}, 2.0, False),
    "lrp": ("lrp", {"composite": "epsilon-plus-flat"}, 2.0, False),
    "scorecam": ("scorecam", {"layer": "{layer}"}, 2.0, True),
    "occlusion": ("occlusion", {"window": "3,16,16", "stride": "3,8,8"}, 5.0, True),
    "lime": ("lime", {"samples": "1000"}, 2.0, True),
}
ALIASES = {"integratedgradients": "ig", "integrated_gradients": "ig", "grad-cam": "gradcam",
           "score-cam": "scorecam"}
OCCLUSION_PER_EVAL = 16
LIME_BATCH = 16
LIME_SAMPLES = 1000


# ---------------------------------------------------------------- model and input


def cam_layer_name(model_path):
    """ONNX tensor name of layer4's final Relu output: the Relu feeding GlobalAveragePool."""
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    producer = {o: n for n in m.graph.node for o in n.output}
    names = [n.input[0] for n in m.graph.node if n.op_type == "GlobalAveragePool"
             and n.input[0] in producer and producer[n.input[0]].op_type == "Relu"]
    if len(names) != 1:
        raise RuntimeError(f"expected one Relu feeding GlobalAveragePool in {model_path}, found {names}")
    return names[0]


def make_input(np):
    """The seeded random image: RGB in [0, 1] (H, W, 3) for LIME, and the ImageNet-normalized
    model input (1, 3, H, W) float32."""
    rgb = np.random.default_rng(SEED).random((SIZE, SIZE, 3))
    x = ((rgb - np.array(MEAN)) / np.array(STD)).transpose(2, 0, 1)[None].astype(np.float32)
    return rgb, x


def check_same_weights(np, torch, net, x, threads, tol=1e-4):
    """Max relative error of torch's logits against onnxruntime's on the ONNX file."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(MODEL), so, providers=["CPUExecutionProvider"])
    x2 = np.concatenate([x, np.random.default_rng(SEED + 1).standard_normal(x.shape).astype(np.float32)])
    got = sess.run(None, {sess.get_inputs()[0].name: x2})[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(x2)).numpy()
    rel = float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
    if got.shape != ref.shape or rel > tol:
        sys.exit(f"error: torch and onnxruntime disagree on {MODEL.name}: max relative error {rel:.3e} > {tol:g} "
                 f"(shapes {ref.shape} / {got.shape}); the torch model is not the ONNX file's")
    return rel


# ---------------------------------------------------------------- timing


def os_threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def time_inprocess(fn, min_runs, min_seconds):
    """Times fn() in this process (no warm-up: the caller does it once). Returns ms per image,
    runs, CPU time / wall time of this process, OS threads afterwards, and other_cpu: the share
    of all CPUs that other processes kept busy meanwhile (as bench_vs_ort's run_measured)."""
    try:
        s0 = _cpu_sample()
    except OSError:
        s0 = None
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    runs = 0
    while True:
        fn()
        runs += 1
        wall = time.perf_counter() - t0
        if runs >= min_runs and wall >= min_seconds:
            break
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    other = None
    if s0 is not None:
        s1 = _cpu_sample()
        busy = ((s1[0] - s1[1]) - (s0[0] - s0[1])) / os.sysconf("SC_CLK_TCK")
        other = max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))
    return {"ms_per_image": 1000.0 * wall / runs, "runs": runs, "seconds": wall,
            "cpu_per_wall": own / wall, "os_threads": os_threads(), "other_cpu": other}


def wait_idle(args):
    """With --wait-idle S: waits (at most S seconds) until other processes keep < 10 % of the CPUs
    busy for 3 s in a row, so that a concurrent build does not spoil the next measurement."""
    if not args.wait_idle:
        return
    t0, quiet, said = time.perf_counter(), 0, False
    while time.perf_counter() - t0 < args.wait_idle:
        busy = cpu_busy(1.0)
        if busy is None:
            return
        quiet = quiet + 1 if busy < 0.10 else 0
        if quiet >= 3:
            break
        if not said and quiet == 0:
            print(f"    waiting for an idle CPU (busy {busy:.0%}) ...", flush=True)
            said = True
    else:
        print(f"    still busy after {args.wait_idle:g} s; measuring anyway", flush=True)


def measure_reference(fn, slow, args):
    """One warm-up, then the least disturbed of up to 1 + retries timed measurements."""
    wait_idle(args)
    t0 = time.perf_counter()
    fn()
    warm = time.perf_counter() - t0
    if slow:
        min_runs, min_seconds = (1, 0.0) if args.quick else (2, 0.0)
    else:
        min_runs, min_seconds = (3, 0.5) if args.quick else (3, 2.0)
    def once():
        wait_idle(args)
        return time_inprocess(fn, min_runs, min_seconds)

    r = least_disturbed(once, args.retries)
    r["warmup_seconds"] = warm
    return r


def measure_candela(candela, method, settings, args):
    """`candela bench` in a child process; adds the child's CPU time / wall time."""
    cmd = [str(candela), "bench", "--model", str(MODEL), "--threads", str(args.threads),
           "--seconds", str(args.candela_seconds), "--json"]
    if method:
        cmd += ["--method", method]
        for k, v in settings.items():
            cmd += ["--set", f"{k}={v}"]

    def once():
        wait_idle(args)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        code, out, err, rss, other = run_measured(cmd, args.timeout)
        wall = time.perf_counter() - t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if code != 0:
            raise RuntimeError(f"exit {code}: {(err.strip() or out.strip())[-2000:]}")
        r = last_json(out)
        r.update({"peak_rss_mb": rss, "other_cpu": other, "process_seconds": wall,
                  "cpu_per_wall": ((c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)) / wall})
        return r

    r = least_disturbed(once, args.retries)
    r["command"] = " ".join([args.candela_label] + cmd[1:])
    return r


# ---------------------------------------------------------------- references


def references(name, net, x, rgb, torch, np):
    """[(label, exact call, fn)] for one method; fn() explains the image once."""
    if name == "gradcam":
        from captum.attr import LayerGradCam
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        lgc = LayerGradCam(net, net.layer4)
        gc = GradCAM(model=net, target_layers=[net.layer4[-1]])
        targets = [ClassifierOutputTarget(TARGET)]
        return [
            ("captum LayerGradCam",
             f"LayerGradCam(model, model.layer4).attribute(x, target={TARGET}, relu_attributions=True)",
             lambda: lgc.attribute(x, target=TARGET, relu_attributions=True)),
            ("pytorch-grad-cam GradCAM",
             f"GradCAM(model=model, target_layers=[model.layer4[-1]])(input_tensor=x, "
             f"targets=[ClassifierOutputTarget({TARGET})])",
             lambda: gc(input_tensor=x, targets=targets)),
        ]
    if name == "ig":
        from captum.attr import IntegratedGradients

        ig = IntegratedGradients(net)
        return [("captum IntegratedGradients",
                 f"IntegratedGradients(model).attribute(x, baselines=0, target={TARGET}, n_steps=32, "
                 f"method='gausslegendre', internal_batch_size=None)  # one batch of 32 scaled inputs",
                 lambda: ig.attribute(x, baselines=0, target=TARGET, n_steps=32, method="gausslegendre",
                                      internal_batch_size=None))]
    if name == "lrp":
        from zennit.attribution import Gradient
        from zennit.composites import EpsilonPlusFlat
        from zennit.torchvision import ResNetCanonizer

        composite = EpsilonPlusFlat(canonizers=[ResNetCanonizer()])
        onehot = torch.eye(1000)[[TARGET]]
        attributor = Gradient(model=net, composite=composite)
        attributor.__enter__()  # registered once, as when explaining many images; closed in main()
        return [("zennit Gradient+EpsilonPlusFlat",
                 "with Gradient(model=model, composite=EpsilonPlusFlat(canonizers=[ResNetCanonizer()])) as a: "
                 f"a(x, torch.eye(1000)[[{TARGET}]])  # timed: the call; registration once outside",
                 lambda: attributor(x, onehot))], attributor
    if name == "scorecam":
        from pytorch_grad_cam import ScoreCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        sc = ScoreCAM(model=net, target_layers=[net.layer4[-1]])
        targets = [ClassifierOutputTarget(TARGET)]
        return [("pytorch-grad-cam ScoreCAM",
                 f"ScoreCAM(model=model, target_layers=[model.layer4[-1]])(input_tensor=x, "
                 f"targets=[ClassifierOutputTarget({TARGET})])  # its default batch 16",
                 lambda: sc(input_tensor=x, targets=targets))]
    if name == "occlusion":
        from captum.attr import Occlusion

        occ = Occlusion(net)
        return [("captum Occlusion",
                 f"Occlusion(model).attribute(x, sliding_window_shapes=(3,16,16), strides=(3,8,8), baselines=0, "
                 f"target={TARGET}, perturbations_per_eval={OCCLUSION_PER_EVAL})",
                 lambda: occ.attribute(x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), baselines=0,
                                       target=TARGET, perturbations_per_eval=OCCLUSION_PER_EVAL))]
    if name == "lime":
        from lime import lime_image

        mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)

        def classifier_fn(images):
            with torch.no_grad():
                t = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
                return torch.softmax(net((t - mean) / std), dim=1).numpy()

        from lime.wrappers.scikit_image import SegmentationAlgorithm

        segments = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=SEED)(rgb)
        print(f"  lime: quickshift gives {len(np.unique(segments))} superpixels on the input "
              "(Candela: SLIC, segments=50 by default)", flush=True)
        explainer = lime_image.LimeImageExplainer(random_state=SEED)
        return [("lime LimeImageExplainer",
                 f"LimeImageExplainer(random_state={SEED}).explain_instance(image, classifier_fn, "
                 f"labels=({TARGET},), top_labels=None, num_samples={LIME_SAMPLES}, batch_size={LIME_BATCH}, "
                 f"random_seed={SEED})  # default quickshift(kernel_size=4, max_dist=200, ratio=0.2); "
                 "classifier_fn = softmax(model(normalize(images)))",
                 lambda: explainer.explain_instance(rgb, classifier_fn, labels=(TARGET,), top_labels=None,
                                                    num_samples=LIME_SAMPLES, batch_size=LIME_BATCH,
                                                    random_seed=SEED))]
    raise KeyError(name)


def quiet_progress_bars():
    """pytorch-grad-cam's ScoreCAM and lime wrap their loops in tqdm; drop the bars (they only
    cost time and clutter the output)."""
    import lime.lime_image
    import pytorch_grad_cam.score_cam

    pytorch_grad_cam.score_cam.tqdm = types.SimpleNamespace(tqdm=lambda it, **kw: it)
    lime.lime_image.tqdm = lambda it, **kw: it


# ---------------------------------------------------------------- main


def versions():
    from importlib.metadata import PackageNotFoundError, version

    v = {"python": platform.python_version()}
    for p in ["torch", "torchvision", "captum", "grad-cam", "zennit", "lime", "scikit-image", "scikit-learn",
              "numpy", "onnx", "onnxruntime", "opencv-python-headless", "threadpoolctl"]:
        try:
            v[p] = version(p)
        except PackageNotFoundError:
            v[p] = None
    return v


def binary_info(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    st = os.stat(path)
    return {"path": str(path), "sha256": h.hexdigest()[:16],
            "mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candela", help="Candela binary (default .build/release/candela, falling back to .build/debug/candela)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of: {', '.join(METHODS)}")
    ap.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help="shorter timing: slow methods 1 warm-up + 1 timed run (else 2), fast ones >= 3 runs and "
                         ">= 0.5 s (else 2 s); candela bench --seconds 0.5 (else 2)")
    ap.add_argument("--retries", type=int, default=1,
                    help="repeat a measurement up to N more times while other processes use > 10%% of the CPUs "
                         "during it; the least disturbed run is kept (default 1)")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="S",
                    help="before each measurement, wait up to S seconds for other processes to keep < 10%% of "
                         "the CPUs busy (default 0: do not wait)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed per candela bench process")
    ap.add_argument("--no-candela", action="store_true", help="time the references only")
    ap.add_argument("--json-out", type=Path, default=OUT, help=f"default {OUT.relative_to(ROOT)}")
    args = ap.parse_args()
    args.candela_seconds = 0.5 if args.quick else 2.0

    names = []
    for m in (s.strip().lower() for s in args.methods.split(",") if s.strip()):
        m = ALIASES.get(m, m)
        if m not in METHODS:
            ap.error(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
        if m not in names:
            names.append(m)
    if not MODEL.is_file():
        sys.exit(f"error: {MODEL} is missing (run tools/bench/export_models.py --models resnet18)")
    candela = None if args.no_candela else resolve_candela(args.candela)
    cinfo = binary_info(candela) if candela else None
    snapshot = None
    if candela is not None:
        # Run a private copy: a concurrent build may replace the file during the run. (Its
        # libraries come from an absolute RUNPATH, so the copy runs from anywhere.)
        snapshot = Path(tempfile.mkdtemp(prefix="candela-bench-"))
        atexit.register(shutil.rmtree, snapshot, True)
        shutil.copy2(candela, snapshot / "candela")
        original, candela = candela, snapshot / "candela"
    args.candela_label = str(original if candela is not None else "candela")

    import numpy as np
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    from export_models import build  # noqa: E402
    from fixture_common import import_torchvision  # noqa: E402

    import_torchvision()  # before pytorch_grad_cam / zennit import it (CUDA torchvision next to CPU torch)

    import cv2

    cv2.setNumThreads(args.threads)
    quiet_progress_bars()
    warnings.filterwarnings("ignore")

    layer = cam_layer_name(MODEL)
    net = build("resnet18")
    rgb, x_np = make_input(np)
    rel = check_same_weights(np, torch, net, x_np, args.threads)
    x = torch.from_numpy(x_np)
    vers = versions()

    load0, busy0 = os.getloadavg()[0], cpu_busy()
    busy_txt = f"{busy0:.0%}" if busy0 is not None else "?"
    print(f"model {MODEL.relative_to(ROOT)} (torch == ONNX: max rel. error {rel:.1e})   candela {cinfo['path'] if cinfo else '(skipped)'}   "
          f"threads {args.threads}   cpus {os.cpu_count()}   {'quick' if args.quick else 'full'} timing")
    if cinfo:
        print(f"candela binary sha256 {cinfo['sha256']}…, modified {cinfo['mtime']}")
    print(f"CAM layer {layer}   CPU busy before start {busy_txt}   load average (1 min) {load0:.2f}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if v))
    if busy0 is not None and busy0 > 0.15:
        print(f"warning: other processes keep {busy_txt} of the CPUs busy; the numbers below are noisy",
              file=sys.stderr)
    print(flush=True)

    rows, forward = [], {}
    with threadpool_limits(limits=args.threads):
        pools = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version")} for p in threadpool_info()]

        def fwd():
            with torch.no_grad():
                net(x)

        forward["torch"] = measure_reference(fwd, False, args)
        if candela is not None:
            try:
                forward["candela"] = measure_candela(candela, None, {}, args)
            except Exception as e:
                forward["candela_error"] = str(e)
                print(f"forward: Candela failed: {e}", file=sys.stderr)
        print(f"  forward: torch {fmt(forward['torch']['ms_per_image'], '.2f')} ms, Candela "
              f"{fmt(forward.get('candela', {}).get('ms_per_image', '-'), '.2f')} ms", flush=True)

        for name in names:
            cmethod, settings, goal, slow = METHODS[name]
            settings = {k: v.format(layer=layer) for k, v in settings.items()}
            cres, cerr = None, None
            if candela is not None:
                try:
                    cres = measure_candela(candela, cmethod, settings, args)
                except Exception as e:  # keep going: report the rest
                    cerr = str(e)
                    print(f"{name}: Candela failed: {e}", file=sys.stderr)
            refs = references(name, net, x, rgb, torch, np)
            closer = None
            if isinstance(refs, tuple):
                refs, closer = refs
            for i, (label, call, fn) in enumerate(refs):
                row = {"method": name, "reference": label, "call": call, "goal": goal if i == 0 else None,
                       "candela_method": cmethod, "candela_settings": settings}
                try:
                    row["ref"] = measure_reference(fn, slow, args)
                except Exception as e:
                    row["ref_error"] = f"{type(e).__name__}: {e}"
                    print(f"{name}: {label} failed: {row['ref_error']}", file=sys.stderr)
                if cres is not None:
                    row["candela"] = cres
                if cerr is not None:
                    row["candela_error"] = cerr
                if "ref" in row and cres is not None:
                    row["ratio"] = row["ref"]["ms_per_image"] / cres["ms_per_image"]
                    row["result"] = ("PASS" if row["ratio"] >= goal else "MISS") if i == 0 else \
                        f"(info: {'≥' if row['ratio'] >= goal else '<'} {goal:g}×)"
                rows.append(row)
                print(f"  {name}: {label} {fmt(row.get('ref', {}).get('ms_per_image', '-'), '.1f')} ms, Candela "
                      f"{fmt((cres or {}).get('ms_per_image', '-'), '.1f')} ms", flush=True)
            if closer is not None:
                closer.__exit__(None, None, None)

    cols = ["method", "reference", "ref ms/img", "Candela ms/img", "ref÷Candela", "goal", "result",
            "other CPU ref/C", "ref CPU/wall"]
    widths = [10, 31, 10, 14, 11, 5, 14, 15, 12]

    def line(vals):
        return "  ".join(str(v).rjust(w) if i > 1 else str(v).ljust(w) for i, (v, w) in enumerate(zip(vals, widths)))

    print()
    header = line(cols)
    print(header)
    print("-" * len(header))
    fr, fc = forward.get("torch", {}), forward.get("candela", {})
    print(line(["forward", "torch no_grad", fmt(fr.get("ms_per_image", "-"), ".2f"),
                fmt(fc.get("ms_per_image", "-"), ".2f"),
                fmt(fr["ms_per_image"] / fc["ms_per_image"], ".2f") + "×" if fr and fc else "-", "", "",
                "/".join(fmt(d.get("other_cpu", "-") if d else "-", ".0%") for d in (fr, fc)),
                fmt(fr.get("cpu_per_wall", "-"), ".2f")]))
    noisy = any(d and (d.get("other_cpu") or 0) > 0.1 for d in (fr, fc))
    for r in rows:
        rr, c = r.get("ref", {}), r.get("candela", {})
        result = r.get("result") or ("ERROR" if "candela_error" in r or "ref_error" in r else "-")
        print(line([r["method"], r["reference"], fmt(rr.get("ms_per_image", "ERR" if "ref_error" in r else "-"), ".1f"),
                    fmt(c.get("ms_per_image", "ERR" if "candela_error" in r else "-"), ".1f"),
                    (fmt(r["ratio"], ".2f") + "×") if "ratio" in r else "-",
                    f"≥{r['goal']:g}×" if r["goal"] else "", result,
                    "/".join(fmt(d.get("other_cpu", "-") if d else "-", ".0%") for d in (rr, c)),
                    fmt(rr.get("cpu_per_wall", "-"), ".2f")]))
        noisy |= any(d and (d.get("other_cpu") or 0) > 0.1 for d in (rr, c))

    print("\nreference calls (model = export_models.build('resnet18'), x = the seeded 1×3×224×224 input):")
    for r in rows:
        print(f"  {r['method']:<10} {r['call']}")
    print("Candela: candela bench --model .cache/models/resnet18.onnx --threads "
          f"{args.threads} --method M --set k=v ... --seconds {args.candela_seconds:g} --json")
    for name in names:
        cmethod, settings, _, _ = METHODS[name]
        print(f"  {name:<10} --method {cmethod} " + " ".join(f"--set {k}={v.format(layer=layer)}" for k, v in settings.items()))
    errors = [(r["method"], r.get("candela_error") or r.get("ref_error")) for r in rows
              if "candela_error" in r or "ref_error" in r]
    if "candela_error" in forward:
        errors.insert(0, ("forward", forward["candela_error"]))
    for m, e in errors:
        print(f"error in {m}: {e}")
    print("\nother CPU = share of the CPUs other processes used during the reference/Candela measurement; "
          "ref CPU/wall = this process's CPU time over wall time while timing the reference "
          f"(≤ {args.threads} when it keeps to {args.threads} threads)")
    over = [r for r in rows if (r.get("ref", {}).get("cpu_per_wall") or 0) > args.threads * 1.05]
    if over:
        print("warning: these references used more than the allowed CPU: " + ", ".join(r["reference"] for r in over))
    if noisy:
        print("warning: other processes used > 10 % of the CPUs during some measurements: rerun those rows "
              "(--methods) on an idle machine")
    if snapshot is not None:
        shutil.rmtree(snapshot, ignore_errors=True)
        candela = original
        if binary_info(original)["sha256"] != cinfo["sha256"]:
            print(f"note: {original} was replaced during the run; all Candela rows come from the copy taken at "
                  f"the start (sha256 {cinfo['sha256']}…)")
    if candela is not None and candela.resolve() == DEBUG.resolve():
        print("note: Candela numbers come from the DEBUG build and are not representative")
    load1, busy1 = os.getloadavg()[0], cpu_busy()
    print(f"CPU busy (other processes) before {busy_txt}, after {f'{busy1:.0%}' if busy1 is not None else '?'}; "
          f"load average (1 min) {load0:.2f} before, {load1:.2f} after")

    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "model": str(MODEL.relative_to(ROOT)), "torch_vs_onnx_max_rel_error": rel, "cam_layer": layer,
        "target": TARGET, "input": f"numpy default_rng({SEED}).random((224,224,3)) RGB in [0,1], ImageNet-normalized",
        "candela": cinfo, "threads": args.threads,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "threadpools": pools, "quick": args.quick, "candela_seconds": args.candela_seconds,
        "versions": vers, "cpu_busy_before": busy0, "cpu_busy_after": busy1,
        "load_average_before": load0, "load_average_after": load1,
        "forward": forward, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json_out.relative_to(ROOT) if args.json_out.is_relative_to(ROOT) else args.json_out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
