#!/usr/bin/env bash
# The machine-readable outputs of `candela run` and `candela merge` (docs/ci.md): the JUnit XML
# validated against junit-10.xsd (the schema pytest validates its own XML against, taken from
# pytest's source distribution on PyPI), the Prometheus text parsed by prometheus_client's
# parser, the JSON summary read back. Tooling in an ignored venv (.cache/venv-ci).
# Usage: Tests/ci/run.sh path/to/candela
set -u
BIN=${1:?usage: run.sh path/to/candela}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
VENV=.cache/venv-ci
XSD=.cache/ci/junit-10.xsd
if [ ! -x $VENV/bin/python ] || ! $VENV/bin/python -c "import xmlschema, prometheus_client" 2>/dev/null; then
  python3 -m venv $VENV && $VENV/bin/pip install -q xmlschema==4.3.2 prometheus_client==0.21.1 || { echo "FAIL ci-venv"; exit 1; }
fi
if [ ! -s $XSD ]; then
  mkdir -p .cache/ci
  $VENV/bin/pip download -q --no-deps --no-binary :all: pytest==8.3.5 -d .cache/ci \
    && tar -xzf .cache/ci/pytest-8.3.5.tar.gz -C .cache/ci pytest-8.3.5/testing/example_scripts/junit-10.xsd \
    && mv .cache/ci/pytest-8.3.5/testing/example_scripts/junit-10.xsd $XSD || { echo "FAIL ci-xsd"; exit 1; }
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0
check() {
  local name=$1; shift
  if "$@"; then pass=$((pass+1)); echo "ok $name"; else fail=$((fail+1)); echo "FAIL $name"; fi
}

# Six demo tiles and one missing file (a failure row, no item), a gate that passes and one that fails.
{ head -7 datasets/demo/labels.csv | sed "s#^images/#$ROOT/datasets/demo/images/#; s#,masks/#,$ROOT/datasets/demo/masks/#"
  echo "$ROOT/datasets/demo/images/no-such-tile.png,abnormal,"; } > "$TMP/labels.csv"
cat > "$TMP/ci.yaml" <<YAML
pipeline: ci-outputs
datasets:
  d: {csv: labels.csv}
models:
  m: {onnx: $ROOT/models/demo.onnx, classes: [normal, abnormal], preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}
explainers:
  cam: {method: gradcam}
stages:
  explain: {kind: explain}
  evaluate: {kind: evaluate, metrics: [pointing_game]}
gates:
  accurate: {metric: accuracy, min: 0.5}
  "finds <all> & more": {metric: pointing_game, explainer: cam, min: 1.01}
  nothing-failed: {metric: failures, max: 0}
YAML
"$BIN" run "$TMP/ci.yaml" --db "$TMP/ci.sqlite" --junit "$TMP/junit.xml" --summary "$TMP/summary.json" --metrics "$TMP/run.prom" >/dev/null 2>&1
check run-exit-3 test $? -eq 3
check outputs-written test -s "$TMP/junit.xml" -a -s "$TMP/summary.json" -a -s "$TMP/run.prom"
check junit-valid $VENV/bin/python -c "import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2])" "$XSD" "$TMP/junit.xml"
check junit-cases $VENV/bin/python - "$TMP/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = {s.get("name"): s for s in root.findall("testsuite")}
assert set(suites) == {"run", "gates", "items"}, suites
gates = {c.get("name"): c for c in suites["gates"].findall("testcase")}
assert set(gates) == {"accurate", "finds <all> & more", "nothing-failed"}, gates
n = gates["nothing-failed"].find("failure")
assert n is not None and n.get("message") == "failures = 1, needs <= 0", n.attrib  # a max: gate's "<=" escaped
assert gates["accurate"].find("failure") is None
f = gates["finds <all> & more"].find("failure")
assert f is not None and "pointing_game of cam" in f.get("message") and "needs >= 1.01" in f.get("message"), f.attrib
items = suites["items"].findall("testcase")
assert len(items) == 1 and items[0].get("name").endswith("no-such-tile.png") and items[0].find("error") is not None
assert suites["run"].find("testcase/failure").get("message") == "1 failure(s): items or stages that failed; 6 items stored"
assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "3", "1"), root.attrib
PY
check prometheus-parses $VENV/bin/python - "$TMP/run.prom" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def value(name, **labels):
    for s in families[name].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, labels))
