#!/usr/bin/env bash
# Command-line checks: bad input anywhere exits non-zero with one clear line naming the file or
# value (never a stack trace), and the happy paths write what they promise.
# Usage: Tests/cli/run.sh path/to/candela
set -u
BIN=${1:?usage: run.sh path/to/candela}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0
M=models/demo.onnx
IMG=datasets/demo/images/slide_001.png
PRE=(--mean 0.5,0.5,0.5 --std 0.25,0.25,0.25)

# expect_error NAME EXPECTED_SUBSTRING -- command...
expect_error() {
  local name=$1 want=$2; shift 3
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  local lines; lines=$(grep -c . "$TMP/err")
  if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && grep -qF -- "$want" "$TMP/err" && ! grep -qiE "fatal error|stack|backtrace" "$TMP/err"; then
    pass=$((pass+1))
  else
    fail=$((fail+1)); echo "FAIL $name (rc=$rc, $lines stderr lines; wanted '$want'):"; sed 's/^/    /' "$TMP/err" | head -5
  fi
}

# expect_ok NAME -- command... ; then optional file checks with check_file
expect_ok() {
  local name=$1; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -eq 0 ]; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $name (rc=$rc)"; sed 's/^/    /' "$TMP/err" | head -5; fi
}

check() {
  local name=$1; shift
  if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $name"; fi
}

# Wrong-shaped and malformed .npy inputs.
python3 - "$TMP" <<'PY'
import struct, sys
def npy(path, shape, n=None):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")
    header = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    count = 1
    for s in shape: count *= s
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(b"\x00\x00\x00\x00" * (count if n is None else n))
d = sys.argv[1]
npy(d + "/wrong.npy", [1, 3, 32, 32])
npy(d + "/ok.npy", [1, 3, 64, 64])
npy(d + "/short.npy", [1, 3, 64, 64], n=10)
open(d + "/garbage.npy", "wb").write(b"not numpy")
PY

expect_error missing-image      "/no/such/slide.png"        -- "$BIN" explain --model $M --input /no/such/slide.png --method saliency
expect_error missing-model      "/no/such/model.onnx"       -- "$BIN" explain --model /no/such/model.onnx --input $IMG --method saliency
expect_error truncated-jpeg     "truncated.jpg"             -- "$BIN" explain --model $M --input Tests/Fixtures/images/truncated.jpg --method saliency "${PRE[@]}"
expect_error corrupt-jpeg       "corrupt.jpg"               -- "$BIN" explain --model $M --input Tests/Fixtures/images/corrupt.jpg --method saliency "${PRE[@]}"
expect_error truncated-png      "truncated.png"             -- "$BIN" explain --model $M --input Tests/Fixtures/images/truncated.png --method saliency "${PRE[@]}"
expect_error not-an-image       "not a PNG or JPEG"         -- "$BIN" explain --model $M --input Tests/Fixtures/images/not-an-image.png --method saliency
expect_error wrong-shaped-npy   "wrong.npy"                 -- "$BIN" explain --model $M --input "$TMP/wrong.npy" --method saliency
expect_error short-npy          "short.npy"                 -- "$BIN" explain --model $M --input "$TMP/short.npy" --method saliency
expect_error garbage-npy        "garbage.npy"               -- "$BIN" explain --model $M --input "$TMP/garbage.npy" --method saliency
expect_error unknown-method     "unknown method 'gradcma' (did you mean 'gradcam'?)" -- "$BIN" explain --model $M --input $IMG --method gradcma
expect_error target-range       "--target 7 is out of range" -- "$BIN" explain --model $M --input $IMG --method gradcam --target 7 "${PRE[@]}"
expect_error unknown-layer      "unknown layer 'no_such_layer'" -- "$BIN" explain --model $M --input $IMG --method gradcam --layer no_such_layer "${PRE[@]}"
expect_error unknown-parameter  "has no parameter 'steps'"  -- "$BIN" explain --model $M --input $IMG --method saliency --set steps=3
expect_error not-onnx           "not a valid ONNX model"    -- "$BIN" inspect Tests/Fixtures/images/rgb8.png
expect_error infer-bad-input    "no input named 'nope'"     -- "$BIN" infer --model $M --input nope="$TMP/ok.npy" --out "$TMP/y.npy"
expect_error missing-manifest   "/no/such.yaml"             -- "$BIN" validate /no/such.yaml

