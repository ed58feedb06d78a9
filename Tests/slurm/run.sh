#!/usr/bin/env bash
# Candela under a real Slurm: a single-node cluster started by hand (Tests/slurm/cluster.sh),
# three shards run as a job array by tools/slurm/candela-array.sbatch, `candela merge`, and the
# merged store compared with an unsharded run of the same manifest (every heatmap byte,
# prediction and metric, as Tests/cli/run.sh compares its shards).
# Usage: Tests/slurm/run.sh path/to/candela
# Prints "ok NAME" / "FAIL NAME" lines and exits non-zero on a failure. When the Slurm packages
# are missing and cannot be installed, prints "slurm: skipped: <reason>" and exits 0.
set -u
BIN=${1:?usage: run.sh path/to/candela}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
START=$SECONDS
TMP=$(mktemp -d)
# munged wants every folder above its socket enterable by all (mktemp -d makes 700).
chmod 755 "$TMP"
CLUSTER=$TMP/cluster
trap 'bash "$ROOT/Tests/slurm/cluster.sh" stop "$CLUSTER" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
pass=0; fail=0

check() {
  local name=$1; shift
  if "$@"; then pass=$((pass+1)); echo "ok $name"; else fail=$((fail+1)); echo "FAIL $name"; return 1; fi
}

bash Tests/slurm/cluster.sh start "$CLUSTER" >"$TMP/cluster.out" 2>&1; rc=$?
if [ $rc -eq 77 ]; then
  echo "slurm: skipped: $(tail -n 1 "$TMP/cluster.out")"
  exit 0
elif [ $rc -ne 0 ]; then
  echo "FAIL cluster-start (rc=$rc)"; sed 's/^/    /' "$TMP/cluster.out"
  exit 1
fi
echo "ok cluster-start ($(grep -o 'idle after [0-9.]* s' "$TMP/cluster.out"))"
pass=$((pass+1))
export SLURM_CONF=$CLUSTER/slurm.conf

# The CLI test's shard manifest (Tests/cli/run.sh, kill.yaml) with light explainers: 16 items,
# three explainers, a metric stage.
cat > "$TMP/slurm.yaml" <<YAML
pipeline: slurm
datasets:
  d: {csv: $ROOT/datasets/demo/labels.csv, limit: 16}
models:
  m:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
explainers:
  ig: {method: integratedgradients, params: {steps: 8}}
  cam: {method: gradcam}
  saliency: {method: saliency}
stages:
  predict: {kind: predict}
  explain: {kind: explain}
  evaluate: {kind: evaluate, metrics: [pointing_game]}
YAML
# rows, metric_rows, items_in: the same comparisons as Tests/cli/run.sh.
source "$ROOT/Tests/lib/store-rows.sh"

"$BIN" run "$TMP/slurm.yaml" --jobs 2 --db "$TMP/reference.sqlite" >"$TMP/reference.out" 2>&1
rows "$TMP/reference.sqlite" > "$TMP/reference.rows"; metric_rows "$TMP/reference.sqlite" > "$TMP/reference.metrics"
check reference-run test "$(wc -l < "$TMP/reference.rows")" -eq 48 -a -s "$TMP/reference.metrics"

# The array: tasks 0..2 run shards 1/3..3/3; --wait returns when all have ended, with the
# highest exit code of the tasks.
sub=$(date +%s%N)
CANDELA=$BIN MANIFEST=$TMP/slurm.yaml OUT=$TMP/shards \
  sbatch --parsable --wait --array=0-2 --output="$TMP/task-%a.log" tools/slurm/candela-array.sbatch \
  >"$TMP/sbatch.out" 2>"$TMP/sbatch.err"; rc=$?
ms=$(( ($(date +%s%N) - sub) / 1000000 ))
JOB=$(head -n 1 "$TMP/sbatch.out" | cut -d';' -f1)
check sbatch-wait-exit-0 test $rc -eq 0 -a -n "$JOB"
[ $rc -eq 0 ] || sed 's/^/    /' "$TMP/sbatch.err"
echo "  array job $JOB: sbatch --wait returned $((ms / 1000)).$(printf %03d $((ms % 1000))) s after submission"

# Each task's record (kept by slurmctld for MinJobAge, 300 s; no slurmdbd, so no sacct).
scontrol -o show job "$JOB" > "$TMP/jobs" 2>&1
# A task passes when Slurm recorded it COMPLETED with exit code 0 and its log names its shard
# and the store candela wrote.
task_ok() {
  local line
  line=$(grep -E "ArrayTaskId=$1 " "$TMP/jobs")
  grep -q 'JobState=COMPLETED' <<<"$line" && grep -q 'ExitCode=0:0' <<<"$line" \
    && grep -qF "shard $(($1+1))/3 -> $TMP/shards/shard-$(($1+1)).sqlite" "$TMP/task-$1.log" \
    && grep -qF "database: $TMP/shards/shard-$(($1+1)).sqlite" "$TMP/task-$1.log"
}
for t in 0 1 2; do
  check "task-$t-completed" task_ok $t || {
    grep -E "ArrayTaskId=$t " "$TMP/jobs" | grep -oE "JobState=[^ ]+|ExitCode=[^ ]+|Reason=[^ ]+" | sed 's/^/    /'
    tail -n 5 "$TMP/task-$t.log" 2>/dev/null | sed 's/^/    log: /'; }
done
check shards-split-items test "$(items_in "$TMP/shards/shard-1.sqlite") $(items_in "$TMP/shards/shard-2.sqlite") $(items_in "$TMP/shards/shard-3.sqlite")" = "6 5 5"

"$BIN" merge --out "$TMP/merged.sqlite" "$TMP/shards/shard-1.sqlite" "$TMP/shards/shard-2.sqlite" "$TMP/shards/shard-3.sqlite" \
  >"$TMP/merge.out" 2>&1; rc=$?
check merge-shards test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    /' "$TMP/merge.out" | head -5
same() { diff "$1" "$2" >/dev/null 2>&1; }
check merge-same-rows same <(rows "$TMP/merged.sqlite" 2>/dev/null) "$TMP/reference.rows"
check merge-same-metrics same <(metric_rows "$TMP/merged.sqlite" 2>/dev/null) "$TMP/reference.metrics"

echo "slurm: $pass passed, $fail failed ($((SECONDS - START)) s)"
[ "$fail" -eq 0 ]
