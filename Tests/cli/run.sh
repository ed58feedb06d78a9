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

# rows, metric_rows, items_in (items committed so far; 0 before the file exists): what two
# stores must agree on.
source "$ROOT/Tests/lib/store-rows.sh"
# Waits until store $1 holds more than $2 items, process $3 has ended, or 20 s have passed.
wait_for_items() {
  for _ in $(seq 400); do
    [ "$(items_in "$1")" -gt "$2" ] && return
    kill -0 "$3" 2>/dev/null || return
    sleep 0.05
  done
}

# Wrong-shaped and malformed .npy inputs.
python3 - "$TMP" <<'PY'
import struct, sys
def npy(path, shape, n=None, descr="<f4", value=b"\x00\x00\x00\x00"):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    header = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    count = 1
    for s in shape: count *= s
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(value * min(count if n is None else n, 1 << 20))
d = sys.argv[1]
npy(d + "/wrong.npy", [1, 3, 32, 32])
npy(d + "/ok.npy", [1, 3, 64, 64])
npy(d + "/short.npy", [1, 3, 64, 64], n=10)
npy(d + "/row3.npy", [1, 3])
npy(d + "/int8.npy", [1, 3, 64, 64], descr="|i1", value=b"\x07")
npy(d + "/nan.npy", [1, 3, 64, 64], value=struct.pack("<f", float("nan")))
npy(d + "/huge.npy", [1 << 40, 1 << 30], n=1)
npy(d + "/big.npy", [1, 3, 512, 512], n=1)
npy(d + "/nanseg.npy", [64, 64], value=struct.pack("<f", float("nan")))
open(d + "/garbage.npy", "wb").write(b"not numpy")
PY

expect_error missing-image      "/no/such/slide.png"        -- "$BIN" explain --model $M --input /no/such/slide.png --method saliency
expect_error missing-model      "/no/such/model.onnx"       -- "$BIN" explain --model /no/such/model.onnx --input $IMG --method saliency
expect_error truncated-jpeg     "truncated.jpg"             -- "$BIN" explain --model $M --input Tests/Fixtures/images/truncated.jpg --method saliency "${PRE[@]}"
expect_error corrupt-jpeg       "corrupt.jpg"               -- "$BIN" explain --model $M --input Tests/Fixtures/images/corrupt.jpg --method saliency "${PRE[@]}"
expect_error truncated-png      "truncated.png"             -- "$BIN" explain --model $M --input Tests/Fixtures/images/truncated.png --method saliency "${PRE[@]}"
expect_error jpeg-bomb          "bomb.jpg: JPEG of 60000 x 60000 pixels (10.06 GiB decoded) is over the limit" -- "$BIN" explain --model $M --input Tests/Fixtures/images/bomb.jpg --method saliency
expect_error png-bomb           "bomb.png: PNG of 100000 x 100000 pixels (27.9 GiB decoded) is over the limit of 178956970 pixels" -- "$BIN" explain --model $M --input Tests/Fixtures/images/bomb.png --method saliency
expect_error tiff-bomb          "bomb.tif: TIFF of 100000 x 100000 pixels (37.3 GiB decoded) is over the limit" -- "$BIN" explain --model $M --input Tests/Fixtures/images/tiff/bomb.tif --method saliency
expect_ok    tiff-tile          -- "$BIN" explain --model $M --input Tests/Fixtures/images/tiff/rgb-tiled.tif --method saliency "${PRE[@]}"
expect_error not-an-image       "not a PNG, JPEG or TIFF"         -- "$BIN" explain --model $M --input Tests/Fixtures/images/not-an-image.png --method saliency
expect_error wrong-shaped-npy   "wrong.npy"                 -- "$BIN" explain --model $M --input "$TMP/wrong.npy" --method saliency
expect_error short-npy          "short.npy"                 -- "$BIN" explain --model $M --input "$TMP/short.npy" --method saliency
expect_error garbage-npy        "garbage.npy"               -- "$BIN" explain --model $M --input "$TMP/garbage.npy" --method saliency
expect_error int8-npy           "int8.npy: dtype '|i1' is not floating point" -- "$BIN" explain --model $M --input "$TMP/int8.npy" --method saliency
expect_error nan-npy            "nan.npy: 12288 of 12288 values are NaN or infinite" -- "$BIN" explain --model $M --input "$TMP/nan.npy" --method saliency
expect_error nan-npy-infer      "nan.npy: 12288 of 12288 values are NaN or infinite" -- "$BIN" infer --model $M --input "$TMP/nan.npy"
expect_error huge-npy           "huge.npy: shape [1099511627776, 1073741824] has a negative extent or too many elements" -- "$BIN" infer --model $M --input "$TMP/huge.npy"
expect_error npy-over-ceiling   "big.npy: shape [1, 3, 512, 512] needs 3 MiB as float32, over the memory ceiling of 1 MiB (--max-memory)" -- "$BIN" infer --model $M --input "$TMP/big.npy" --max-memory 1M
expect_error unknown-method     "unknown method 'gradcma' (did you mean 'gradcam'?)" -- "$BIN" explain --model $M --input $IMG --method gradcma
expect_error target-range       "--target 7 is out of range" -- "$BIN" explain --model $M --input $IMG --method gradcam --target 7 "${PRE[@]}"
expect_error unknown-layer      "unknown layer 'no_such_layer'" -- "$BIN" explain --model $M --input $IMG --method gradcam --layer no_such_layer "${PRE[@]}"
expect_error ig-steps-range     "integratedgradients: steps must be an integer from 2 to 4096, got '1000000000'" -- "$BIN" explain --model $M --input $IMG --method integratedgradients --set steps=1000000000
expect_error rise-cells-range   "rise: cells 100 exceeds the image's 64 px" -- "$BIN" explain --model $M --input $IMG --method rise --set cells=100 "${PRE[@]}"
expect_error occlusion-stride   "occlusion: stride 300 exceeds the image's 64 px" -- "$BIN" explain --model $M --input $IMG --method occlusion --set stride=3,300,8 "${PRE[@]}"
expect_error lime-nan-segments  "nanseg.npy: segment labels must be integers; pixel 0 (row 0, column 0) is nan" -- "$BIN" explain --model $M --input $IMG --method lime --set segments="$TMP/nanseg.npy" "${PRE[@]}"
expect_error lime-mode          "lime: mode must be one of adaptive, lime, got 'fast'" -- "$BIN" explain --model $M --input $IMG --method lime --set mode=fast "${PRE[@]}"
expect_error rise-paper-stability "rise: stability is the adaptive mode's stopping rule" -- "$BIN" explain --model $M --input $IMG --method rise --set mode=paper --set stability=0.9 "${PRE[@]}"
# LIME and RISE print their own measures: stability, fit, forward passes spent.
expect_ok    lime-stability     -- "$BIN" explain --model $M --input $IMG --method lime --set samples=300 "${PRE[@]}"
check        lime-stability-printed grep -qE "^fit_r2 [0-9.]+, samples [0-9]+, stability [0-9.]+$" "$TMP/out"
expect_error unknown-parameter  "has no parameter 'steps'"  -- "$BIN" explain --model $M --input $IMG --method saliency --set steps=3
expect_error huge-declared-input "huge_input.onnx: the input at batch 1: shape [1, 3, 100000, 100000] needs 111.8 GiB, over the memory ceiling" -- "$BIN" inspect Tests/Fixtures/cli/huge_input.onnx
expect_error huge-constant-shape "(ConstantOfShape): ConstantOfShape: shape [1099511627776, 1073741824] needs more than 2^63 bytes" -- "$BIN" inspect Tests/Fixtures/cli/huge_constant.onnx
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
# Input and output names with '/' and '=' (tf2onnx, optimum): NAME=FILE splits at the last '='.
SLASH=Tests/Fixtures/cli/input_with_slash.onnx
# A fixed-batch export (input [1,3,64,64]) runs the batched methods (docs/engine.md, "Fixed batch").
STATIC=Tests/Fixtures/static/demo_static_batch1.onnx
for method in integratedgradients occlusion; do
  expect_ok "explain-static-batch-$method" -- "$BIN" explain --model $STATIC --input $IMG --method $method "${PRE[@]}" --heatmap "$TMP/static-$method.npy"
