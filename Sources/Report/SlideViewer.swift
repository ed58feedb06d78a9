import Foundation
import Imaging
import Slides
import Store

/// The zoomable slide viewer of a slide's report page (docs/report.md, "Slides"): a deep-zoom
/// tile pyramid written from OpenSlide reads, shown with Leaflet (vendored, BSD-2-Clause; no
/// CDN) in a simple pixel coordinate system, with layers the user toggles: each stitched
/// heatmap, the tissue mask, the tiles coloured by probability, and the slide's annotations.
/// Everything the viewer needs is inline or an image file, so it works from file://.
extension ReportWriter {
    static let viewerTile = 256

    /// Leaflet's script, style sheet and licence in `assets/` (checked against their SHA-256).
    func writeLeaflet(_ used: inout Set<String>) throws {
        try FileManager.default.createDirectory(atPath: "\(directory)/assets", withIntermediateDirectories: true)
        for (name, base64) in [("leaflet.js", Leaflet.scriptBase64), ("leaflet.css", Leaflet.styleBase64),
                               ("leaflet-COPYRIGHT.txt", Leaflet.copyrightBase64)] {
            _ = try writeOnce("assets/\(name)", &used) { try Data(base64Encoded: base64)!.write(to: URL(fileURLWithPath: $0)) }
        }
    }