# A manifest with a typo: file:line:column and a suggestion.
sed 's/^    classes:/    clases:/' pipelines/demo.yaml > "$TMP/typo.yaml"
sed -i "s#\.\./#$ROOT/#g" "$TMP/typo.yaml"
line=$(grep -n "clases:" "$TMP/typo.yaml" | cut -d: -f1)
expect_error manifest-typo "typo.yaml:$line:5: unknown key 'clases' in model 'demo-cnn' (did you mean 'classes'?)" -- "$BIN" validate "$TMP/typo.yaml"

# Happy paths.
expect_ok explain-writes -- "$BIN" explain --model $M --input $IMG --method gradcam "${PRE[@]}" \
  --out "$TMP/raw.npy" --heatmap "$TMP/heat.npy" --overlay "$TMP/overlay.png"
check explain-raw-written     test -s "$TMP/raw.npy"
check explain-heatmap-written test -s "$TMP/heat.npy"
check explain-overlay-png     bash -c "head -c 8 '$TMP/overlay.png' | od -An -tx1 | grep -q '89 50 4e 47'"
expect_ok infer-npy -- "$BIN" infer --model $M --input "$TMP/ok.npy" --out "$TMP/y.npy"
check infer-output-written test -s "$TMP/y.npy"
expect_ok validate-demo -- "$BIN" validate pipelines/demo.yaml --dot "$TMP/plan.dot"
check validate-dot bash -c "grep -q 'digraph' '$TMP/plan.dot' && grep -q '64 items' '$TMP/out'"

# Ctrl-C: the run finishes the items in flight, commits, exits 130; a rerun reuses them.
cat > "$TMP/slow.yaml" <<YAML
pipeline: slow
datasets:
  d: {csv: $ROOT/datasets/demo/labels.csv, limit: 12}
models:
  m:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
explainers:
  ig: {method: integratedgradients, params: {steps: 64}}
stages:
  predict: {kind: predict}
  explain: {kind: explain}
YAML
"$BIN" run "$TMP/slow.yaml" --jobs 1 --db "$TMP/slow.sqlite" --report "$TMP/slow-report" >"$TMP/out" 2>"$TMP/err" &
runpid=$!
sleep 3
kill -INT $runpid
wait $runpid; rc=$?
check sigint-exit-130 test "$rc" -eq 130
check sigint-status-interrupted bash -c "sqlite3 '$TMP/slow.sqlite' 'select status from runs' | grep -qx interrupted"
done_items=$(sqlite3 "$TMP/slow.sqlite" "select count(*) from items")
check sigint-kept-some-items test "$done_items" -ge 1 -a "$done_items" -lt 12
"$BIN" run "$TMP/slow.yaml" --jobs 2 --db "$TMP/slow.sqlite" --report "$TMP/slow-report" >"$TMP/out" 2>"$TMP/err"; rc=$?
check rerun-completes test "$rc" -eq 0
check rerun-reuses bash -c "grep -q ', $done_items reused from the store' '$TMP/out'"

# Listing runs and exporting CSV.
expect_ok runs-list -- "$BIN" runs --db "$TMP/slow.sqlite"
check runs-shows-both bash -c "grep -c 'slow' '$TMP/out' | grep -qx 2 && grep -q interrupted '$TMP/out' && grep -q complete '$TMP/out'"
expect_ok export-csv -- "$BIN" export --db "$TMP/slow.sqlite" --out "$TMP/run.csv"
check export-rows bash -c "head -1 '$TMP/run.csv' | grep -q '^run,path,label,predicted' && test \$(wc -l < '$TMP/run.csv') -eq 13"
expect_error export-bad-format "only csv is supported" -- "$BIN" export --db "$TMP/slow.sqlite" --format xml
expect_error runs-missing-db "/no/such.sqlite" -- "$BIN" runs --db /no/such.sqlite

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