done
expect_ok inspect-static-batch -- "$BIN" inspect $STATIC --json
check inspect-static-batch-replanned bash -c "grep -q '\"kind\" : \"replanned\"' '$TMP/out'"
expect_ok infer-slash-name -- "$BIN" infer --model $SLASH --input "input_1/0=$TMP/row3.npy" --out-dir "$TMP/slash"
check infer-slash-output bash -c "grep -q 'output=1: \[1, 3\]' '$TMP/out' && test -s '$TMP/slash/output=1.npy'"
expect_error infer-slash-unknown "no input named 'input_1/1'; its inputs: 'input_1/0'" -- "$BIN" infer --model $SLASH --input "input_1/1=$TMP/row3.npy"
expect_error kernel-unknown "--kernel: unknown path 'sse2'; choose openblas, avx2, avx512" -- "$BIN" infer --model $SLASH --input "$TMP/row3.npy" --kernel sse2
expect_error kernel-set-bad "kernel setting 'winograd': 'maybe' is not on or off" -- "$BIN" infer --model $SLASH --input "$TMP/row3.npy" --kernel-set winograd=maybe
expect_error kernel-set-tile "kernel setting 'winograd-tile': '3' is not 2, 4 or auto" -- "$BIN" infer --model $SLASH --input "$TMP/row3.npy" --kernel-set winograd-tile=3
expect_ok bench-winograd-tile -- "$BIN" bench --model $M --seconds 0.1 --json --kernel-set winograd-tile=4
check bench-winograd-tile-reported bash -c "grep -q 'winograd-tile=4' '$TMP/out'"
expect_error bench-negative-batch "--batch must be 1 to 4096, got -1" -- "$BIN" bench --model $M --batch=-1
for k in $("$BIN" inspect $M --json | python3 -c "import json,sys; print(' '.join(json.load(sys.stdin)['kernel_paths']))"); do
  expect_ok "infer-kernel-$k" -- "$BIN" infer --model $M --input "$TMP/ok.npy" --out "$TMP/y-$k.npy" --kernel $k
done
expect_ok validate-demo -- "$BIN" validate pipelines/demo.yaml --dot "$TMP/plan.dot"
check validate-dot bash -c "grep -q 'digraph' '$TMP/plan.dot' && grep -q '64 items' '$TMP/out'"
expect_ok validate-randomization -- "$BIN" validate pipelines/randomization.yaml
expect_ok validate-trust-review -- "$BIN" validate pipelines/trust-review.yaml

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
# Ctrl-C once the first item is committed: a fixed delay let a release build finish all 12
# items (1.1 s) before the signal came.
wait_for_items "$TMP/slow.sqlite" 0 $runpid
kill -INT $runpid
wait $runpid; rc=$?
check sigint-exit-130 test "$rc" -eq 130
check sigint-status-interrupted bash -c "sqlite3 '$TMP/slow.sqlite' 'select status from runs' | grep -qx interrupted"
done_items=$(items_in "$TMP/slow.sqlite")
check sigint-kept-some-items test "$done_items" -ge 1 -a "$done_items" -lt 12
"$BIN" run "$TMP/slow.yaml" --jobs 2 --db "$TMP/slow.sqlite" --report "$TMP/slow-report" >"$TMP/out" 2>"$TMP/err"; rc=$?
check rerun-completes test "$rc" -eq 0
check rerun-reuses bash -c "grep -q ', $done_items reused from the store' '$TMP/out'"

# --item-timeout: an item past its wall-clock limit stops at its next pass and is a failure row;
# the run goes on to the other items and exits 2 (partial).
"$BIN" run "$TMP/slow.yaml" --jobs 2 --db "$TMP/timeout.sqlite" --item-timeout 0.05 >"$TMP/out" 2>"$TMP/err"; rc=$?
check item-timeout-partial test "$rc" -eq 2
check item-timeout-rows bash -c "test \$(sqlite3 '$TMP/timeout.sqlite' \"select count(*) from failures where message like '%stopped after 0.05 s (--item-timeout)%'\") -eq 12"
expect_error item-timeout-bad "--item-timeout must be a positive number of seconds" -- "$BIN" run "$TMP/slow.yaml" --item-timeout=-1

# Listing runs and exporting CSV.
expect_ok runs-list -- "$BIN" runs --db "$TMP/slow.sqlite"
check runs-shows-both bash -c "grep -c 'slow' '$TMP/out' | grep -qx 2 && grep -q interrupted '$TMP/out' && grep -q complete '$TMP/out'"
expect_ok export-csv -- "$BIN" export --db "$TMP/slow.sqlite" --out "$TMP/run.csv"
check export-rows bash -c "head -1 '$TMP/run.csv' | grep -q '^run,path,label,predicted,probability,explainer,method,target,seconds,dataset,model' && test \$(wc -l < '$TMP/run.csv') -eq 13"
expect_error export-bad-format "--format: csv, jsonl or geojson, got 'xml'" -- "$BIN" export --db "$TMP/slow.sqlite" --format xml
expect_ok export-jsonl -- "$BIN" export --db "$TMP/slow.sqlite" --format jsonl --arrays "$TMP/arrays" --out "$TMP/run.jsonl"
check export-jsonl-rows python3 - "$TMP/run.jsonl" "$TMP/arrays" "$TMP/run.csv" <<'PY'
import csv, json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
table = list(csv.DictReader(open(sys.argv[3])))
assert len(rows) == len(table) == 12, (len(rows), len(table))
for r in rows:
    assert {"run", "path", "explainer", "model", "metrics", "array"} <= set(r), r
    data = open(os.path.join(sys.argv[2], r["array"]), "rb").read()
    assert data[:6] == b"\x93NUMPY", r["array"]
# The same rows as the CSV, key by key.
key = lambda d: (d["path"], d["model"], d["explainer"])
assert sorted(map(key, rows)) == sorted(map(key, table))
PY
# CSV injection (OWASP): a label that a spreadsheet would run as a formula is written as text.
printf 'path,label\n%s,=HYPERLINK("http://x")\n' "$ROOT/datasets/demo/images/slide_000.png" > "$TMP/formula.csv"
cat > "$TMP/formula.yaml" <<YAML
pipeline: formula
datasets:
  d: {csv: formula.csv}
models:
  m: {onnx: $ROOT/models/demo.onnx, classes: [normal, abnormal], preprocessing: {size: [64, 64]}}
explainers:
  cam: {method: gradcam}
stages:
  explain: {kind: explain}
YAML
"$BIN" run "$TMP/formula.yaml" --db "$TMP/formula.sqlite" >/dev/null 2>&1
expect_ok export-formula -- "$BIN" export --db "$TMP/formula.sqlite" --out "$TMP/formula-out.csv"
check export-csv-injection-safe python3 -c "import csv,sys; r = list(csv.DictReader(open(sys.argv[1]))); assert r[0]['label'] == \"'=HYPERLINK(\\\"http://x\\\")\", r" "$TMP/formula-out.csv"
# JSON Lines escape what they carry (quotes here) and are not spreadsheets: the label as it is.
expect_ok export-formula-jsonl -- "$BIN" export --db "$TMP/formula.sqlite" --format jsonl --out "$TMP/formula-out.jsonl"
check export-jsonl-escaped python3 -c "import json,sys; r = [json.loads(l) for l in open(sys.argv[1])]; assert r[0]['label'] == '=HYPERLINK(\"http://x\")' and isinstance(r[0]['probability'], float) and r[0]['run'] == 1, r" "$TMP/formula-out.jsonl"
expect_error runs-missing-db "/no/such.sqlite" -- "$BIN" runs --db /no/such.sqlite

