#!/usr/bin/env bash
# The report in a real browser: renders a small report (one item named like an HTML injection)
# with headless Chromium, checks the DOM (sections, galleries, no injected element, the name
# shown as text), that the console shows no errors, that a doctor's page prints on one page,
# and saves screenshots under .cache/browser-test/.
# Usage: Tests/browser/run.sh path/to/candela
set -u
BIN=${1:?usage: run.sh path/to/candela}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
if ! command -v chromium >/dev/null; then
  echo "browser: installing Debian's chromium"
  SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
TMP=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$TMP"' EXIT
OUT="$ROOT/.cache/browser-test"
mkdir -p "$OUT"
pass=0; fail=0
check() {
  local name=$1; shift
  if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $name"; fi
}
browse() { chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage "$@" 2>>"$TMP/console.log"; }
# run_script PAGE SCRIPT ATTRIBUTE OUT BUDGET_MS: headless Chromium has no clicks on its command
# line, so a copy of PAGE (beside it: relative links hold) gets SCRIPT appended; the JSON the
# script leaves in the body's ATTRIBUTE is written to OUT ({} when it left none). No "&" in a
# script: sed's replacement would read it as the matched text.
run_script() {
  local page=$1 script=$2 attribute=$3 out=$4 budget=$5
  local copy; copy="$(dirname "$page")/script-$(basename "$script" .js).html"
  sed "s#</body>#<script>$(tr '\n' ' ' < "$script")</script></body>#" "$page" > "$copy"
  browse --enable-logging=stderr --v=0 --virtual-time-budget="$budget" --dump-dom "file://$copy" > "$out.dom"
  python3 - "$out.dom" "$attribute" > "$out" <<'PY'
import html, json, re, sys
m = re.search(sys.argv[2] + r'="([^"]*)"', open(sys.argv[1]).read())
print(json.dumps(json.loads(html.unescape(m.group(1))) if m else {}))
PY
}

# A dataset of six demo slides and one whose file name is an HTML injection.
EVIL='<img src=x onerror=alert(1)>.png'
mkdir -p "$TMP/data"
cp datasets/demo/images/slide_001.png "$TMP/data/$EVIL"
{ echo "path,label,mask"
  echo "$EVIL,abnormal,$ROOT/datasets/demo/masks/slide_001.png"
  tail -n +2 datasets/demo/labels.csv | head -6 | sed "s#^images/#$ROOT/datasets/demo/images/#; s#,masks/#,$ROOT/datasets/demo/masks/#"
} > "$TMP/data/labels.csv"
cat > "$TMP/browser.yaml" <<YAML
pipeline: browser-test
datasets:
  d: {csv: $TMP/data/labels.csv}
models:
  m:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
explainers:
  gradcam: {method: gradcam}
  saliency: {method: saliency}
  ig: {method: integratedgradients, params: {steps: 8}}
stages:
  predict: {kind: predict}
  explain: {kind: explain}
  evaluate: {kind: evaluate, metrics: [pointing_game, agreement]}
  report: {kind: report, out: $TMP/report, page_size: 4}
gates:
  nothing-failed: {metric: failures, max: 0}
YAML
"$BIN" run "$TMP/browser.yaml" --jobs 2 --db "$TMP/b.sqlite" >"$TMP/run.log" 2>&1
check run-ok test $? -eq 0
R="$TMP/report"
check rows-in-csv test "$(grep -c . "$TMP/data/labels.csv")" -eq 8

: > "$TMP/console.log"
browse --enable-logging=stderr --v=0 --dump-dom "file://$R/index.html" > "$TMP/index.dom"
for id in summary confusion pointing-game gates curated methods; do
  check "index-has-$id" grep -q "id=\"$id\"" "$TMP/index.dom"
