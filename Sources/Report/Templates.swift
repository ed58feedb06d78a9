/// The report's Mustache templates, compiled into the binary so the report needs no resource files.
enum Templates {
    static let index = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Candela report — {{pipeline}}</title>
    <style>
      body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1d1f; background: #f6f6f8; }
      header { background: #2b2140; color: #fff; padding: 16px 24px; }
      header h1 { margin: 0 0 4px 0; font-size: 22px; }
      header p { margin: 2px 0; font-size: 14px; color: #e4dcf2; }
      main { padding: 16px 24px; }
      section { margin-bottom: 24px; }
      h2 { font-size: 18px; margin: 12px 0; }
      table { border-collapse: collapse; background: #fff; }
      caption { text-align: left; padding: 4px 0; }
      th, td { border: 1px solid #d6d6dc; padding: 4px 10px; text-align: left; font-size: 14px; }
      .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
      .card { background: #fff; border: 1px solid #d6d6dc; border-radius: 6px; padding: 10px 12px; font-size: 13px; }
      .gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 12px; }
      figure.item { background: #fff; border: 1px solid #d6d6dc; border-radius: 6px; margin: 0; padding: 8px; }
      figure.item.wrong { border: 2px solid #b3261e; }
      .row { display: flex; gap: 6px; flex-wrap: wrap; }
      .row figure { margin: 0; text-align: center; font-size: 11px; color: #444; }
      .row img { width: 128px; height: 128px; image-rendering: auto; display: block; }
      figcaption.meta { font-size: 13px; margin-top: 6px; }
      .bad { color: #b3261e; font-weight: 600; }
      .muted { color: #666; }
    </style>
    </head>
    <body>
    <header>
      <h1>Candela report: {{pipeline}}</h1>
      <p>Run started {{started}} · status {{status}} · Candela {{version}}</p>
      <p>Model {{model}} ({{modelHash}}) · {{itemCount}} items · explainers: {{explainers}}</p>
    </header>
    <main>
    <section id="summary">
      <h2>Summary</h2>
      <p>Predictions: {{accuracy}}.</p>
      {{#hasPointing}}
      <table id="pointing-game">
        <caption class="muted">Pointing game: does the heatmap's peak fall on the annotated lesion? Items with a lesion mask only.
          Standard: within 15 px per 224 px of the lesion (Zhang et al. 2016); strict: the peak pixel itself.</caption>
        <tr><th>explainer</th><th>items</th><th>standard hits</th><th>standard</th><th>strict hits</th><th>strict</th></tr>
        {{#pointing}}<tr><td>{{explainer}}</td><td>{{total}}</td><td>{{hits}}</td><td>{{fraction}}</td><td>{{strictHits}}</td><td>{{strictFraction}}</td></tr>{{/pointing}}
      </table>
      {{/hasPointing}}
      {{#hasMetrics}}
      <table id="metrics">
        <caption class="muted">Trust metrics, mean over items (n items with a value). {{#hasSanity}}Sanity check: the
          cascading randomization test of Adebayo et al. (2018) — a heatmap that barely changes when the model's weights
          are re-drawn does not explain the model.{{/hasSanity}}</caption>
        <tr><th>explainer</th>{{#metricNames}}<th title="{{help}}">{{name}}</th>{{/metricNames}}{{#hasSanity}}<th>sanity check</th>{{/hasSanity}}</tr>
        {{#metricRows}}<tr><td>{{explainer}}</td>{{#cells}}<td>{{value}} <span class="muted">({{n}})</span></td>{{/cells}}{{#sanity}}<td{{#sanityFails}} class="bad"{{/sanityFails}}>{{sanity}}</td>{{/sanity}}</tr>{{/metricRows}}
      </table>
      <ul class="muted legend">{{#metricNames}}<li><strong>{{name}}</strong>: {{help}}</li>{{/metricNames}}</ul>
      {{/hasMetrics}}
    </section>
    {{#hasGates}}
    <section id="gates">
      <h2>Gates: <span class="{{#gatesFailed}}bad{{/gatesFailed}}">{{gateVerdict}}</span></h2>
      <table>
        <tr><th>gate</th><th>measure</th><th>value</th><th>needs</th><th>verdict</th></tr>
        {{#gates}}<tr><td>{{name}}</td><td>{{subject}}</td><td>{{value}}</td><td>{{rule}}</td><td{{#failed}} class="bad"{{/failed}}>{{verdict}}</td></tr>{{/gates}}
      </table>
    </section>
    {{/hasGates}}
    {{#hasFailures}}
    <section id="failures">
      <h2 class="bad">Failures</h2>
      <table>
        <tr><th>item</th><th>stage</th><th>message</th></tr>
        {{#failures}}<tr><td>{{path}}</td><td>{{stage}}</td><td>{{message}}</td></tr>{{/failures}}
      </table>
    </section>
    {{/hasFailures}}
    <section id="methods">
      <h2>Methods</h2>
      <div class="cards">
      {{#cards}}
        <div class="card"><strong>{{title}}</strong> <span class="muted">({{name}})</span>
          <p>{{meaning}}</p><p class="muted">Cost: {{cost}}</p><p class="muted">Limits: {{limits}}</p></div>
      {{/cards}}
      </div>
      <p class="muted">Overlays: heatmap normalized to [0,1] per image, colormap {{colormap}} (low = dark purple, high = yellow), blended at 50%.</p>
    </section>
    <section id="gallery">
      <h2>Gallery</h2>
      <div class="gallery">
      {{#items}}
        <figure class="item{{#wrong}} wrong{{/wrong}}">
          <div class="row">
            <figure>{{#original}}<img src="{{original}}" alt="original image {{name}}">{{/original}}{{^original}}<span class="bad">image unreadable</span>{{/original}}<figcaption>original</figcaption></figure>
            {{#overlays}}
            <figure>{{#file}}<img src="{{file}}" alt="{{explainer}} heatmap over {{name}}">{{/file}}<figcaption>{{explainer}} (class {{target}}){{#lesion}}<br>{{lesion}}{{/lesion}}</figcaption></figure>
            {{/overlays}}
          </div>
          <figcaption class="meta"><strong>{{name}}</strong> — predicted <strong>{{prediction}}</strong> (p = {{probability}}) · label {{label}}{{#wrong}} <span class="bad">misclassified</span>{{/wrong}}</figcaption>
        </figure>
      {{/items}}
      </div>
    </section>
    </main>
    </body>
    </html>
    """
}