# Never delete what Candela did not write: a folder of someone else's files is refused (before
# any item runs); --force writes beside them and deletes none; a report folder is rewritten and
# only its own unused files go.
mkdir -p "$TMP/user-folder/images"
echo "mine" > "$TMP/user-folder/notes.txt"; echo "mine" > "$TMP/user-folder/images/slide.png"
echo "mine" > "$TMP/user-folder/gallery-old.html"
expect_error report-refuses-foreign "user-folder: the report folder holds 3 files that Candela did not write" -- \
  "$BIN" report --db "$TMP/slow.sqlite" --out "$TMP/user-folder"
expect_error run-refuses-foreign "user-folder: the report folder holds 3 files that Candela did not write" -- \
  "$BIN" run "$TMP/slow.yaml" --jobs 1 --db "$TMP/refused.sqlite" --report "$TMP/user-folder"
check run-refused-before-items test "$(items_in "$TMP/refused.sqlite")" -eq 0
expect_ok report-force -- "$BIN" report --db "$TMP/slow.sqlite" --out "$TMP/user-folder" --force
check report-force-kept-files bash -c "test \"\$(cat '$TMP/user-folder/notes.txt' '$TMP/user-folder/images/slide.png' '$TMP/user-folder/gallery-old.html')\" = \"\$(printf 'mine\nmine\nmine')\""
check report-force-wrote test -s "$TMP/user-folder/index.html" -a -s "$TMP/user-folder/.candela-report.json"
expect_ok report-rewrite -- "$BIN" report --db "$TMP/slow.sqlite" --out "$TMP/user-folder" --page-size 5
check report-rewrite-kept-files test -s "$TMP/user-folder/notes.txt" -a -s "$TMP/user-folder/images/slide.png" -a -s "$TMP/user-folder/gallery-old.html"
# A report written before .candela-report.json existed (only the report's own names) is adopted;
# a folder of a user's images named otherwise is not.
expect_ok report-legacy-first -- "$BIN" report --db "$TMP/slow.sqlite" --out "$TMP/legacy"
rm "$TMP/legacy/.candela-report.json"; echo old > "$TMP/legacy/images/0123456789abcdef.jpg"
expect_ok report-legacy-adopted -- "$BIN" report --db "$TMP/slow.sqlite" --out "$TMP/legacy"
check report-legacy-stale-removed test ! -e "$TMP/legacy/images/0123456789abcdef.jpg" -a -s "$TMP/legacy/.candela-report.json"
mkdir -p "$TMP/photos/images"; echo mine > "$TMP/photos/images/slide_001.png"
expect_error report-refuses-photos "photos: the report folder holds 1 files that Candela did not write" -- "$BIN" report --db "$TMP/slow.sqlite" --out "$TMP/photos"
check report-photos-kept test -s "$TMP/photos/images/slide_001.png"

# The store defends itself: another program's SQLite file, a file that is not SQLite and a
# truncated store are refused and left as they were; a second writer gets the first one's pid.
sqlite3 "$TMP/foreign.sqlite" "create table notes(x); insert into notes values ('mine');"
cp "$TMP/foreign.sqlite" "$TMP/foreign.before"
expect_error store-foreign "foreign.sqlite: not a Candela store" -- "$BIN" run "$TMP/slow.yaml" --db "$TMP/foreign.sqlite"
check store-foreign-untouched cmp -s "$TMP/foreign.sqlite" "$TMP/foreign.before"
echo "my text" > "$TMP/text.sqlite"
expect_error store-not-sqlite "text.sqlite: not a Candela store" -- "$BIN" runs --db "$TMP/text.sqlite"
check store-not-sqlite-untouched test "$(cat "$TMP/text.sqlite")" = "my text"
sqlite3 "$TMP/slow.sqlite" "pragma wal_checkpoint(truncate)" >/dev/null
head -c $(( $(stat -c %s "$TMP/slow.sqlite") / 2 )) "$TMP/slow.sqlite" > "$TMP/trunc.sqlite"
expect_error store-truncated "trunc.sqlite: " -- "$BIN" report --db "$TMP/trunc.sqlite" --out "$TMP/trunc-report"
check store-truncated-no-report test ! -e "$TMP/trunc-report/index.html"
"$BIN" run "$TMP/slow.yaml" --jobs 1 --db "$TMP/busy.sqlite" >/dev/null 2>&1 &
busypid=$!
wait_for_items "$TMP/busy.sqlite" 0 $busypid
expect_error store-second-writer "busy.sqlite: store in use by pid $busypid" -- "$BIN" run "$TMP/slow.yaml" --jobs 1 --db "$TMP/busy.sqlite" --resume
kill -9 $busypid 2>/dev/null; wait $busypid 2>/dev/null
check report-rewrite-own-files bash -c "for f in \$(python3 -c \"import json; print(' '.join(json.load(open('$TMP/user-folder/.candela-report.json'))['files']))\"); do test -e '$TMP/user-folder/'\$f || exit 1; done"

# inspect: shapes, parameters and FLOPs, against the demo net counted by hand (models/demo.md):
# 16*64*64*27 (conv 3->16) + 32*32*32*144 (conv 16->32) + 2 * 32*16*16*288 (residual convs)
# + 64*16*16*288 (conv 32->64) + 64*2 (fc) = 15,925,376 MACs; 42,386 weights plus 352
# BatchNorm running statistics.
expect_ok inspect-demo -- "$BIN" inspect $M --nodes
check inspect-flops grep -q "(15925376 multiply-accumulates)" "$TMP/out"
check inspect-params grep -q "^parameters: 42738$" "$TMP/out"
check inspect-node-shapes grep -q "Conv  -> \[1,16,64,64\]" "$TMP/out"
check inspect-fusions grep -q "^optimized graph: 12 nodes; fused in inference passes: residual Add 1, expansion + depthwise 0, SiLU 0, BatchNormalization + Relu 0$" "$TMP/out"
# bench --layers: the slowest nodes with their rate, then the time per operator type.
expect_ok bench-layers -- "$BIN" bench --model $M --seconds 0.2 --layers 3
check bench-layers-nodes grep -qE "^ +[0-9.]+ ms +[0-9.]+%  Conv  .* -> 1x[0-9x]+  [0-9]+ GFLOP/s$" "$TMP/out"
check bench-layers-count test "$(grep -c " ms .*% " "$TMP/out")" -ge 4
check bench-layers-operators grep -q "^per operator:$" "$TMP/out"
expect_error bench-layers-negative "--layers must be 0 or more" -- "$BIN" bench --model $M --layers=-2
expect_error bench-layers-json     "leave out --json"             -- "$BIN" bench --model $M --layers 3 --json
# bench --rounds-from-stdin (bench_vs_ort.py's protocol): ready, then one JSON line per line of
# seconds; a line that is not a number is an error naming it; the flag excludes --json.
printf '0.05\n0.05\n' >"$TMP/rounds"
expect_ok bench-rounds -- "$BIN" bench --model $M --rounds-from-stdin --threads 1 <"$TMP/rounds"
check bench-rounds-lines test "$(head -1 "$TMP/out")" = '{"ready": true}' -a "$(grep -c '"ms_per_image": [0-9.e-]*}$' "$TMP/out")" -eq 2
printf '0.05\nsoon\n' >"$TMP/rounds"
expect_error bench-rounds-bad "line 2: expected a number of seconds, got \"soon\"" -- "$BIN" bench --model $M --rounds-from-stdin <"$TMP/rounds"
expect_error bench-rounds-json "leave out --layers and --json" -- "$BIN" bench --model $M --rounds-from-stdin --json
# With --method each round times whole explanations (at least one per round).
printf '0.01\n0.01\n' >"$TMP/rounds"
expect_ok bench-rounds-method -- "$BIN" bench --model $M --method saliency --rounds-from-stdin --threads 1 <"$TMP/rounds"
check bench-rounds-method-lines test "$(grep -c '"iterations": [1-9][0-9]*, .*"ms_per_image": [0-9.e-]*}$' "$TMP/out")" -eq 2
# The binary runs itself again with its malloc tunables (large blocks from the heap, and
# glibc.malloc.hugetlb=1 where the kernel's policy is "madvise", this machine's), not with
# CANDELA_HUGE_PAGES=0; a user's own tunables are kept.
expect_ok bench-heap-blocks -- env GLIBC_TUNABLES=glibc.malloc.check=0 "$BIN" bench --model $M --seconds 0.2 --json
check bench-heap-blocks-on grep -q '"malloc_heap_blocks": true' "$TMP/out"
expect_ok bench-heap-blocks-off -- env CANDELA_HUGE_PAGES=0 "$BIN" bench --model $M --seconds 0.2 --json
check bench-heap-blocks-off-json grep -q '"malloc_heap_blocks": false' "$TMP/out"
if grep -q "\[madvise\]" /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
  expect_ok bench-huge-pages -- env GLIBC_TUNABLES=glibc.malloc.check=0 "$BIN" bench --model $M --seconds 0.2 --json
  check bench-huge-pages-on grep -q '"huge_pages": true' "$TMP/out"
  expect_ok bench-huge-pages-off -- env CANDELA_HUGE_PAGES=0 "$BIN" bench --model $M --seconds 0.2 --json
  check bench-huge-pages-off-json grep -q '"huge_pages": false' "$TMP/out"
