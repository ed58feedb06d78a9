/// The report's Mustache templates, compiled into the binary so the report needs no resource
/// files. A manifest can override any of them (report stage `templates: DIR` with
/// `index.mustache`, `gallery.mustache`, `item.mustache`, `doctor.mustache`); the context each
/// receives is documented in docs/report.md.
enum Templates {
    static let names = ["index", "gallery", "item", "doctor", "slide", "doctor-slide", "spray"]

    static func builtIn(_ name: String) -> String {
        switch name {
        case "index": return index
        case "gallery": return gallery
        case "item": return item
        case "slide": return slide
        case "doctor-slide": return doctorSlide
        case "spray": return spray
        default: return doctor
        }
    }

    /// Shared styles. Text #1d1d1f on #f6f6f8 and white on #2b2140 both exceed WCAG AA contrast.
    static let style = """
    <style>
      body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1d1f; background: #f6f6f8; }
      header { background: #2b2140; color: #fff; padding: 16px 24px; }
      header h1 { margin: 0 0 4px 0; font-size: 22px; }
      header p { margin: 2px 0; font-size: 14px; color: #f0eaf8; }
      header a { color: #fff; }
      nav { font-size: 14px; margin: 8px 0; }
      main { padding: 16px 24px; }
      section { margin-bottom: 28px; }
      h2 { font-size: 18px; margin: 12px 0; }
      h3 { font-size: 15px; margin: 10px 0 6px 0; }
      table { border-collapse: collapse; background: #fff; margin-bottom: 6px; }
      caption { text-align: left; padding: 4px 0; max-width: 900px; }
      th, td { border: 1px solid #d6d6dc; padding: 4px 10px; text-align: left; font-size: 14px; }
      td.num { text-align: right; font-variant-numeric: tabular-nums; }
      .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
      .card { background: #fff; border: 1px solid #d6d6dc; border-radius: 6px; padding: 10px 12px; font-size: 13px; }
      .gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 10px; }
      figure.item { background: #fff; border: 1px solid #d6d6dc; border-radius: 6px; margin: 0; padding: 8px; }
      figure.item.wrong { border: 2px solid #b3261e; }
      .row { display: flex; gap: 4px; flex-wrap: wrap; }
      .row figure { margin: 0; text-align: center; font-size: 11px; color: #444; }
      .row img { width: 96px; height: 96px; display: block; }
      .cluster { border-left: 4px solid #d6d6dc; padding-left: 10px; margin: 12px 0; }
      .cluster.flagged { border-left-color: #cc3311; }
      .big img { width: 256px; height: 256px; }
      .big figure { max-width: 300px; }
      figcaption.meta { font-size: 13px; margin-top: 6px; }
      .bad { color: #b3261e; font-weight: 600; }
      .good { color: #1b6e2e; font-weight: 600; }
      .muted { color: #555; }
      .legend li { font-size: 13px; }
      input[type=search] { font-size: 14px; padding: 4px 8px; width: 260px; }
      .view-switch { font-size: 14px; margin: 8px 0; }
      .row img.v-map, .row img.v-img { display: none; }
      body:has(#view-map:checked) .row img.v-ov, body:has(#view-image:checked) .row img.v-ov { display: none; }
      body:has(#view-map:checked) .row img.v-map, body:has(#view-image:checked) .row img.v-img { display: block; }
    </style>
    """

    static let header = """
    <header>
      <h1>{{title}}</h1>
      <p>Pipeline {{pipeline}} · run {{runID}} started {{started}} · status {{status}} · Candela {{version}}</p>
      <p>Model {{model}} ({{modelHash}}) · dataset {{dataset}} · {{itemCount}} items</p>
    </header>
    """