done
check index-links-galleries grep -q 'href="gallery-abnormal-1.html"' "$TMP/index.dom"
check index-has-colorbar grep -q '<svg class="colorbar"' "$TMP/index.dom"
pages=$(ls "$R"/gallery-*.html | wc -l)
check galleries-paginated test "$pages" -ge 3          # 4 items a page: abnormal 2 pages + normal
: > "$TMP/galleries.dom"
for g in "$R"/gallery-*.html; do browse --enable-logging=stderr --v=0 --dump-dom "file://$g" >> "$TMP/galleries.dom"; done
check gallery-items test "$(grep -o '<figure class="item' "$TMP/galleries.dom" | wc -l)" -eq 7
check gallery-alt-text grep -q 'alt="gradcam heatmap over slide_' "$TMP/galleries.dom"
# The injection: shown as text, never an element.
# An injected element would be serialized by the DOM dump as <img src="x" onerror="alert(1)">.
check no-injected-img bash -c "! grep -qF '<img src=\"x\"' '$TMP/galleries.dom' '$TMP/index.dom'"
check no-onerror-attribute bash -c "! grep -qF 'onerror=\"' '$TMP/galleries.dom' '$TMP/index.dom'"
check name-shown-as-text grep -qF '&lt;img src=x onerror=alert(1)&gt;.png' "$TMP/galleries.dom"
evil_item=$(sqlite3 "$TMP/b.sqlite" "select id from items where path like '%onerror%'")
browse --enable-logging=stderr --v=0 --dump-dom "file://$R/items/$evil_item.html" > "$TMP/item.dom"
check item-page-escaped bash -c "grep -qF '&lt;img src=x onerror=alert(1)&gt;.png' '$TMP/item.dom' && ! grep -qF 'onerror=\"' '$TMP/item.dom'"
check item-page-arrays grep -q 'heatmap array (.npy)' "$TMP/item.dom"
# The signed map (integrated gradients) in red and blue with its diverging colour bar.
check item-page-signed bash -c "grep -q 'red: for abnormal, blue: against' '$TMP/item.dom' && grep -q 'diverging colour scale' '$TMP/item.dom' && grep -q 'bwr-q995.jpg' '$TMP/item.dom'"
# The view switch, by a script appended to a copy of the page: each choice shows one kind of
# picture per heatmap, and every picture it shows has loaded.
cat > "$TMP/switch.js" <<'JS'
window.addEventListener('load', function () {
  var out = {};
  var shown = function (cls) {
    return Array.prototype.filter.call(document.querySelectorAll('img.' + cls), function (img) {
      return getComputedStyle(img).display === 'none' ? false : img.naturalWidth > 0; }).length; };
  ['view-overlay', 'view-map', 'view-image'].forEach(function (id) {
    document.getElementById(id).click();
    out[id] = [shown('v-ov'), shown('v-map'), shown('v-img')].join(',');
  });
  document.body.setAttribute('data-switch', JSON.stringify(out));
});
JS
run_script "$R/items/$evil_item.html" "$TMP/switch.js" data-switch "$TMP/switch.txt" 3000
check item-view-switch python3 -c "import json; d = json.load(open('$TMP/switch.txt')); assert d == {'view-overlay': '3,0,0', 'view-map': '0,3,0', 'view-image': '0,0,3'}, d"
# The console: no JavaScript error, no failed resource.
check console-clean bash -c "! grep -iE 'CONSOLE.*(error|uncaught)|Uncaught|ERR_FILE_NOT_FOUND' '$TMP/console.log'"
# The filter script runs: typing is simulated by a URL-free check that the script parsed (no error above)
# and that the filter field exists.
check gallery-filter-field grep -q 'id="filter"' "$TMP/galleries.dom"

# The doctor's page prints on one page, on A4 and on Letter.
# (Chromium's command line has no paper option: a copy of the page sets @page size.)
for paper in A4 Letter; do
  sed "s#<style>#<style>@page { size: $paper; }#" "$R/doctor/$evil_item.html" > "$R/doctor/print-$paper.html"
  browse --no-pdf-header-footer --print-to-pdf="$OUT/case-$paper.pdf" "file://$R/doctor/print-$paper.html" >/dev/null 2>&1
  npages=$(python3 -c "import re,sys; print(len(re.findall(rb'/Type\s*/Page[^s]', open(sys.argv[1],'rb').read())))" "$OUT/case-$paper.pdf")
  check "doctor-one-page-$paper" test "$npages" -eq 1
done

# A slide's page: the zoomable viewer loads its tiles and layers from file:// with no error.
"$BIN" make-slide --out "$TMP/s.svs" --width 1536 --height 768 --pieces 1 --lesions 3 --seed 5 --annotation "$TMP/s.geojson" >/dev/null
# A second slide that is mostly glass (four small cores): its finest zoom has more than 64
# tiles, so only tiles on tissue are written and the viewer shows glass.jpg for the rest.
"$BIN" make-slide --out "$TMP/g.svs" --width 12288 --height 2048 --pieces 4 --piece-size 1200x600 --lesions 0 --seed 6 >/dev/null
printf 'path,label,annotation\ns.svs,abnormal,s.geojson\ng.svs,normal,\n' > "$TMP/slides.csv"
cat > "$TMP/slides.yaml" <<YAML
pipeline: browser-slides
datasets:
  b: {kind: slides, csv: slides.csv, mpp: 0.5, tile: 64, tissue_mpp: 4, min_piece_area: 10000}
models:
  m:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
explainers:
  gradcam: {method: gradcam}
stages:
  explain: {kind: explain}
  report: {kind: report, out: $TMP/slide-report}