fi

# Bad manifests: each is one line with file:line:column.
base_manifest() { cat <<YAML
pipeline: bad
datasets:
  d: {csv: $ROOT/datasets/demo/labels.csv, limit: 4}
models:
  m:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64]}
explainers:
  cam: {method: gradcam}
stages:
  predict: {kind: predict}
  explain: {kind: explain, explainers: [cam]}
YAML
}
base_manifest | sed 's/  cam: {method: gradcam}/  cam: {methd: gradcam}/' > "$TMP/typo.yaml"
expect_error manifest-typo "typo.yaml:10:9: unknown key 'methd' in explainer 'cam' (did you mean 'method'?)" -- "$BIN" validate "$TMP/typo.yaml"
base_manifest | sed 's/limit: 4/limit: four/' > "$TMP/type.yaml"
expect_error manifest-wrong-type "type.yaml:3:" -- "$BIN" validate "$TMP/type.yaml"
base_manifest | sed 's#datasets/demo/labels.csv#datasets/demo/nope.csv#' > "$TMP/missing.yaml"
expect_error manifest-missing-file "datasets/demo/nope.csv: cannot read dataset CSV" -- "$BIN" validate "$TMP/missing.yaml"
base_manifest | sed 's/  predict: {kind: predict}/  predict: {kind: predict, needs: [explain]}/' > "$TMP/cycle.yaml"
expect_error manifest-cycle "the stages form a cycle" -- "$BIN" validate "$TMP/cycle.yaml"
base_manifest | sed 's/explainers: \[cam\]/explainers: [cma]/' > "$TMP/unknown.yaml"
expect_error manifest-unknown-explainer "uses explainer 'cma', which is not defined under explainers: (did you mean 'cam'?)" -- "$BIN" validate "$TMP/unknown.yaml"
base_manifest | sed 's/  cam: {method: gradcam}/  cam: {method: gradcm}/' > "$TMP/method.yaml"
expect_error manifest-unknown-method "unknown method 'gradcm' (did you mean 'gradcam'?)" -- "$BIN" validate "$TMP/method.yaml"

# What a run leaves out is said, not silent, at the line that defines it: a model no stage
# covers, an explainer no stage runs, a dataset without images (an empty folder or pattern was
# already an error; a CSV of no rows too).
base_manifest | sed 's/^explainers:/  spare:\n    onnx: $ROOT\/models\/demo-vgg.onnx\n    classes: [normal, abnormal]\n    preprocessing: {size: [64, 64]}\nexplainers:\n  unused: {method: saliency}/' \
  | sed 's/{kind: predict}/{kind: predict, model: m}/; s/explainers: \[cam\]}/explainers: [cam], model: [m]}/' > "$TMP/spare.yaml"
sed -i "s#\$ROOT#$ROOT#g" "$TMP/spare.yaml"
expect_ok manifest-spare-validates -- "$BIN" validate "$TMP/spare.yaml"
check manifest-spare-model-warned grep -q "warning: .*spare.yaml:9:3: model 'spare' is not run: no predict or explain stage covers it" "$TMP/err"
check manifest-unused-explainer-warned grep -q "warning: .*spare.yaml:14:3: explainer 'unused' is not run: no explain stage names it" "$TMP/err"
base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam], model: n}/' > "$TMP/nomodel.yaml"
expect_error manifest-stage-unknown-model "nomodel.yaml:13:54: no model named 'n'" -- "$BIN" validate "$TMP/nomodel.yaml"
base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam]}\n  evaluate: {kind: evaluate, metrics: [pointing_game], model: m}/' > "$TMP/evalmodel.yaml"
expect_error manifest-evaluate-model "evalmodel.yaml:14:63: stage 'evaluate': model applies to predict and explain stages only" -- "$BIN" validate "$TMP/evalmodel.yaml"
echo "path,label" > "$TMP/empty.csv"
base_manifest | sed "s#csv: $ROOT/datasets/demo/labels.csv, limit: 4#csv: $TMP/empty.csv#" > "$TMP/empty.yaml"
expect_error manifest-empty-dataset "empty.yaml:3:3: dataset 'd' has no images" -- "$BIN" validate "$TMP/empty.yaml"
expect_error run-empty-dataset "empty.yaml:3:3: dataset 'd' has no images" -- "$BIN" run "$TMP/empty.yaml" --db "$TMP/empty.sqlite"

# Gates: a failed gate exits 3 with a printed verdict, stored in the store.
{ base_manifest; cat <<YAML
  evaluate: {kind: evaluate, metrics: [pointing_game]}
gates:
  no-failures: {metric: failures, max: 0}
  cam-points: {metric: pointing_game, explainer: cam, min: 1.01}
YAML
} > "$TMP/gates.yaml"
"$BIN" run "$TMP/gates.yaml" --jobs 2 --db "$TMP/gates.sqlite" >"$TMP/out" 2>"$TMP/err"; rc=$?
check gate-fail-exit-3 test "$rc" -eq 3
check gate-verdict-printed bash -c "grep -q 'gate no-failures: failures = 0 (needs <= 0): PASS' '$TMP/out' && grep -q 'gate cam-points: pointing_game of cam = .* (needs >= 1.01): FAIL' '$TMP/out' && grep -q 'verdict: FAIL (1 of 2 gates failed)' '$TMP/out'"
check gate-stored bash -c "sqlite3 '$TMP/gates.sqlite' 'select name, passed from gate_results order by name' | tr '\n' ' ' | grep -qx 'cam-points|0 no-failures|1 '"
sed 's/min: 1.01/min: 0.0/' "$TMP/gates.yaml" > "$TMP/gates-ok.yaml"
expect_ok gate-pass-exit-0 -- "$BIN" run "$TMP/gates-ok.yaml" --jobs 2 --db "$TMP/gates.sqlite"
check gate-pass-verdict grep -q 'verdict: PASS (2 gates)' "$TMP/out"
sed 's/cam-points: {metric: pointing_game, explainer: cam, min: 1.01}/cam-points: {metric: pointing_game, min: 0.5}/' "$TMP/gates.yaml" > "$TMP/gates-bad.yaml"
expect_error gate-needs-explainer "gate 'cam-points': metric 'pointing_game' is per explainer; add explainer: NAME" -- "$BIN" validate "$TMP/gates-bad.yaml"