    static let index = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Candela report — {{pipeline}}</title>
    \(style)
    </head>
    <body>
    \(header)
    <main>
    <nav>Galleries: {{#galleries}}<a href="{{href}}">{{className}} ({{count}})</a> · {{/galleries}}
      Explainers: {{explainers}} · <a href="#gates">gates</a> · <a href="#curated">curated views</a></nav>
    <section id="summary">
      <h2>Summary</h2>
      <p>Predictions: {{accuracy}}.{{#runParameters}} Run parameters: <code>{{runParameters}}</code>.{{/runParameters}}</p>
      {{#multiModel}}
      <table id="models">
        <caption class="muted">The run's models on the same items. Galleries, the confusion matrix and the doctor's pages
          follow the primary model, {{primaryModel}}; agreement is the share of items where a model predicts the same class.</caption>
        <tr><th>model</th><th>file</th><th>items</th><th>accuracy</th><th>agreement with {{primaryModel}}</th></tr>
        {{#modelRows}}<tr><td>{{name}}</td><td><code>{{hash}}</code></td><td class="num">{{items}}</td><td class="num">{{accuracy}}</td><td class="num">{{agreement}}</td></tr>{{/modelRows}}
      </table>
      {{/multiModel}}
      {{#hasConfusion}}
      <table id="confusion">
        <caption class="muted">Confusion matrix{{#multiModel}} of {{primaryModel}}{{/multiModel}}: rows are the dataset's labels, columns the model's predictions.</caption>
        <tr><th>label \\ predicted</th>{{#confusionClasses}}<th>{{.}}</th>{{/confusionClasses}}</tr>
        {{#confusion}}<tr><th>{{label}}</th>{{#cells}}<td class="num{{#off}} bad{{/off}}">{{count}}</td>{{/cells}}</tr>{{/confusion}}
      </table>
      {{/hasConfusion}}
      {{#hasPointing}}
      <table id="pointing-game">
        <caption class="muted">Pointing game: does the heatmap's peak fall on the annotated lesion? Items with a lesion mask only.
          Standard: within 15 px per 224 px of the lesion (Zhang et al. 2016); strict: the peak pixel itself.</caption>
        <tr><th>explainer</th><th>items</th><th>standard hits</th><th>standard</th><th>strict hits</th><th>strict</th></tr>
        {{#pointing}}<tr><td>{{explainer}}</td><td class="num">{{total}}</td><td class="num">{{hits}}</td><td class="num">{{fraction}}</td><td class="num">{{strictHits}}</td><td class="num">{{strictFraction}}</td></tr>{{/pointing}}
      </table>
      {{{pointingChart}}}
      {{/hasPointing}}
      {{#hasMetrics}}
      <table id="metrics">
        <caption class="muted">Trust metrics, mean over items (n items with a value). {{#hasSanity}}Sanity check: the
          cascading randomization test of Adebayo et al. (2018) — a heatmap that barely changes when the model's weights
          are re-drawn does not explain the model.{{/hasSanity}}</caption>
        <tr><th>explainer</th>{{#metricNames}}<th title="{{help}}">{{name}}</th>{{/metricNames}}{{#hasSanity}}<th>sanity check</th>{{/hasSanity}}</tr>
        {{#metricRows}}<tr><td>{{explainer}}</td>{{#cells}}<td class="num">{{value}} <span class="muted">({{n}})</span></td>{{/cells}}{{#sanity}}<td class="{{#sanityFails}}bad{{/sanityFails}}{{^sanityFails}}good{{/sanityFails}}">{{sanity}}</td>{{/sanity}}</tr>{{/metricRows}}
      </table>
      <ul class="muted legend">{{#metricNames}}<li><strong>{{name}}</strong>: {{help}}</li>{{/metricNames}}</ul>
      {{/hasMetrics}}
      {{#hasMetricPlots}}<div class="row plots">{{#metricPlots}}{{{svg}}}{{/metricPlots}}</div>{{/hasMetricPlots}}
      {{{timePlot}}}
      <table id="explainers">
        <caption class="muted">Explainers and their parameters.</caption>
        <tr><th>explainer</th><th>method</th><th>parameters</th></tr>
        {{#explainerRows}}<tr><td>{{name}}</td><td>{{method}}</td><td><code>{{parameters}}</code></td></tr>{{/explainerRows}}
      </table>
    </section>
    {{#hasGates}}
    <section id="gates">
      <h2>Gates: <span class="{{#gatesFailed}}bad{{/gatesFailed}}{{^gatesFailed}}good{{/gatesFailed}}">{{gateVerdict}}</span></h2>
      <table>
        <tr><th>gate</th><th>measure</th><th>value</th><th>needs</th><th>verdict</th></tr>
        {{#gates}}<tr><td>{{name}}</td><td>{{subject}}</td><td class="num">{{value}}</td><td>{{rule}}</td><td class="{{#failed}}bad{{/failed}}{{^failed}}good{{/failed}}">{{verdict}}</td></tr>{{/gates}}
      </table>
    </section>
    {{/hasGates}}
    {{^hasGates}}<section id="gates"><h2>Gates</h2><p class="muted">The manifest defines no gates.</p></section>{{/hasGates}}
    {{#hasFailures}}
    <section id="failures">
      <h2 class="bad">Failures ({{failureCount}})</h2>
      <table>
        <tr><th>item</th><th>stage</th><th>message</th></tr>
        {{#failures}}<tr><td>{{path}}</td><td>{{stage}}</td><td>{{message}}</td></tr>{{/failures}}
      </table>
    </section>
    {{/hasFailures}}
    {{#hasSpray}}
    <section id="spray">
      <h2>Strategies (SpRAy)</h2>
      <table>
        <caption class="muted">Per class, the heatmaps clustered by where they put relevance; a flagged cluster looks
          away from the object or at a fixed place at the border (a Clever-Hans candidate). <a href="spray.html">All clusters, plots and montages</a>.</caption>
        <tr><th>explainer</th><th>class</th><th>stage</th><th>heatmaps</th><th>clusters</th><th>flagged</th></tr>
        {{#spray}}<tr><td><a href="{{href}}">{{explainer}}</a></td><td>{{className}}</td><td>{{stage}}</td><td class="num">{{count}}</td>
          <td class="num">{{clusters}}</td><td class="num{{#anyFlagged}} bad{{/anyFlagged}}">{{flagged}}</td></tr>{{/spray}}
      </table>
    </section>
    {{/hasSpray}}
    {{#hasComparisons}}
    <section id="comparisons">
      <h2>Comparisons</h2>
      {{#comparisons}}
      <h3>{{title}}</h3>
      <table>
        <caption class="muted">Per explainer: items compared, mean Spearman ρ of the heatmaps' pixel ranks, mean SSIM
          (Wang et al. 2004), mean share of the top {{topShare}} pixels in common, and {{#isDrift}}items that moved (ρ &lt; {{moved}}).{{/isDrift}}{{^isDrift}}items
          where both models predict the same class.{{/isDrift}}</caption>
        <tr><th>explainer</th><th>items</th><th>Spearman ρ</th><th>SSIM</th><th>top-k</th><th>{{#isDrift}}moved{{/isDrift}}{{^isDrift}}same prediction{{/isDrift}}</th></tr>
        {{#rows}}<tr><td>{{explainer}}</td><td class="num">{{n}}</td><td class="num">{{spearman}}</td><td class="num">{{ssim}}</td>
          <td class="num">{{topk}}</td><td class="num">{{#isDrift}}{{moved}}{{/isDrift}}{{^isDrift}}{{same}}{{/isDrift}}</td></tr>{{/rows}}
      </table>
      <table>
        <caption class="muted">Where the heatmaps differ most (lowest SSIM).</caption>
        <tr><th>item</th><th>explainer</th><th>SSIM</th><th>Spearman ρ</th></tr>
        {{#worst}}<tr><td>{{#thumb}}<img src="{{thumb}}" alt="{{name}}" width="48" height="48"> {{/thumb}}<a href="{{href}}">{{name}}</a></td>
          <td>{{explainer}}</td><td class="num">{{ssim}}</td><td class="num">{{spearman}}</td></tr>{{/worst}}
      </table>
      {{/comparisons}}
    </section>
    {{/hasComparisons}}
    {{#hasSlides}}
    <section id="slides">
      <h2>Slides</h2>
      <table>
        <caption class="muted">Each slide's verdict{{#multiModel}} by {{primaryModel}}{{/multiModel}}, from its tiles' probabilities
          (the rule is on the slide's page, with a verdict per tissue piece and the stitched heatmaps).</caption>
        <thead><tr><th>slide</th><th>label</th><th>verdict</th><th>score</th><th>tissue pieces</th><th>tiles</th><th>tissue</th></tr></thead><tbody>
        {{#slides}}<tr><td><img src="{{thumb}}" alt="{{name}}" height="48"> <a href="{{href}}">{{name}}</a></td><td>{{label}}</td>
          <td class="{{#wrong}}bad{{/wrong}}">{{verdict}}</td><td class="num">{{score}}</td><td class="num">{{pieces}}</td>
          <td class="num">{{tiles}}</td><td class="num">{{tissue}}</td></tr>{{/slides}}
      </tbody></table>
      <p class="muted">Click a column's title to sort the slides by it (again to reverse).</p>
      <script>
        (function () {
          var table = document.querySelector('#slides table'), body = table.tBodies[0];
          table.querySelectorAll('thead th').forEach(function (th, column) {
            th.style.cursor = 'pointer';
            th.addEventListener('click', function () {
              var up = th.dataset.order !== 'up';
              th.dataset.order = up ? 'up' : 'down';
              var rows = Array.prototype.slice.call(body.rows);
              rows.sort(function (a, b) {
                var x = a.cells[column].textContent.trim(), y = b.cells[column].textContent.trim();
                var nx = parseFloat(x), ny = parseFloat(y);
                var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
                return up ? c : -c;
              });
              rows.forEach(function (r) { body.appendChild(r); });
            });
          });
        })();
      </script>
    </section>
    {{/hasSlides}}
    <section id="curated">
      <h2>Curated views</h2>
      {{#views}}
      <h3 id="{{id}}">{{title}}</h3>
      <p class="muted">{{description}}</p>
      {{#empty}}<p class="muted">{{empty}}</p>{{/empty}}
      {{#hasRows}}
      <table>
        <tr><th>item</th>{{#columns}}<th>{{.}}</th>{{/columns}}</tr>
        {{#rows}}<tr><td>{{#thumb}}<img src="{{thumb}}" alt="{{name}}" width="48" height="48"> {{/thumb}}<a href="{{href}}">{{name}}</a></td>{{#cells}}<td>{{.}}</td>{{/cells}}</tr>{{/rows}}
      </table>
      {{/hasRows}}
      {{/views}}
    </section>
    <section id="methods">
      <h2>Methods</h2>
      <div class="cards">
      {{#cards}}
        <div class="card"><strong>{{title}}</strong> <span class="muted">({{name}})</span>
          <p>{{meaning}}</p>{{#mode}}<p class="muted">Mode: {{mode}}</p>{{/mode}}<p class="muted">Cost: {{cost}}</p><p class="muted">Limits: {{limits}}</p>
          {{#stability}}<p{{#unstable}} class="bad"{{/unstable}}>{{stability}}</p>{{/stability}}</div>
      {{/cards}}
      </div>
      <p class="muted">Overlays: each heatmap is normalized to [0,1] per image, clipped at its 99.5th percentile and drawn
        with the {{colormap}} colormap (perceptually uniform and readable with the common forms of colour blindness), its
        opacity growing with the relevance, so that the image shows untouched where the heatmap is low.</p>
      {{{colorBar}}}
    </section>
    </main>
    </body>
    </html>
    """

    static let gallery = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}}</title>
    \(style)
    </head>
    <body>
    \(header)
    <main>
    <nav><a href="index.html">index</a> · page {{page}} of {{pages}}{{#previous}} · <a href="{{previous}}">previous</a>{{/previous}}{{#next}} · <a href="{{next}}">next</a>{{/next}}</nav>
    <p><label>Filter by file name: <input type="search" id="filter" placeholder="e.g. slide_01"></label>
      <span class="muted">{{count}} items of class {{className}} on this page; red border: misclassified.</span></p>
    {{{colorBar}}}
    <div class="gallery" id="gallery">
    {{#items}}
      <figure class="item{{#wrong}} wrong{{/wrong}}" data-name="{{name}}">
        <div class="row">
          <figure>{{#thumb}}<img src="{{thumb}}" alt="original image {{name}}" width="96" height="96">{{/thumb}}{{^thumb}}<span class="bad">image unreadable</span>{{/thumb}}<figcaption>original</figcaption></figure>
          {{#overlays}}<figure>{{#thumb}}<img src="{{thumb}}" alt="{{explainer}} heatmap over {{name}}" width="96" height="96">{{/thumb}}<figcaption>{{explainer}}{{#lesion}}<br>{{lesion}}{{/lesion}}{{#unstable}}<br><span class="bad">unstable</span>{{/unstable}}</figcaption></figure>{{/overlays}}
        </div>
        <figcaption class="meta"><a href="{{href}}"><strong>{{name}}</strong></a> — predicted <strong>{{prediction}}</strong> (p = {{probability}}) · label {{label}}{{#wrong}} <span class="bad">misclassified</span>{{/wrong}} · <a href="{{doctorHref}}">case page</a></figcaption>
      </figure>
    {{/items}}
    </div>
    <script>
    document.getElementById("filter").addEventListener("input", function (e) {
      var q = e.target.value.toLowerCase();
      document.querySelectorAll("#gallery > figure.item").forEach(function (f) {
        f.style.display = f.getAttribute("data-name").toLowerCase().indexOf(q) >= 0 ? "" : "none";
      });
    });
    </script>
    </main>
    </body>
    </html>
    """

    static let item = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{name}} — Candela</title>
    \(style)
    </head>
    <body>
    \(header)
    <main>
    <nav><a href="../index.html">index</a> · <a href="../{{galleryHref}}">gallery</a> · <a href="../{{doctorHref}}">case page for a doctor</a></nav>
    <h2>{{name}}</h2>
    <p>Predicted <strong>{{prediction}}</strong> (p = {{probability}}) · label {{label}}{{#wrong}} <span class="bad">misclassified</span>{{/wrong}}</p>
    <p class="muted">{{path}}</p>
    <table>
      <caption class="muted">Class probabilities (softmax of the model's scores).</caption>
      <tr><th>class</th><th>probability</th></tr>
      {{#probabilities}}<tr><td>{{className}}</td><td class="num">{{value}}</td></tr>{{/probabilities}}
    </table>
    {{#hasModelPredictions}}
    <table id="model-predictions">
      <caption class="muted">Every model of the run on this item.</caption>
      <tr><th>model</th><th>predicted</th><th>probability</th></tr>
      {{#modelPredictions}}<tr><td>{{model}}</td><td{{#wrong}} class="bad"{{/wrong}}>{{className}}</td><td class="num">{{probability}}</td></tr>{{/modelPredictions}}
    </table>
    {{/hasModelPredictions}}
    {{#image}}<form class="view-switch" aria-label="what the heatmap figures show">Show:
      <label><input type="radio" name="view" id="view-overlay" checked> heatmap over the image</label>
      <label><input type="radio" name="view" id="view-map"> heatmap alone</label>
      <label><input type="radio" name="view" id="view-image"> image alone</label></form>{{/image}}
    <div class="row big">
      <figure>{{#image}}<img src="../{{image}}" alt="original image {{name}}" width="256" height="256">{{/image}}<figcaption>original</figcaption></figure>
      {{#overlays}}<figure><img class="v-ov" src="../{{image}}" alt="{{explainer}} heatmap over {{name}}" width="256" height="256">{{#map}}<img class="v-map" src="../{{map}}" alt="{{explainer}} heatmap alone" width="256" height="256">{{/map}}{{#original}}<img class="v-img" src="../{{original}}" alt="the image without the heatmap" width="256" height="256">{{/original}}{{#signedBar}}<br>{{{signedBar}}}{{/signedBar}}<figcaption>{{explainer}} ({{method}}), class {{targetName}}{{#scale}}<br><span class="muted">{{scale}}</span>{{/scale}}{{#stability}}<br><span class="{{#unstable}}bad{{/unstable}}{{^unstable}}muted{{/unstable}}">{{stability}}{{#unstable}}: unstable, a rerun with another seed would draw a different picture{{/unstable}}</span>{{/stability}}{{#array}}<br><a href="../{{array}}">heatmap array (.npy)</a>{{/array}}</figcaption></figure>{{/overlays}}
    </div>
    {{{colorBar}}}
    <table>
      <caption class="muted">Metrics of each heatmap (see the index for what each means).</caption>
      <tr><th>explainer</th><th>metric</th><th>value</th></tr>
      {{#metrics}}<tr><td>{{explainer}}</td><td>{{name}}</td><td class="num">{{value}}</td></tr>{{/metrics}}
    </table>
    </main>
    </body>
    </html>
    """

    /// One printable page per case. Sized to fit A4 (210 × 297 mm) and Letter (216 × 279 mm):
    /// the content stays within 186 × 250 mm with 12 mm margins on either paper.
    static let doctor = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <title>Case {{name}}</title>
    <style>
      @page { margin: 12mm; }
      body { font-family: Georgia, "Times New Roman", serif; color: #111; background: #fff; margin: 0 auto; max-width: 186mm; font-size: 11pt; }
      h1 { font-size: 18pt; margin: 0 0 2mm 0; }
      .answer { font-size: 14pt; margin: 3mm 0; }
      .images { display: flex; gap: 6mm; margin: 4mm 0; }
      .images figure { margin: 0; width: 88mm; }
      .images img { width: 88mm; height: 88mm; display: block; border: 1px solid #999; }
      figcaption { font-size: 10pt; margin-top: 1.5mm; }
      .box { border: 1px solid #999; padding: 3mm 4mm; margin: 3mm 0; }
      table { border-collapse: collapse; font-size: 10pt; }
      td, th { border: 1px solid #bbb; padding: 1mm 3mm; text-align: left; }
      .muted { color: #444; font-size: 9pt; }
      @media screen { body { padding: 10mm; } }
      @media print { a { color: #111; text-decoration: none; } .noprint { display: none; } }
    </style>
    </head>
    <body>
    <p class="noprint"><a href="../index.html">report index</a> · <a href="../{{itemHref}}">technical page</a> · print this page for the case file</p>
    <h1>Case {{name}}</h1>
    <p class="muted">Automated review by the {{model}} model, {{started}}. This is a decision aid for a qualified reader, not a diagnosis.</p>
    <p class="answer">The model's answer: <strong>{{prediction}}</strong> (probability {{probabilityPercent}}).{{#label}} Recorded label: {{label}}.{{/label}}</p>
    <div class="images">
      <figure>{{#image}}<img src="../{{image}}" alt="the image that was analysed: {{name}}">{{/image}}<figcaption>The image as submitted.</figcaption></figure>
      <figure>{{#overlay}}<img src="../{{overlay}}" alt="the same image with the regions that raised the model's {{targetName}} score highlighted">{{/overlay}}
        <figcaption>{{caption}}</figcaption></figure>
    </div>
    {{{colorBar}}}
    <div class="box">
      <strong>How to read the highlighted picture.</strong> {{meaning}}
      Bright yellow marks where this mattered most, dark purple where it mattered least; the scale is relative to this image only.
    </div>
    <div class="box">
      <strong>What it cannot tell you.</strong> {{limits}} A highlighted region shows what the model used, not that the
      model is right: a model can rely on the wrong feature and still be confident. {{#trust}}{{trust}}{{/trust}}
    </div>
    {{#unstable}}<div class="box" style="border: 2px solid #b3261e"><strong>Uncertain picture.</strong> {{unstable}}</div>{{/unstable}}
    <table>
      <tr><th>possible answer</th><th>model's probability</th></tr>
      {{#probabilities}}<tr><td>{{className}}</td><td>{{percent}}</td></tr>{{/probabilities}}
    </table>
    <p class="muted">Method: {{methodTitle}} ({{explainer}}). Candela {{version}}, run {{runID}}, model file {{modelHash}}.</p>
    </body>
    </html>
    """

    static let slide = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}}</title>
    \(style)
    </head>
    <body>
    \(header)
    <main>
    <nav><a href="../index.html#slides">index</a></nav>
    <h2>{{name}}</h2>
    <p class="muted">{{path}} · {{vendor}} · {{width}} × {{height}} pixels at level 0 · {{mpp}} · levels {{levels}}</p>
    <p>Label {{label}} · tiles of {{tile}} · {{tiles}} tiles on tissue ({{tissue}} of the slide is tissue)</p>
    {{#focus}}<p class="muted">{{focus}}</p>{{/focus}}
    <table id="verdicts">
      <caption class="muted">Verdicts: {{rule}}. Piece 0 is the whole slide.</caption>
      <tr><th>model</th><th>piece</th><th>tiles</th><th>score</th><th>verdict</th><th>mean probabilities</th></tr>
      {{#verdicts}}<tr><td>{{model}}</td><td class="num">{{piece}}</td><td class="num">{{tiles}}</td><td class="num">{{score}}</td>
        <td class="{{#wrong}}bad{{/wrong}}">{{verdict}}</td><td>{{probabilities}}</td></tr>{{/verdicts}}
    </table>
    {{#hasViewer}}
    <link rel="stylesheet" href="../assets/leaflet.css">
    <script src="../assets/leaflet.js"></script>
    <h3>Viewer</h3>
    <p class="muted">Scroll or pinch to zoom, drag to pan; the layer box switches the heatmaps, the tissue mask, the tiles
      coloured by probability and the annotations; click a tile for its probability and its page.
      Layer opacity <input id="opacity" type="range" min="0" max="100" value="100" aria-label="layer opacity"></p>
    <div id="viewer" style="height: 520px; max-width: 1000px; background: #f5f5f5; border: 1px solid #d6d6dc;"></div>
    <div class="muted">Heatmap layers: {{{colorBar}}} (tiles layer: the probability from 0 to 1 in the turbo colormap, more opaque when higher)</div>
    <p class="muted">Viewer: Leaflet (BSD-2-Clause), vendored in <a href="../assets/leaflet-COPYRIGHT.txt">assets/</a>.</p>
    <script>{{{viewerScript}}}</script>
    {{/hasViewer}}
    <div class="row slide">
      <figure><img src="{{view}}" alt="the slide at low resolution" style="width:{{viewWidth}}px;height:auto"><figcaption>slide</figcaption></figure>
      <figure><img src="{{tissueMask}}" alt="tissue mask" style="width:{{viewWidth}}px;height:auto"><figcaption>tissue mask (white: tissue)</figcaption></figure>
    </div>
    <h3>Tiles to look at first</h3>
    <p class="muted"><a href="../{{doctorHref}}">Printable slide page for a doctor</a>.</p>
    {{#topViews}}
    <h4>{{title}}</h4>
    <div class="row">
      {{#tiles}}<figure><a href="{{href}}">{{#thumb}}<img src="{{thumb}}" alt="{{caption}}" width="96" height="96">{{/thumb}}</a>
        <figcaption>{{caption}}</figcaption></figure>{{/tiles}}
    </div>
    {{/topViews}}
    <h3>Stitched heatmaps</h3>
    <p class="muted">Every tile's heatmap on one scale for the slide (raw relevance from the slide's minimum, or from 0 for
      signed maps, to its 99.5th percentile, not per tile); colour grows more opaque with relevance, and where no tile was taken the slide shows
      through. {{{colorBar}}}</p>
    <div class="row slide">
      {{#heatmaps}}<figure><img src="{{image}}" alt="{{explainer}} over the slide" style="width:{{viewWidth}}px;height:auto">
        <figcaption>{{explainer}} · range {{range}} · <a href="{{array}}">.npy</a>{{#slidePointing}}<br>slide pointing game:
          {{slidePointing}} of the most relevant tiles on the annotation{{/slidePointing}}</figcaption></figure>{{/heatmaps}}
    </div>
    </main>
    </body>
    </html>
    """

    /// The SpRAy page: per stage, explainer and class, the eigengap, the embedding and the clusters.
    static let spray = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}}</title>
    \(style)
    </head>
    <body>
    \(header)
    <main>
    <nav><a href="index.html#spray">index</a></nav>
    <h2>Spectral relevance analysis (SpRAy)</h2>
    <p class="muted">Per class, the heatmaps are pooled to a coarse grid and clustered on a nearest-neighbour graph
      (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors"). A cluster is a strategy the model uses on part of the
      class; a <span class="bad">flagged</span> cluster is one whose relevance lies outside the objects (where masks
      exist) or in a fixed place at the image border: look at its montage before trusting the model on such images.</p>
    {{#groups}}
    <section id="{{anchor}}">
    <h3>{{explainer}} · class {{className}} <span class="muted">({{stage}})</span></h3>
    <p>{{count}} heatmaps, {{clusters}} cluster(s) from {{neighbours}} nearest neighbours;
      {{#anyFlagged}}<strong class="bad">{{flaggedCount}} flagged</strong>{{/anyFlagged}}{{^anyFlagged}}none flagged{{/anyFlagged}}.</p>
    <div class="row">{{{scatter}}} {{{eigen}}}</div>
    {{#cards}}
    <div class="cluster{{#flagged}} flagged{{/flagged}}">
      <h4><span style="color:{{color}}">●</span> Cluster {{cluster}}: {{size}} items{{#flagged}} · <span class="bad">flagged</span>{{/flagged}}</h4>
      {{#flagged}}<p class="bad">{{reasons}}</p>{{/flagged}}
      <p class="muted">Where the mean heatmap concentrates: {{place}} (white outline; {{regionShare}} of a member's relevance there,
        median) · relevance outside the object masks: {{outside}} · object lift: {{lift}}</p>
      <div class="row">
        <figure><img src="{{mean}}" alt="mean heatmap of cluster {{cluster}}" width="128" height="128"><figcaption>mean heatmap</figcaption></figure>
        {{#montage}}<figure>{{#href}}<a href="{{href}}">{{/href}}{{#thumb}}<img src="{{thumb}}" alt="{{caption}}" width="96" height="96">{{/thumb}}{{#href}}</a>{{/href}}
          <figcaption>{{caption}}</figcaption></figure>{{/montage}}
      </div>
    </div>
    {{/cards}}
    </section>
    {{/groups}}
    </main>
    </body>
    </html>
    """

    static let doctorSlide = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <title>Slide {{name}}</title>
    <style>
      @page { margin: 12mm; }
      body { font-family: Georgia, "Times New Roman", serif; color: #111; background: #fff; margin: 0 auto; max-width: 186mm; font-size: 10.5pt; }
      h1 { font-size: 17pt; margin: 0 0 2mm 0; }
      .answer { font-size: 13pt; margin: 2mm 0; }
      .images { display: flex; gap: 6mm; margin: 3mm 0; }
      .images figure { margin: 0; width: 88mm; }
      .images img { width: 88mm; height: auto; max-height: 70mm; object-fit: contain; display: block; border: 1px solid #999; }
      .tiles { display: flex; gap: 2mm; flex-wrap: wrap; }
      .tiles figure { margin: 0; width: 28mm; font-size: 8pt; }
      .tiles img { width: 28mm; height: 28mm; display: block; border: 1px solid #999; }
      figcaption { font-size: 9pt; margin-top: 1mm; }
      .box { border: 1px solid #999; padding: 2mm 3mm; margin: 2mm 0; }
      .warning { border: 2px solid #b3261e; padding: 2mm 3mm; margin: 2mm 0; }
      table { border-collapse: collapse; font-size: 9.5pt; }
      td, th { border: 1px solid #bbb; padding: 0.8mm 3mm; text-align: left; }
      .muted { color: #444; font-size: 8.5pt; }
      @media screen { body { padding: 10mm; } }
      @media print { a { color: #111; text-decoration: none; } .noprint { display: none; } }
    </style>
    </head>
    <body>
    <p class="noprint"><a href="../index.html">report index</a> · <a href="../{{slideHref}}">technical slide page</a> · print this page for the case file</p>
    <h1>Slide {{name}}</h1>
    <p class="muted">Automated review by the {{model}} model, {{started}}. This is a decision aid for a qualified reader, not a diagnosis.</p>
    <p class="answer">The model's answer for the slide: <strong>{{verdict}}</strong>{{#score}} (score {{score}}){{/score}}.{{#label}} Recorded label: {{label}}.{{/label}}</p>
    <p class="muted">How the slide's answer is reached: {{rule}}, over the {{tiles}} tiles of tissue the model looked at.</p>
    {{#hasWarnings}}<div class="warning"><strong>Read with care.</strong><ul>{{#warnings}}<li>{{.}}</li>{{/warnings}}</ul></div>{{/hasWarnings}}
    <table>
      <tr><th>tissue piece</th><th>tiles</th><th>answer</th><th>score</th></tr>
      {{#pieces}}<tr><td>{{piece}}</td><td>{{tiles}}</td><td>{{verdict}}</td><td>{{score}}</td></tr>{{/pieces}}
    </table>
    <div class="images">
      <figure><img src="../{{view}}" alt="the slide at low resolution"><figcaption>The slide as scanned.</figcaption></figure>
      <figure>{{#overlay}}<img src="../{{overlay}}" alt="the slide with the regions that raised the model's score highlighted">{{/overlay}}
        <figcaption>The same slide: highlighted where {{methodTitle}} found the most evidence for the model's answer, on one scale for the whole slide.</figcaption></figure>
    </div>
    {{#hasTopTiles}}
    <p><strong>The tiles that weigh most</strong> (highest probability of {{positive}}), with the highlighted evidence:</p>
    <div class="tiles">{{#topTiles}}<figure>{{#thumb}}<img src="../{{thumb}}" alt="{{caption}}">{{/thumb}}<figcaption>{{caption}}</figcaption></figure>{{/topTiles}}</div>
    {{/hasTopTiles}}
    <div class="box"><strong>How to read the highlighted picture.</strong> {{meaning}}</div>
    <div class="box"><strong>What it cannot tell you.</strong> {{limits}} A highlighted region shows what the model used, not that
      the model is right.</div>
    <p class="muted">Method: {{methodTitle}} ({{explainer}}). Candela {{version}}, run {{runID}}, model file {{modelHash}}.</p>
    </body>
    </html>
    """
}
