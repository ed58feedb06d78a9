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

    /// Writes the slide's viewer pyramid (`DeepZoomWriter`) into the report, reusing the tiles
    /// an earlier report wrote.
    func writeDeepZoom(_ slide: Slide, key: String, finest: Double, tissue: Image, used: inout Set<String>) throws -> DeepZoomWriter.Pyramid {
        let folder = self.folder
        let pyramid = try DeepZoomWriter(directory: directory, reuse: { folder.wroteBefore($0) })
            .write(slide, key: key, finest: finest, tissue: tissue)
        used.formUnion(pyramid.files)
        return pyramid
    }

    /// A map of values in [0, 1] as an RGBA PNG for the viewer (the tiles coloured by
    /// probability): colormap, opacity 0.8 · value, transparent where NaN.
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
          // A pyramid of the tiles Candela wrote (a bit per tile and zoom); `absent` elsewhere.
          function pyramid(template, grids, absent, options) {
            var present = grids.map(function (g) { return {cols: g[0], rows: g[1], bits: atob(g[2])}; });
            var Layer = L.TileLayer.extend({getTileUrl: function (p) {
              var g = present[p.z], i = p.y * g.cols + p.x;
              var on = g && p.x >= 0 && p.y >= 0 && p.x < g.cols && p.y < g.rows && (g.bits.charCodeAt(i >> 3) >> (i & 7)) & 1;
              return on ? template.replace('{z}', p.z).replace('{x}', p.x).replace('{y}', p.y) : absent;
            }});
            return new Layer(template, L.extend({tileSize: 256, noWrap: true, bounds: bounds, maxNativeZoom: c.maxZoom,
                                                 maxZoom: c.maxZoom + 2, minZoom: 0}, options));
          }
          pyramid(c.tiles, c.grids, c.glass, {}).addTo(map);
          var overlays = {};
          c.layers.forEach(function (l, i) {
            var layer = l.grids ? pyramid(l.tiles, l.grids, c.clear, {className: 'candela-heat'})
                                : L.imageOverlay(l.image, bounds, {opacity: 1, interactive: false});
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

/// The zooms of the viewer's pyramids over a slide of `width` × `height` level-0 pixels: tiles of
/// `ReportWriter.viewerTile` pixels; at `maxZoom` one pixel is `finest` level-0 pixels, each
/// coarser zoom halves that, and zoom 0 fits the slide in one tile.
struct ZoomGrid: Sendable {
    let width: Int, height: Int
    let finest: Double
    let maxZoom: Int

    init(width: Int, height: Int, finest: Double) {
        (self.width, self.height, self.finest) = (width, height, finest)
        maxZoom = max(0, Int(ceil(log2(Double(max(width, height)) / finest / Double(ReportWriter.viewerTile)))))
    }

    /// Zoom `z`'s columns and rows of tiles, and the level-0 pixels a tile spans.
    func level(_ z: Int) -> (cols: Int, rows: Int, span: Double) {
        let span = Double(ReportWriter.viewerTile) * finest * pow(2, Double(maxZoom - z))
        return (Int(ceil(Double(width) / span)), Int(ceil(Double(height) / span)), span)
    }
}

/// The first error of concurrent work, kept to be thrown once the work is done.
final class FirstError: @unchecked Sendable {
    private var error: Error?
    private let lock = NSLock()
    func record(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
    func rethrow() throws { lock.lock(); defer { lock.unlock() }; if let error { throw error } }
}

/// The slide viewer's tile pyramid `slides/<key>/<z>/<x>_<y>.jpg` under `directory`: 256-pixel
/// JPEG tiles; zoom 0 fits the slide in one tile; the finest zoom is the resolution the model's
/// tiles were cut at (`finest` level-0 pixels per pixel). Only tiles that touch tissue (the
/// stored mask, one mask pixel of margin) are written, and every tile of the coarse zooms (at
/// most 64 tiles each); the others are glass, one shared `glass.jpg`. A tile is made from its
/// four children when all were written (box-averaged 2 × 2), else read from the slide's coarsest
/// level fine enough and resampled. Each zoom's tiles are written on every core. A tile for
/// which `reuse` says yes (written by an earlier report) is kept as it is.
public struct DeepZoomWriter: Sendable {
    public let directory: String
    public let reuse: @Sendable (String) -> Bool

    public init(directory: String, reuse: @escaping @Sendable (String) -> Bool = { _ in false }) {
        self.directory = directory
        self.reuse = reuse
    }

    /// The deep-zoom pyramid the viewer loads: how many zooms, and per zoom the grid and which
    /// tiles were written (the rest are glass and show `glass.jpg`).
    public struct Pyramid {
        public var maxZoom: Int
        /// Per zoom (0 ... maxZoom): columns, rows, and a bit per tile (row-major), set when written.
        public var grids: [(cols: Int, rows: Int, present: [UInt8])]
        /// Tiles written now, tiles kept from an earlier report, and the tiles of every zoom's grid.
        public var written = 0, kept = 0, grid = 0
        /// The pyramid's files (relative to the folder), glass.jpg included.
        public var files: [String] = []

        /// The viewer's description: `[[cols, rows, base64 bits], ...]` by zoom.
        var json: [[Any]] { grids.map { [$0.cols, $0.rows, Data($0.present).base64EncodedString()] } }
    }

    public func write(_ slide: Slide, key: String, finest: Double, tissue: Image) throws -> Pyramid {
        let side = ReportWriter.viewerTile
        let glass: UInt8 = 245
        let zooms = ZoomGrid(width: slide.width, height: slide.height, finest: finest)
        let maxZoom = zooms.maxZoom
        let grid = zooms.level
        @Sendable func file(_ z: Int, _ x: Int, _ y: Int) -> String { "slides/\(key)/\(z)/\(x)_\(y).jpg" }
        let directory = self.directory
        var files: [String] = []
        // Does the level-0 square (x0, y0, span) touch tissue? (the mask dilated by one pixel)
        let (mx, my) = (Double(tissue.width) / Double(slide.width), Double(tissue.height) / Double(slide.height))
        func touchesTissue(_ x0: Double, _ y0: Double, _ span: Double) -> Bool {
            let c0 = max(0, Int(x0 * mx) - 1), c1 = min(tissue.width - 1, Int((x0 + span) * mx) + 1)
            let r0 = max(0, Int(y0 * my) - 1), r1 = min(tissue.height - 1, Int((y0 + span) * my) + 1)
            guard c0 <= c1, r0 <= r1 else { return false }
            for r in r0...r1 { for c in c0...c1 where tissue.pixels[(r * tissue.width + c) * tissue.channels] > 127 { return true } }
            return false
        }
        let glassFile = "slides/\(key)/glass.jpg"
        if !reuse(glassFile) {
            try FileManager.default.createDirectory(atPath: "\(directory)/slides/\(key)", withIntermediateDirectories: true)
            try Codecs.encodeJPEG(Image(width: side, height: side, channels: 3, pixels: [UInt8](repeating: glass, count: side * side * 3)),
                                  quality: 80).write(to: URL(fileURLWithPath: "\(directory)/\(glassFile)"))
        }
        files.append(glassFile)
        let bits = BitGrids(layers: 1, zooms: zooms)
        var (written, kept, all) = (0, 0, 0)
        for z in stride(from: maxZoom, through: 0, by: -1) {
            try FileManager.default.createDirectory(atPath: "\(directory)/slides/\(key)/\(z)", withIntermediateDirectories: true)
            let (cols, rows, span) = grid(z)
            var chosen: [(Int, Int)] = []
            for ty in 0..<rows {
                for tx in 0..<cols where cols * rows <= 64 || touchesTissue(Double(tx) * span, Double(ty) * span, span) {
                    chosen.append((tx, ty))
                    bits.set(0, z, tx, ty)
                }
            }
            let todo = chosen.filter { !reuse(file(z, $0.0, $0.1)) }
            let failures = FirstError()
            DispatchQueue.concurrentPerform(iterations: todo.count) { i in
                let (tx, ty) = todo[i]
                do {
                    var pixels = [UInt8](repeating: glass, count: side * side * 3)
                    let f = span / Double(side) // level-0 pixels per tile pixel
                    let x0 = Int(Double(tx) * span), y0 = Int(Double(ty) * span)
                    let w0 = min(Int(span.rounded()), slide.width - x0), h0 = min(Int(span.rounded()), slide.height - y0)
                    let level = slide.level(forDownsample: f)
                    let ds = slide.levels[level].downsample
                    let (rw, rh) = (max(1, Int((Double(w0) / ds).rounded())), max(1, Int((Double(h0) / ds).rounded())))
                    let children = z == maxZoom ? [] : [(0, 0), (1, 0), (0, 1), (1, 1)].map { (2 * tx + $0.0, 2 * ty + $0.1) }
                        .filter { $0.0 < grid(z + 1).cols && $0.1 < grid(z + 1).rows }
                    if z < maxZoom, children.allSatisfy({ bits.isSet(0, z + 1, $0.0, $0.1) }) || max(rw, rh) > 4 * side {
                        // From the four children below (absent ones are glass), each averaged 2 × 2.
                        for (cx, cy) in children where bits.isSet(0, z + 1, cx, cy) {
                            let child = try Codecs.decode(path: "\(directory)/\(file(z + 1, cx, cy))")
                            let half = Resample.toSize(child, width: side / 2, height: side / 2)
                            let (ox, oy) = ((cx - 2 * tx) * side / 2, (cy - 2 * ty) * side / 2)
                            for r in 0..<(side / 2) { for c in 0..<(side / 2) { for k in 0..<3 {
                                pixels[((oy + r) * side + ox + c) * 3 + k] = half.pixels[(r * side / 2 + c) * 3 + k]
                            } } }
                        }
                    } else {
                        let (w, h) = (max(1, Int((Double(w0) / f).rounded())), max(1, Int((Double(h0) / f).rounded())))
                        let region = try slide.read(x: x0, y: y0, level: level, width: rw, height: rh)
                        let resampled = Resample.toSize(region, width: w, height: h)
                        for r in 0..<min(h, side) { for c in 0..<min(w, side) { for k in 0..<3 {
                            pixels[(r * side + c) * 3 + k] = resampled.pixels[(r * w + c) * 3 + k]
                        } } }
                    }
                    try Codecs.encodeJPEG(Image(width: side, height: side, channels: 3, pixels: pixels), quality: 80)
                        .write(to: URL(fileURLWithPath: "\(directory)/\(file(z, tx, ty))"))
                } catch {
                    failures.record(error)
                }
            }
            try failures.rethrow()
            files += chosen.map { file(z, $0.0, $0.1) }
            (written, kept, all) = (written + todo.count, kept + chosen.count - todo.count, all + cols * rows)
        }
        return Pyramid(maxZoom: maxZoom, grids: bits.grids(0), written: written, kept: kept, grid: all, files: files)
    }
}