YAML
"$BIN" run "$TMP/slides.yaml" --jobs 2 --db "$TMP/s.sqlite" >"$TMP/slides.log" 2>&1
check slide-run-ok test $? -eq 0
: > "$TMP/console.log"
browse --enable-logging=stderr --v=0 --virtual-time-budget=5000 --dump-dom "file://$TMP/slide-report/slides/1.html" > "$TMP/slide.dom"
check viewer-tiles-loaded test "$(grep -o 'leaflet-tile-loaded' "$TMP/slide.dom" | wc -l)" -ge 2
check viewer-layers bash -c "grep -q 'heatmap: gradcam' '$TMP/slide.dom' && grep -q 'tiles: p(abnormal)' '$TMP/slide.dom' && grep -q '>annotations<\|> annotations<' '$TMP/slide.dom'"
# The first heatmap is shown at load, as a tile pyramid of its own (PNG tiles under slides/<tag>-tiles/).
check viewer-overlay-shown grep -q 'candela-heat' "$TMP/slide.dom"
check viewer-heatmap-tiles-loaded bash -c "grep -o 'src=\"[^\"]*-tiles/[0-9]*/[0-9]*_[0-9]*.png\"' '$TMP/slide.dom' | grep -q ."
check viewer-annotations-drawn grep -q '<path class="leaflet-interactive"' "$TMP/slide.dom"
check viewer-legend-in-map bash -c "grep -q 'class=\"candela-legend' '$TMP/slide.dom' && grep -q '99.5th pct.' '$TMP/slide.dom'"
check viewer-console-clean bash -c "! grep -iE 'CONSOLE.*(error|uncaught)|Uncaught|ERR_FILE_NOT_FOUND' '$TMP/console.log'"
check slide-top-tiles bash -c "grep -q 'Most positive: highest probability of abnormal' '$TMP/slide.dom' && grep -q 'Most relevant: highest mean gradcam relevance' '$TMP/slide.dom'"
# Interactions, by a script appended to a copy of the page (headless Chromium has no clicks on
# its command line): zoom in two steps and see finer tiles load, switch layers on and off in the
# layer control, move the opacity slider, click a tile and get its popup with a link.
cat > "$TMP/interact.js" <<'JS'
window.addEventListener('load', function () {
  var map = window.candelaViewer, c = map.candelaConfig, out = {};
  var images = function () { return document.querySelectorAll('.leaflet-image-layer, .candela-heat').length; };
  out.zoomBefore = map.getZoom();
  map.setZoom(Math.min(c.maxZoom, Math.floor(map.getZoom()) + 2), {animate: false});
  out.zoomAfter = map.getZoom();
  var boxes = document.querySelectorAll('.leaflet-control-layers-overlays input[type=checkbox]');
  out.boxes = boxes.length;
  out.shownBefore = images();
  boxes[1].click();
  out.shownAfterOn = images();
  boxes[0].click();
  out.shownAfterOff = images();
  var s = document.getElementById('opacity');
  s.value = 30; s.dispatchEvent(new Event('input'));
  out.opacity = document.querySelector('.leaflet-image-layer').style.opacity;
  var t = c.cells[0];
  map.fire('click', {latlng: map.unproject([(t[0] + t[2] / 2) / c.finest, (t[1] + t[3] / 2) / c.finest], c.maxZoom)});
  var popup = document.querySelector('.leaflet-popup-content');
  out.popup = popup ? popup.textContent : '';
  setTimeout(function () {
    var z = Math.round(map.getZoom());
    out.finerTiles = Array.prototype.filter.call(document.querySelectorAll('img.leaflet-tile-loaded'),
      function (img) { return img.src.indexOf('/' + z + '/') >= 0; }).length;
    document.body.setAttribute('data-interactions', JSON.stringify(out));
  }, 1500);
});
JS
: > "$TMP/console.log"
run_script "$TMP/slide-report/slides/1.html" "$TMP/interact.js" data-interactions "$TMP/interact.txt" 8000
j() { python3 -c "import json,sys; print(json.load(open('$TMP/interact.txt')).get('$1', ''))"; }
check viewer-zoom-in bash -c "python3 -c \"import json; d = json.load(open('$TMP/interact.txt')); assert d['zoomAfter'] > d['zoomBefore'], d\""
check viewer-finer-tiles-load test "$(j finerTiles)" -ge 1
check viewer-layer-toggle bash -c "test '$(j shownAfterOn)' -eq \$(( $(j shownBefore) + 1 )) && test '$(j shownAfterOff)' -eq $(j shownBefore)"
check viewer-opacity-slider test "$(j opacity)" = "0.3"
check viewer-click-popup bash -c "j() { :; }; grep -q 'p(abnormal) = [0-9.]* tile page' <<< '$(j popup)'"
check viewer-interactions-console-clean bash -c "! grep -iE 'CONSOLE.*(error|uncaught)|Uncaught|ERR_FILE_NOT_FOUND' '$TMP/console.log'"
# The mostly-glass slide: at the finest zoom, glass between two cores comes from glass.jpg and a
# core's tiles from their files; fewer tile files than the zoom's grid; no error.
cat > "$TMP/glass.js" <<'JS'
window.addEventListener('load', function () {
  var map = window.candelaViewer, c = map.candelaConfig, out = {};
  var g = c.grids[c.maxZoom];
  out.grid = g[0] * g[1];
  var at = function (x, y) { return map.unproject([x / c.finest, y / c.finest], c.maxZoom); };
  map.setView(at(3072, 1024), c.maxZoom, {animate: false});
  setTimeout(function () {
    var loaded = Array.prototype.map.call(document.querySelectorAll('img.leaflet-tile-loaded'), function (i) { return i.src; });
    out.glass = loaded.filter(function (s) { return s.indexOf('glass.jpg') >= 0; }).length;
    map.setView(at(1536, 1024), c.maxZoom, {animate: false});
    setTimeout(function () {
      var now = Array.prototype.map.call(document.querySelectorAll('img.leaflet-tile-loaded'), function (i) { return i.src; });
      out.tissue = now.filter(function (s) { return s.indexOf('/' + c.maxZoom + '/') >= 0; }).length;
      document.body.setAttribute('data-glass', JSON.stringify(out));
    }, 1500);
  }, 1500);
});
JS
: > "$TMP/console.log"
run_script "$TMP/slide-report/slides/2.html" "$TMP/glass.js" data-glass "$TMP/glass.txt" 8000
g() { python3 -c "import json,sys; print(json.load(open('$TMP/glass.txt')).get('$1', ''))"; }
key=$(ls "$TMP/slide-report/slides" | grep -- '-2$')
written=$(ls "$TMP/slide-report/slides/$key/$(ls "$TMP/slide-report/slides/$key" | grep -v glass | sort -n | tail -1)" | wc -l)
check viewer-glass-shown test "$(g glass)" -ge 1
check viewer-glass-tissue-tiles test "$(g tissue)" -ge 1
check viewer-glass-fewer-files bash -c "test $written -gt 0 && test $written -lt '$(g grid)'"
check viewer-glass-console-clean bash -c "! grep -iE 'CONSOLE.*(error|uncaught)|Uncaught|ERR_FILE_NOT_FOUND' '$TMP/console.log'"
browse --window-size=1100,1300 --virtual-time-budget=5000 --screenshot="$OUT/slide.png" "file://$TMP/slide-report/slides/1.html" >/dev/null
# The doctor's slide page: verdict, pieces, both pictures, top tiles; one printed page on A4 and Letter.
browse --enable-logging=stderr --v=0 --dump-dom "file://$TMP/slide-report/doctor/slide-1.html" > "$TMP/doctor-slide.dom"
check doctor-slide-content bash -c "grep -q 'answer for the slide: <strong>[a-z]*</strong>' '$TMP/doctor-slide.dom' && grep -q 'mean probability of the last class' '$TMP/doctor-slide.dom' && test \$(grep -o '<figure><img src=\"../images/' '$TMP/doctor-slide.dom' | wc -l) -ge 1"
for paper in A4 Letter; do
  sed "s#<style>#<style>@page { size: $paper; }#" "$TMP/slide-report/doctor/slide-1.html" > "$TMP/slide-report/doctor/print-$paper.html"
  browse --no-pdf-header-footer --print-to-pdf="$OUT/slide-$paper.pdf" "file://$TMP/slide-report/doctor/print-$paper.html" >/dev/null 2>&1
  npages=$(python3 -c "import re,sys; print(len(re.findall(rb'/Type\s*/Page[^s]', open(sys.argv[1],'rb').read())))" "$OUT/slide-$paper.pdf")
  check "doctor-slide-one-page-$paper" test "$npages" -eq 1
done

browse --window-size=1300,2200 --screenshot="$OUT/index.png" "file://$R/index.html" >/dev/null
browse --window-size=1300,1400 --screenshot="$OUT/gallery.png" "file://$R/gallery-abnormal-1.html" >/dev/null
browse --window-size=900,1200 --screenshot="$OUT/doctor.png" "file://$R/doctor/$evil_item.html" >/dev/null
check screenshots-saved test -s "$OUT/index.png" -a -s "$OUT/gallery.png" -a -s "$OUT/doctor.png"
echo "browser: $pass passed, $fail failed (screenshots and PDFs in .cache/browser-test/)"
[ "$fail" -eq 0 ]