# A path listed twice: the second copy is a failure row ("cannot store"), the rest are stored.
{ echo "path,label"; for i in 000 001 000 002; do echo "$ROOT/datasets/demo/images/slide_$i.png,normal"; done; } > "$TMP/dup.csv"
sed "s#csv: $ROOT/datasets/demo/labels.csv, limit: 4#csv: $TMP/dup.csv#" "$TMP/gates-ok.yaml" | sed '/^gates:/,$d' > "$TMP/dup.yaml"
"$BIN" run "$TMP/dup.yaml" --jobs 2 --db "$TMP/dup.sqlite" >"$TMP/out" 2>"$TMP/err"; rc=$?
check duplicate-path-partial test "$rc" -eq 2
check duplicate-path-stored bash -c "test \$(sqlite3 '$TMP/dup.sqlite' 'select count(*) from items') -eq 3 && sqlite3 '$TMP/dup.sqlite' 'select message from failures' | grep -q 'UNIQUE'"

# Everything that can change a result is in the cache key: new weights in an external data
# file, or a new baseline file, recompute the heatmaps they touch; an unchanged rerun reuses all.
mkdir -p "$TMP/ext"
cp Tests/Fixtures/static/demo_external.onnx Tests/Fixtures/static/demo_external.bin "$TMP/ext/"
python3 -c "
import struct
h = \"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 64, 64), }\"
h += ' ' * ((64 - (10 + len(h) + 1) % 64) % 64) + '\\n'
for name, v in (('zero', 0.0), ('grey', 0.5)):
    open('$TMP/baseline-' + name + '.npy', 'wb').write(b'\\x93NUMPY\\x01\\x00' + struct.pack('<H', len(h)) + h.encode() + struct.pack('<f', v) * 12288)
"
cp "$TMP/baseline-zero.npy" "$TMP/baseline.npy"
cat > "$TMP/ext.yaml" <<YAML
pipeline: ext
datasets:
  d: {csv: $ROOT/datasets/demo/labels.csv, limit: 3}
models:
  m:
    onnx: $TMP/ext/demo_external.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
explainers:
  sal: {method: saliency}
  ig: {method: integratedgradients, params: {steps: 4, baseline: $TMP/baseline.npy}}
stages:
  predict: {kind: predict}
  explain: {kind: explain}
YAML
expect_ok cache-first -- "$BIN" run "$TMP/ext.yaml" --jobs 1 --db "$TMP/ext.sqlite"
check cache-first-computed grep -q "6 heatmaps computed, 0 reused" "$TMP/out"
expect_ok cache-same -- "$BIN" run "$TMP/ext.yaml" --jobs 1 --db "$TMP/ext.sqlite"
check cache-same-reused grep -q "0 heatmaps computed, 6 reused" "$TMP/out"
cp "$TMP/baseline-grey.npy" "$TMP/baseline.npy"
expect_ok cache-new-baseline -- "$BIN" run "$TMP/ext.yaml" --jobs 1 --db "$TMP/ext.sqlite"
check cache-new-baseline-recomputed grep -q "3 heatmaps computed, 3 reused" "$TMP/out"
cp Tests/Fixtures/static/demo_external.other.bin "$TMP/ext/demo_external.bin"
expect_ok cache-new-weights -- "$BIN" run "$TMP/ext.yaml" --jobs 1 --db "$TMP/ext.sqlite"
check cache-new-weights-recomputed grep -q "6 heatmaps computed, 0 reused" "$TMP/out"
# External data is read only inside the model's folder: a symbolic link out of it is refused.
mkdir -p "$TMP/linked"
cp Tests/Fixtures/static/demo_external.onnx "$TMP/linked/"
ln -sf "$TMP/ext/demo_external.bin" "$TMP/linked/demo_external.bin"
expect_error external-symlink-out "resolves to $TMP/ext/demo_external.bin, outside the model's folder" -- "$BIN" inspect "$TMP/linked/demo_external.onnx"

# A store kept inside the report folder: the folder is marked as Candela's before the store is
# made, so the report is written and the store left alone.
expect_ok report-folder-holds-store -- "$BIN" run "$TMP/ext.yaml" --jobs 2 --db "$TMP/inside/run.sqlite" --report "$TMP/inside"
check report-folder-store-kept test -s "$TMP/inside/index.html" -a -s "$TMP/inside/run.sqlite"

# Kill -9 at random moments five times, resuming each time: the final store equals an
# uninterrupted run's (same heatmap bytes per item, explainer and target; no duplicates, none missing).
cat > "$TMP/kill.yaml" <<YAML
pipeline: kill
datasets:
  d: {csv: $ROOT/datasets/demo/labels.csv, limit: 16}
models:
  m:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
explainers:
  # Heavy enough (about 1 item/s in the debug build) that five kills land before the run ends.
  ig: {method: integratedgradients, params: {steps: 160}}
  cam: {method: gradcam}
  saliency: {method: saliency}
stages:
  predict: {kind: predict}
  explain: {kind: explain}
  evaluate: {kind: evaluate, metrics: [pointing_game]}
YAML
export -f rows metric_rows
"$BIN" run "$TMP/kill.yaml" --jobs 2 --db "$TMP/reference.sqlite" >/dev/null 2>&1
rows "$TMP/reference.sqlite" > "$TMP/reference.rows"; metric_rows "$TMP/reference.sqlite" > "$TMP/reference.metrics"
check reference-run-rows test "$(wc -l < "$TMP/reference.rows")" -eq 48
kills=0
for round in 1 2 3 4 5; do
  before=$(items_in "$TMP/killed.sqlite")
  "$BIN" run "$TMP/kill.yaml" --jobs 2 --resume --db "$TMP/killed.sqlite" >/dev/null 2>&1 &
  pid=$!
  # Let the run commit at least one more item (or 20 s pass), then kill it a random 0-0.8 s later:
  # a random moment, usually in the middle of an item.
  wait_for_items "$TMP/killed.sqlite" "$before" $pid
  sleep "0.$((RANDOM % 9))"
  kill -9 $pid 2>/dev/null && kills=$((kills+1))
  wait $pid 2>/dev/null
done
pre_final=$(items_in "$TMP/killed.sqlite")
echo "  killed $kills times; committed items before the last resume: $pre_final of 16"
"$BIN" run "$TMP/kill.yaml" --jobs 2 --resume --db "$TMP/killed.sqlite" >"$TMP/out" 2>"$TMP/err"; rc=$?
# (Fewer than 16 items before the last resume: the kills interrupted the run, it did not finish first.)
check resume-killed-mid-run test "$kills" -ge 3 -a "$pre_final" -ge 1 -a "$pre_final" -lt 16
check resume-completes test "$rc" -eq 0
check resume-same-rows bash -c "diff <(rows '$TMP/killed.sqlite') '$TMP/reference.rows' >/dev/null"
check resume-same-metrics bash -c "diff <(metric_rows '$TMP/killed.sqlite') '$TMP/reference.metrics' >/dev/null"
check resume-no-duplicates bash -c "test \$(sqlite3 '$TMP/killed.sqlite' 'select count(*) from items where run_id = (select max(id) from runs)') -eq 16"
check resume-one-complete-run bash -c "sqlite3 '$TMP/killed.sqlite' \"select count(*) from runs where status = 'complete'\" | grep -qx 1"

