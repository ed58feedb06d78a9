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
    </section>
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