    /// Writes the slide's tile pyramid `slides/<key>/<z>/<x>_<y>.jpg` (256-pixel JPEG tiles; zoom 0
    /// fits the slide in one tile; the finest zoom is the resolution the model's tiles were cut at,
    /// `finest` level-0 pixels per pixel). The finest zoom is read from the slide (the coarsest
    /// level fine enough, resampled); every coarser zoom is made from the four tiles below it,
    /// box-averaged, so no read is larger than a finest tile's. Returns the finest zoom. Tiles named
    /// by slide and place are written once per report folder.
    func writeDeepZoom(_ slide: Slide, key: String, finest: Double, used: inout Set<String>) throws -> Int {
        let side = ReportWriter.viewerTile
        let glass: UInt8 = 245
        let longest = Double(max(slide.width, slide.height)) / finest
        let maxZoom = max(0, Int(ceil(log2(longest / Double(side)))))
        func grid(_ z: Int) -> (cols: Int, rows: Int, span: Double) {
            let span = Double(side) * finest * pow(2, Double(maxZoom - z)) // level-0 pixels a tile covers
            return (Int(ceil(Double(slide.width) / span)), Int(ceil(Double(slide.height) / span)), span)
        }
        func file(_ z: Int, _ x: Int, _ y: Int) -> String { "slides/\(key)/\(z)/\(x)_\(y).jpg" }
        for z in stride(from: maxZoom, through: 0, by: -1) {
            try FileManager.default.createDirectory(atPath: "\(directory)/slides/\(key)/\(z)", withIntermediateDirectories: true)
            let (cols, rows, span) = grid(z)
            for ty in 0..<rows {
                for tx in 0..<cols {
                    _ = try writeOnce(file(z, tx, ty), &used) { path in
                        var pixels = [UInt8](repeating: glass, count: side * side * 3)
                        if z == maxZoom {
                            let f = finest
                            let x0 = Int(Double(tx) * span), y0 = Int(Double(ty) * span)
                            let w0 = min(Int(span.rounded()), slide.width - x0), h0 = min(Int(span.rounded()), slide.height - y0)
                            let (w, h) = (max(1, Int((Double(w0) / f).rounded())), max(1, Int((Double(h0) / f).rounded())))
                            let level = slide.level(forDownsample: f)
                            let ds = slide.levels[level].downsample
                            let region = try slide.read(x: x0, y: y0, level: level, width: max(1, Int((Double(w0) / ds).rounded())),
                                                        height: max(1, Int((Double(h0) / ds).rounded())))
                            let resampled = Resample.toSize(region, width: w, height: h)
                            for r in 0..<min(h, side) { for c in 0..<min(w, side) { for k in 0..<3 {
                                pixels[(r * side + c) * 3 + k] = resampled.pixels[(r * w + c) * 3 + k]
                            } } }
                        } else {
                            // Four children (2x, 2y) .. (2x+1, 2y+1) of the next zoom, each averaged 2 x 2.
                            let below = grid(z + 1)
                            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                                let (cx, cy) = (2 * tx + dx, 2 * ty + dy)
                                guard cx < below.cols, cy < below.rows else { continue }
                                let child = try Codecs.decode(path: "\(directory)/\(file(z + 1, cx, cy))")
                                let half = Resample.toSize(child, width: side / 2, height: side / 2)
                                for r in 0..<(side / 2) { for c in 0..<(side / 2) { for k in 0..<3 {
                                    pixels[((dy * side / 2 + r) * side + dx * side / 2 + c) * 3 + k] = half.pixels[(r * side / 2 + c) * 3 + k]
                                } } }
                            }
                        }
                        try writeJPEG(Image(width: side, height: side, channels: 3, pixels: pixels), to: path, quality: 80)
                    }
                }
            }
        }
        return maxZoom
    }

    /// A stitched heatmap as an RGBA PNG for the viewer: colormap over the slide's range (to its
    /// 99.5th percentile), opacity 0.8 · value, transparent where no tile was taken.
    static func heatmapLayer(_ values: [Float], width: Int, height: Int, colormap: Colormap) -> Image {
        let table = colormap.table
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        for i in 0..<(width * height) where values[i].isFinite {
            let t = min(1, max(0, values[i]))
            let c = table[Int((t * 255).rounded())]
            (pixels[i * 4], pixels[i * 4 + 1], pixels[i * 4 + 2]) = (c.0, c.1, c.2)
            pixels[i * 4 + 3] = UInt8((204 * t).rounded())
        }
        return Image(width: width, height: height, channels: 4, pixels: pixels)
    }

    /// The tissue mask as an RGBA PNG: tissue tinted, glass transparent.
    static func tissueLayer(_ mask: Image) -> Image {
        var pixels = [UInt8](repeating: 0, count: mask.width * mask.height * 4)
        for i in 0..<(mask.width * mask.height) where mask.pixels[i * mask.channels] > 127 {
            (pixels[i * 4], pixels[i * 4 + 1], pixels[i * 4 + 2], pixels[i * 4 + 3]) = (0, 114, 178, 90)
        }
        return Image(width: mask.width, height: mask.height, channels: 4, pixels: pixels)
    }

    /// Text for a place where Leaflet writes HTML (its layer control's labels).
    static func htmlEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }

    /// The viewer's script: the pyramid, the overlay layers with a layer control and an opacity
    /// slider, the annotations, and a click on a tile showing its probability and a link to it.
    static func viewerScript(config: String) -> String {
        """
        (function () {
          var c = \(config);
          var map = L.map('viewer', {crs: L.CRS.Simple, minZoom: 0, maxZoom: c.maxZoom + 2, zoomSnap: 0.25});
          // Level-0 pixels to map coordinates: at the finest zoom one tile pixel is c.finest level-0 pixels.
          function ll(x, y) { return map.unproject([x / c.finest, y / c.finest], c.maxZoom); }
          var bounds = L.latLngBounds(ll(0, 0), ll(c.width, c.height));
          L.tileLayer(c.tiles, {tileSize: 256, noWrap: true, bounds: bounds, maxNativeZoom: c.maxZoom, maxZoom: c.maxZoom + 2,
                                minZoom: 0}).addTo(map);
          var overlays = {};
          c.layers.forEach(function (l, i) {
            var layer = L.imageOverlay(l.image, bounds, {opacity: 1, interactive: false});
            overlays[l.name] = layer;
            if (i === 0) layer.addTo(map);
          });
          if (c.annotations) {
            overlays['annotations'] = L.geoJSON(c.annotations, {coordsToLatLng: function (p) { return ll(p[0], p[1]); },
              style: {color: '#c00', weight: 2, fill: false}}).addTo(map);
          }
          L.control.layers(null, overlays, {collapsed: false}).addTo(map);
          // The heatmaps' colour scale inside the map, where the eye is (built by Candela, escaped there).
          var legend = L.control({position: 'bottomleft'});
          legend.onAdd = function () {
            var d = L.DomUtil.create('div', 'candela-legend');
            d.style.background = 'rgba(255,255,255,0.85)'; d.style.padding = '4px 6px'; d.style.borderRadius = '4px';
            d.innerHTML = '<div style="font-size:11px;color:#333">heatmap layers</div>' + c.legend;
            return d;
          };
          legend.addTo(map);
          var slider = document.getElementById('opacity');
          slider.addEventListener('input', function () {
            Object.keys(overlays).forEach(function (k) { if (overlays[k].setOpacity) overlays[k].setOpacity(slider.value / 100); });
          });
          map.fitBounds(bounds);
          map.on('click', function (e) {
            var p = map.project(e.latlng, c.maxZoom), x = p.x * c.finest, y = p.y * c.finest;
            for (var i = 0; i < c.cells.length; i++) {
              var t = c.cells[i];
              if (x >= t[0] && y >= t[1] && x < t[0] + t[2] && y < t[1] + t[3]) {
                var div = document.createElement('div');
                div.appendChild(document.createTextNode('tile ' + t[0] + ', ' + t[1] + ': p(' + c.positive + ') = ' + t[4].toFixed(3) + ' '));
                var a = document.createElement('a');
                a.href = t[5]; a.textContent = 'tile page';
                div.appendChild(a);
                L.popup().setLatLng(e.latlng).setContent(div).openOn(map);
                return;
              }
            }
          });
          map.candelaConfig = c;
          window.candelaViewer = map;
        })();
        """
    }
}