# Three shards, merged, equal a single run.
for k in 1 2 3; do
  "$BIN" run "$TMP/kill.yaml" --jobs 2 --shard $k/3 --db "$TMP/shard$k.sqlite" >/dev/null 2>&1 || echo "  shard $k failed"
done
check shards-split-items bash -c "test \$(sqlite3 '$TMP/shard1.sqlite' 'select count(*) from items') -eq 6 && test \$(sqlite3 '$TMP/shard3.sqlite' 'select count(*) from items') -eq 5"
expect_ok merge-shards -- "$BIN" merge --out "$TMP/merged.sqlite" "$TMP/shard1.sqlite" "$TMP/shard2.sqlite" "$TMP/shard3.sqlite"
check merge-same-rows bash -c "diff <(rows '$TMP/merged.sqlite') '$TMP/reference.rows' >/dev/null"
check merge-same-metrics bash -c "diff <(metric_rows '$TMP/merged.sqlite') '$TMP/reference.metrics' >/dev/null"
expect_error merge-twice "is already in the merged run (two shards hold it)" -- "$BIN" merge --out "$TMP/merged2.sqlite" "$TMP/shard1.sqlite" "$TMP/shard1.sqlite"
expect_error merge-other-pipeline "merge shards of one manifest" -- "$BIN" merge --out "$TMP/merged3.sqlite" "$TMP/shard1.sqlite" "$TMP/gates.sqlite"
expect_error shard-bad "--shard expects K/N" -- "$BIN" run "$TMP/kill.yaml" --shard 4

# Slides (docs/slides.md): a synthetic slide written by Candela, read back through OpenSlide.
expect_ok make-slide -- "$BIN" make-slide --out "$TMP/s.svs" --width 1536 --height 768 --pieces 1 --lesions 3 --seed 5 --annotation "$TMP/s.geojson"
check make-slide-files test -s "$TMP/s.svs" -a -s "$TMP/s.geojson"
expect_error make-slide-piece-too-big "--piece-size 9000x300 does not fit: each of the 2 pieces has a slot of 768x768 pixels" -- "$BIN" make-slide --out "$TMP/t.svs" --width 1536 --height 768 --pieces 2 --piece-size 9000x300
expect_error make-slide-piece-size-text "--piece-size: expected WxH in pixels, e.g. 8000x2400, got 'big'" -- "$BIN" make-slide --out "$TMP/t.svs" --piece-size big
expect_error make-slide-blur-text "--blur: expected X,Y,W,H in level-0 pixels, e.g. 0,0,2048,1024, got '1,2,3'" -- "$BIN" make-slide --out "$TMP/t.svs" --blur 1,2,3
printf 'path,label,annotation\ns.svs,abnormal,s.geojson\n' > "$TMP/slides.csv"
cat > "$TMP/slides.yaml" <<YAML
pipeline: slides
datasets:
  b: {kind: slides, csv: slides.csv, mpp: 0.5, tile: 64, tissue_mpp: 4, min_piece_area: 10000, aggregate: {rule: top_k_mean, k: 2}}
models:
  m:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
explainers:
  # Heavy enough in the debug build that the kills below land mid-slide.
  ig: {method: integratedgradients, params: {steps: 120}}
  cam: {method: gradcam}
stages:
  explain: {kind: explain}
  evaluate: {kind: evaluate, metrics: [pointing_game]}