assert value("candela_run_items", pipeline="ci-outputs") == 6
assert value("candela_run_failures") == 1
assert value("candela_run_status", status="partial") == 1 and value("candela_run_status", status="complete") == 0
assert value("candela_gate_passed", gate="accurate") == 1 and value("candela_gate_passed", gate="finds <all> & more") == 0
assert value("candela_gate_passed", gate="nothing-failed") == 0
assert value("candela_run_heatmaps", source="computed") == 6
assert value("candela_run_duration_seconds") > 0
assert all(f.type == "gauge" for f in families.values())
PY
check summary-json $VENV/bin/python - "$TMP/summary.json" "$TMP/ci.sqlite" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["schema"] == 1 and s["pipeline"] == "ci-outputs" and s["status"] == "partial", s
assert (s["items"], s["failures"], s["verdict"]) == (6, 1, "fail")
assert s["heatmaps"] == {"computed": 6, "reused": 0, "skipped": 0}
g = {x["name"]: x for x in s["gates"]}
assert g["accurate"]["passed"] and g["accurate"]["threshold"] == 0.5 and not g["finds <all> & more"]["passed"]
m = [x for x in s["metrics"] if x["metric"] == "pointing_game"]
assert len(m) == 1 and m[0]["model"] == "m" and m[0]["explainer"] == "cam" and m[0]["items"] == 6
assert s["store"] == sys.argv[2] and s["report"] is None
PY
# Merge writes the same outputs for the merged run.
for k in 1 2; do "$BIN" run "$TMP/ci.yaml" --shard $k/2 --db "$TMP/s$k.sqlite" >/dev/null 2>&1; done
"$BIN" merge --out "$TMP/m.sqlite" "$TMP/s1.sqlite" "$TMP/s2.sqlite" --junit "$TMP/mjunit.xml" --summary "$TMP/msummary.json" \
  --metrics "$TMP/merged.prom" >/dev/null 2>&1
check merge-exit-3 test $? -eq 3
check merge-junit-valid $VENV/bin/python -c "import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2])" "$XSD" "$TMP/mjunit.xml"
check merge-summary bash -c "$VENV/bin/python -c \"import json; s = json.load(open('$TMP/msummary.json')); assert (s['items'], s['failures'], s['verdict']) == (6, 1, 'fail'), s\""
check merge-prometheus $VENV/bin/python -c "import sys; from prometheus_client.parser import text_string_to_metric_families as p; assert len(list(p(open(sys.argv[1]).read()))) == 8" "$TMP/merged.prom"
# A clean run: every case passes.
sed -i '/finds <all>/d' "$TMP/ci.yaml"; sed -i '/no-such-tile/d' "$TMP/labels.csv"
"$BIN" run "$TMP/ci.yaml" --db "$TMP/ok.sqlite" --junit "$TMP/ok.xml" >/dev/null 2>&1
check clean-run-exit-0 test $? -eq 0
check clean-junit bash -c "grep -q 'tests=\"3\" failures=\"0\" errors=\"0\"' '$TMP/ok.xml'"
# An unwritable output is one line naming the file, exit 1.
"$BIN" run "$TMP/ci.yaml" --db "$TMP/ok.sqlite" --summary /no/such/folder/s.json >/dev/null 2>"$TMP/err"
check unwritable-output bash -c "test $? -eq 1 && grep -q '/no/such/folder/s.json: cannot write' '$TMP/err'"
echo "ci-outputs: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