YAML
expect_ok slides-validate -- "$BIN" validate "$TMP/slides.yaml"
check slides-validate-header grep -q "slide $TMP/s.svs: aperio, 1536x768, .* 0.25 µm/px, .* in 1 pieces, [0-9]* tiles" "$TMP/out"
slide_rows() { sqlite3 "$1" "select i.path, a.explainer, hex(a.heatmap), a.heat_low, a.heat_high, p.probabilities
  from attributions a join items i on i.id = a.item_id join predictions p on p.item_id = i.id
  where i.run_id = (select max(id) from runs) order by i.path, a.explainer;
  select v.piece, v.score, v.class_name from slide_verdicts v join slides s on s.id = v.slide_id where s.run_id = (select max(id) from runs);
  select h.explainer, h.width, h.height, hex(h.heatmap) from slide_heatmaps h join slides s on s.id = h.slide_id
  where s.run_id = (select max(id) from runs) order by 1"; }
export -f slide_rows
"$BIN" run "$TMP/slides.yaml" --jobs 2 --db "$TMP/slides-ref.sqlite" >/dev/null 2>&1
slide_rows "$TMP/slides-ref.sqlite" > "$TMP/slides-ref.rows"
tiles=$(sqlite3 "$TMP/slides-ref.sqlite" "select tiles from slides")
check slides-run-tiles bash -c "test '$tiles' -ge 8 && test \$(sqlite3 '$TMP/slides-ref.sqlite' 'select count(*) from items') -eq '$tiles'"
check slides-verdict-abnormal bash -c "sqlite3 '$TMP/slides-ref.sqlite' 'select class_name from slide_verdicts where piece = 0' | grep -qx abnormal"
# Killed three times mid-slide and resumed: the same tiles, heatmaps, verdicts and stitched maps.
for round in 1 2 3; do
  before=$(items_in "$TMP/slides-killed.sqlite")
  "$BIN" run "$TMP/slides.yaml" --jobs 2 --resume --db "$TMP/slides-killed.sqlite" >/dev/null 2>&1 &
  pid=$!
  wait_for_items "$TMP/slides-killed.sqlite" "$before" $pid
  sleep "0.$((RANDOM % 5))"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
done
slides_before=$(items_in "$TMP/slides-killed.sqlite")
expect_ok slides-resume -- "$BIN" run "$TMP/slides.yaml" --jobs 2 --resume --db "$TMP/slides-killed.sqlite"
check slides-resume-was-mid-slide test "$slides_before" -lt "$tiles"
check slides-resume-same-store bash -c "diff <(slide_rows '$TMP/slides-killed.sqlite') '$TMP/slides-ref.rows' >/dev/null"
# One slide from the command line, and the files it writes.
expect_ok slide-command -- "$BIN" slide --model $ROOT/models/demo.onnx --slide "$TMP/s.svs" --mpp 0.5 --method gradcam \
  --tissue-mpp 4 --min-piece-area 10000 --classes normal,abnormal --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25 --out "$TMP/one"
check slide-command-files test -s "$TMP/one/tiles.csv" -a -s "$TMP/one/verdict.json" -a -s "$TMP/one/tissue.png" -a -s "$TMP/one/gradcam.npy" -a -s "$TMP/one/heatmaps.json"
check slide-command-tiles bash -c "head -1 '$TMP/one/tiles.csv' | grep -qx 'x,y,width,height,tissue,piece,p_normal,p_abnormal' && test \$(wc -l < '$TMP/one/tiles.csv') -eq \$(( $tiles + 1 ))"
check slide-command-npy python3 -c "
import json, struct, sys
h = json.load(open('$TMP/one/heatmaps.json'))
data = open('$TMP/one/gradcam.npy', 'rb').read()
n = struct.unpack('<H', data[8:10])[0]
header = data[10:10 + n].decode()
assert \"'shape': (%d, %d)\" % (h['height'], h['width']) in header, header
assert h['micrometres_per_pixel'] == 8 and h['level0_pixels_per_pixel'] == 32
"
mkdir -p "$TMP/foreign" && echo keep > "$TMP/foreign/notes.txt"
expect_error slide-command-foreign-folder "foreign: the folder is not empty and was not written by 'candela slide'" -- \
  "$BIN" slide --model $ROOT/models/demo.onnx --slide "$TMP/s.svs" --mpp 0.5 --out "$TMP/foreign"
check slide-command-foreign-kept grep -qx keep "$TMP/foreign/notes.txt"
# QuPath GeoJSON of the slide run: every feature a closed polygon inside the slide, tiles with
# every class's probability, the tissue piece traced on the mask; read back as annotations.
# The doctor's slide page warns about pen marks (the share the tissue detector measured, set here in a copy).
cp "$TMP/slides-ref.sqlite" "$TMP/pen.sqlite"
sqlite3 "$TMP/pen.sqlite" "update slides set pen_fraction = 0.023"
expect_ok report-pen -- "$BIN" report --db "$TMP/pen.sqlite" --out "$TMP/pen-report"
"$BIN" report --db "$TMP/slides-ref.sqlite" --out "$TMP/nopen-report" >/dev/null 2>&1
check doctor-pen-warning bash -c "grep -q 'Pen marks cover 2.3% of the slide' '$TMP'/pen-report/doctor/slide-*.html && test -s \$(ls '$TMP'/nopen-report/doctor/slide-*.html | head -1) && ! grep -q 'Pen marks' '$TMP'/nopen-report/doctor/slide-*.html"
# Focus: every tile's sharpness is stored; a quarter of the tiles made blurry (in a copy) warns.
check tiles-sharpness-stored test "$(sqlite3 "$TMP/slides-ref.sqlite" "select count(*) from items where slide_path is not null and sharpness > 0")" = "$tiles"
cp "$TMP/slides-ref.sqlite" "$TMP/blur.sqlite"
sqlite3 "$TMP/blur.sqlite" "update items set sharpness = sharpness / 100 where id % 4 = 0"
"$BIN" report --db "$TMP/blur.sqlite" --out "$TMP/blur-report" >/dev/null 2>&1
check doctor-blur-warning bash -c "grep -q 'of the tissue is out of focus' '$TMP'/blur-report/doctor/slide-*.html && ! grep -q 'out of focus (' '$TMP'/nopen-report/doctor/slide-*.html && grep -q 'Focus: [0-9]* of $tiles tiles out of focus' '$TMP'/nopen-report/slides/*.html"
expect_ok export-geojson -- "$BIN" export --db "$TMP/slides-ref.sqlite" --format geojson --out "$TMP/qupath"
check export-geojson-valid python3 - "$TMP/qupath" "$tiles" <<'PY'
import glob, json, sys
files = glob.glob(sys.argv[1] + "/*.geojson")
assert len(files) == 1, files
fc = json.load(open(files[0]))
assert fc["type"] == "FeatureCollection"
tiles = [f for f in fc["features"] if f["properties"]["objectType"] == "detection"]
pieces = [f for f in fc["features"] if f["properties"]["objectType"] == "annotation"]
assert len(tiles) == int(sys.argv[2]) and len(pieces) == 1, (len(tiles), len(pieces))
for f in fc["features"]:
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
    for ring in f["geometry"]["coordinates"]:
        assert len(ring) >= 4 and ring[0] == ring[-1]
        assert all(0 <= x <= 1536 and 0 <= y <= 768 for x, y in ring), ring
    c = f["properties"]["classification"]
    assert c["name"] in ("normal", "abnormal") and len(c["color"]) == 3
for t in tiles:
    m = t["properties"]["measurements"]
    assert abs(m["p_normal"] + m["p_abnormal"] - 1) < 1e-6 and "cam mean relevance" in m and "ig mean relevance" in m
assert pieces[0]["properties"]["classification"]["name"] == "abnormal"
PY

# Files OpenSlide cannot read: one line naming the file.
echo "not a slide" > "$TMP/text.svs"
printf 'path,label\ntext.svs,normal\n' > "$TMP/bad-slides.csv"
sed 's/csv: slides.csv/csv: bad-slides.csv/' "$TMP/slides.yaml" > "$TMP/bad-slides.yaml"
expect_error slides-unreadable "text.svs: not a slide OpenSlide can read" -- "$BIN" validate "$TMP/bad-slides.yaml"
expect_error slide-command-unreadable "text.svs: not a slide OpenSlide can read" -- \
  "$BIN" slide --model $ROOT/models/demo.onnx --slide "$TMP/text.svs" --out "$TMP/unreadable"
sed 's/aggregate: {rule: top_k_mean, k: 2}/aggregate: {rule: median}/' "$TMP/slides.yaml" > "$TMP/bad-rule.yaml"
expect_error slides-bad-rule "unknown aggregation rule 'median'; rules: mean, max, top_k_mean, positive_fraction" -- "$BIN" validate "$TMP/bad-rule.yaml"

# One explainer, one target; one model, one file.
base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam]}\n  explain-label: {kind: explain, explainers: [cam], target: label}/' > "$TMP/two-targets.yaml"
expect_error explainer-two-targets "two-targets.yaml:14:18: explainer 'cam' has target predicted in stage 'explain' and label in stage 'explain-label'" -- "$BIN" validate "$TMP/two-targets.yaml"
base_manifest | sed "s#^explainers:#  m2: {onnx: $ROOT/models/demo.onnx, classes: [normal, abnormal], preprocessing: {size: [64, 64]}}\nexplainers:#" > "$TMP/same-file.yaml"
expect_error models-same-file "models 'm' and 'm2' name the same file $ROOT/models/demo.onnx" -- "$BIN" validate "$TMP/same-file.yaml"

# Compare and drift stages (docs/analysis.md): mistakes are one line at their place.
base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam]}\n  versus: {kind: compare, model: m}/' > "$TMP/compare1.yaml"
expect_error compare-needs-two "compare1.yaml:14:34: compare stage 'versus' needs model: [A, B]" -- "$BIN" validate "$TMP/compare1.yaml"
base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam], baseline: previous}/' > "$TMP/baseline-on-explain.yaml"
expect_error baseline-on-explain "stage 'explain': baseline applies to drift stages" -- "$BIN" validate "$TMP/baseline-on-explain.yaml"
{ base_manifest; printf 'gates:\n  stable: {metric: drift_spearman, explainer: cam, min: 0.9}\n'; } > "$TMP/drift-gate.yaml"
expect_error drift-gate-needs-stage "gate 'stable': no drift stage measures 'drift_spearman'; add a stage of kind drift" -- "$BIN" validate "$TMP/drift-gate.yaml"
{ base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam]}\n  nightly: {kind: drift, baseline: nowhere.sqlite}/'; } > "$TMP/drift-missing.yaml"
expect_error drift-missing-baseline "drift-missing.yaml:14:36: drift stage 'nightly': baseline store $TMP/nowhere.sqlite does not exist" -- \
  "$BIN" run "$TMP/drift-missing.yaml" --db "$TMP/drift.sqlite"
{ base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam]}\n  nightly: {kind: drift}/'; printf 'gates:\n  stable: {metric: drift_spearman, explainer: cam, min: 0.9}\n'; } > "$TMP/drift.yaml"
"$BIN" run "$TMP/drift.yaml" --db "$TMP/drift2.sqlite" >/dev/null 2>&1; rc=$?
check drift-first-run-fails-gate test "$rc" -eq 3
"$BIN" run "$TMP/drift.yaml" --db "$TMP/drift2.sqlite" >"$TMP/out" 2>"$TMP/err"; rc=$?
check drift-second-run-passes bash -c "test $rc -eq 0 && grep -q 'gate stable: drift_spearman of cam = 1 (needs >= 0.9): PASS' '$TMP/out' && grep -q \"drift 'nightly' against run 1: 4 heatmaps compared, 0 moved\" '$TMP/err'"
# --baseline names another store's run: a fresh store against the run of drift2.sqlite.
"$BIN" run "$TMP/drift.yaml" --db "$TMP/drift3.sqlite" --baseline "$TMP/drift2.sqlite#1" >"$TMP/out" 2>"$TMP/err"; rc=$?
check drift-baseline-flag bash -c "test $rc -eq 0 && grep -q \"drift 'nightly' against run 1: 4 heatmaps compared, 0 moved\" '$TMP/err'"
expect_error drift-baseline-missing "--baseline: $TMP/nowhere.sqlite does not exist" -- "$BIN" run "$TMP/drift.yaml" --db "$TMP/drift4.sqlite" --baseline "$TMP/nowhere.sqlite"

# CLI habits: --version names the engine and the kernel path; --quiet and --verbose.
check version-says-engine-and-path bash -c "'$BIN' --version | grep -qE '^[0-9]+\.[0-9]+\.[0-9]+ \(engine-[0-9]+; kernel path (avx512|avx2|openblas) on '"
# The kernel path follows CPUID: with AVX-512 (then AVX2 too) hidden by tools/cpumask, the
# dispatcher takes avx2 (then openblas) and says that CPUID hides them; an explanation there
# gives the heatmap of the default path (the AVX2 kernels, and OpenBLAS, to float precision).
if tools/cpumask/run.sh true 2>/dev/null; then
  check cpuid-hides-avx512 bash -c "tools/cpumask/run.sh '$BIN' --version | grep -q 'kernel path avx2 on .*CPUID hides AVX-512 from this process'"
  check cpuid-hides-avx2 bash -c "CPUMASK_HIDE=avx2 tools/cpumask/run.sh '$BIN' --version | grep -q 'kernel path openblas on .*CPUID hides AVX-512 and AVX2 from this process'"
  "$BIN" explain --model $M --input $IMG --method gradient "${PRE[@]}" --out "$TMP/cpu-default.npy" >/dev/null 2>&1
  tools/cpumask/run.sh "$BIN" explain --model $M --input $IMG --method gradient "${PRE[@]}" --out "$TMP/cpu-avx2.npy" >/dev/null 2>&1
  check cpuid-avx2-same-heatmap python3 -c "
import struct, sys
def floats(p):
    b = open(p, 'rb').read(); n = struct.unpack('<H', b[8:10])[0]; return struct.unpack('<%df' % ((len(b) - 10 - n) // 4), b[10 + n:])
a, b = floats('$TMP/cpu-default.npy'), floats('$TMP/cpu-avx2.npy')
scale = max(abs(v) for v in a)
sys.exit(0 if len(a) == len(b) and scale > 0 and max(abs(x - y) for x, y in zip(a, b)) <= 1e-4 * scale else 1)"
else
  echo "cpuid checks: this CPU has no CPUID faulting (cpuid_fault); the kernel paths are forced with --kernel instead"
fi
check quiet-verbose bash -c "out=\$('$BIN' run x.yaml -q -v 2>&1); test \$? -eq 64 && grep -q -- '--quiet and --verbose exclude each other' <<< \"\$out\""
base_manifest > "$TMP/quiet.yaml"
"$BIN" run "$TMP/quiet.yaml" --db "$TMP/quiet.sqlite" --quiet >"$TMP/out" 2>"$TMP/err"
check quiet-no-log-lines bash -c "test ! -s '$TMP/err' && grep -q '^run 1: 4 items, 0 failures, complete' '$TMP/out'"
"$BIN" run "$TMP/quiet.yaml" --db "$TMP/quiet.sqlite" --verbose >"$TMP/out" 2>"$TMP/err"
check verbose-every-item test "$(grep -c '^[0-9]/4 items: ' "$TMP/err")" -eq 4

# Budgets (docs/slides.md): only: scopes are checked at their place.
base_manifest | sed 's/  cam: {method: gradcam}/  cam: {method: gradcam, only: {class: tumour}}/' > "$TMP/only-class.yaml"
expect_error only-unknown-class "explainer 'cam': only: class 'tumour' is not a class of any model" -- "$BIN" validate "$TMP/only-class.yaml"
base_manifest | sed 's/  cam: {method: gradcam}/  cam: {method: gradcam, only: {}}/' > "$TMP/only-empty.yaml"
expect_error only-empty "explainer 'cam': only: needs class, probability or annotated: true" -- "$BIN" validate "$TMP/only-empty.yaml"

# SpRAy (docs/analysis.md): settings belong to spray stages, the gate needs one, export writes the clusters.
base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam], size: 8}/' > "$TMP/size-on-explain.yaml"
expect_error spray-key-on-explain "stage 'explain': size applies to spray stages" -- "$BIN" validate "$TMP/size-on-explain.yaml"
base_manifest | sed 's/explainers: \[cam\]}/explainers: [cam]}\n  strategies: {kind: spray, outside: 2}/' > "$TMP/spray-share.yaml"
expect_error spray-bad-share "spray-share.yaml:14:38: stage 'strategies': outside is a share: 0 < outside <= 1" -- "$BIN" validate "$TMP/spray-share.yaml"
{ base_manifest; printf 'gates:\n  hans: {metric: spray_flags, explainer: cam, max: 0}\n'; } > "$TMP/spray-gate.yaml"
expect_error spray-gate-needs-stage "gate 'hans': no spray stage clusters the heatmaps of 'cam'; add a stage of kind spray" -- "$BIN" validate "$TMP/spray-gate.yaml"
{ base_manifest; printf 'gates:\n  lesions: {metric: slide_pointing_game, explainer: cam, min: 0.9}\n'; } > "$TMP/slide-gate.yaml"
expect_error slide-gate-needs-slides "gate 'lesions': 'slide_pointing_game' is measured on slides; the manifest has no dataset of kind slides" -- "$BIN" validate "$TMP/slide-gate.yaml"
{ base_manifest | sed -e 's/limit: 4/limit: 24/' -e 's/explainers: \[cam\]}/explainers: [cam]}\n  strategies: {kind: spray}/'
  printf 'gates:\n  hans: {metric: spray_flags, explainer: cam, max: 0}\n'; } > "$TMP/spray.yaml"
"$BIN" run "$TMP/spray.yaml" --db "$TMP/spray.sqlite" >"$TMP/out" 2>"$TMP/err"; rc=$?
check spray-runs bash -c "test $rc -eq 0 && grep -q \"spray 'strategies': cam \[m\] class 0: 20 heatmaps, 1 cluster,\" '$TMP/err' && grep -q 'gate hans: spray_flags of cam = 0' '$TMP/out'"
expect_ok spray-export -- "$BIN" export --db "$TMP/spray.sqlite" --table clusters --out "$TMP/clusters.csv"
check spray-export-rows bash -c "head -1 '$TMP/clusters.csv' | grep -qx 'path,class,explainer,cluster,medoid,model,stage,flagged' && test \$(wc -l < '$TMP/clusters.csv') -eq 25 && test \$(awk -F, 'NR > 1 && \$5 == 1' '$TMP/clusters.csv' | wc -l) -ge 2"
expect_ok spray-export-jsonl -- "$BIN" export --db "$TMP/spray.sqlite" --table clusters --format jsonl --out "$TMP/clusters.jsonl"
check spray-export-jsonl-rows python3 -c "
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
table = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == len(table) > 0, (len(rows), len(table))
assert all(isinstance(r['flagged'], bool) and isinstance(r['medoid'], bool) and isinstance(r['cluster'], int) for r in rows), rows[0]
key = lambda d: (d['path'], d['explainer'], str(d['cluster']), str(int(d['medoid'])) if isinstance(d['medoid'], bool) else d['medoid'])
assert sorted(map(key, rows)) == sorted(map(key, table))
" "$TMP/clusters.jsonl" "$TMP/clusters.csv"
expect_error spray-export-none "has no SpRAy clusters (add a stage of kind spray)" -- "$BIN" export --db "$TMP/drift2.sqlite" --table clusters
expect_error export-bad-table "--table: heatmaps or clusters, got 'cluster'" -- "$BIN" export --db "$TMP/spray.sqlite" --table cluster

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
