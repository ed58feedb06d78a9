import ArgumentParser
import Foundation
import Engine
import Pipeline
import Report
import Slides
import Store
import Tensors

struct MakeSlide: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-slide",
        abstract: "Writes a synthetic H&E-like pyramidal slide with planted lesions (for demos and tests).",
        discussion: """
            The slide is an Aperio-layout tiled TIFF at 0.25 µm per pixel (OpenSlide reads it, with its mpp): tissue \
            pieces side by side, 'damaged cell' lesions in pieces 1, 3, ...; --annotation writes the lesions as QuPath \
            GeoJSON polygons in level-0 pixels. Pixels are rendered tile by tile: any size fits in memory.
            """)

    @Option(help: "Output slide (.svs).") var out: String
    @Option(help: "Level-0 width in pixels.") var width: Int = 8192
    @Option(help: "Level-0 height in pixels.") var height: Int = 4096
    @Option(help: "Tissue pieces side by side.") var pieces: Int = 2
    @Option(help: "Lesions in each odd-numbered piece (1, 3, ...).") var lesions: Int = 4
    @Option(help: "Seed of the layout and texture.") var seed: UInt64 = 1
    @Option(help: "Also write the lesions as GeoJSON here.") var annotation: String?
    @Option(help: "Blue pen stroke across the glass at this x (level-0 pixels).") var penX: Int?
    @Option(help: "JPEG quality (0: lossless Deflate).") var quality: Int = 85
    @Option(help: ArgumentHelp("Each piece's extent WxH in level-0 pixels, centred in its slot (default: 76 % of the slot's width, 72 % of the height).",
                               valueName: "WxH")) var pieceSize: String?

    @Option(help: ArgumentHelp("Render the level-0 rectangle X,Y,W,H out of focus.", valueName: "X,Y,W,H")) var blur: String?

    /// "X,Y,W,H" as four numbers, W and H positive.
    static func rectangle(_ text: String) throws -> (x: Double, y: Double, width: Double, height: Double) {
        let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 4, let x = parts[0], let y = parts[1], let w = parts[2], let h = parts[3], w > 0, h > 0 else {
            throw ValidationError("--blur: expected X,Y,W,H in level-0 pixels, e.g. 0,0,2048,1024, got '\(text)'")
        }
        return (x, y, w, h)
    }

    /// "WxH" as two positive numbers.
    static func size(_ text: String) throws -> (width: Double, height: Double) {
        let parts = text.lowercased().split(separator: "x")
        guard parts.count == 2, let w = Double(parts[0]), let h = Double(parts[1]), w > 0, h > 0 else {
            throw ValidationError("--piece-size: expected WxH in pixels, e.g. 8000x2400, got '\(text)'")
        }
        return (w, h)
    }

    func validate() throws {
        guard width >= 256, height >= 256, width <= 1 << 20, height <= 1 << 20 else {
            throw ValidationError("--width and --height must be 256...1048576 pixels")
        }
        guard pieces >= 1, pieces <= 64 else { throw ValidationError("--pieces must be 1...64") }
        guard lesions >= 0, lesions <= 1000 else { throw ValidationError("--lesions must be 0...1000") }
        guard (0...100).contains(quality) else { throw ValidationError("--quality must be 0...100") }
    }

    func run() throws {
        try guarded {
            let size = try pieceSize.map(MakeSlide.size)
            if let size, size.width > Double(width) / Double(pieces) || size.height > Double(height) {
                throw ValidationError("--piece-size \(pieceSize!) does not fit: each of the \(pieces) pieces has a slot of \(width / pieces)x\(height) pixels")
            }
            let layout = SyntheticSlide.layout(width: width, height: height, pieceCount: pieces, lesionsPerPiece: lesions,
                                               pieceSize: size, seed: seed)
            let rectangle = try blur.map(MakeSlide.rectangle)
            let slide = SyntheticSlide(width: width, height: height, pieces: layout.pieces, lesions: layout.lesions,
                                       pen: penX.map { (Double($0), Double(height) * 0.05, Double($0), Double(height) * 0.95) }, seed: seed,
                                       blur: rectangle.map { ($0.x, $0.y, $0.x + $0.width, $0.y + $0.height) })
            let writer = PyramidWriter(mpp: SyntheticSlide.mpp, tileSize: 256, compression: quality == 0 ? .deflate : .jpeg(quality: quality))
            let levels = try writer.write(to: out, width: width, height: height) { x, y, w, h, d in
                slide.render(x: x, y: y, width: w, height: h, downsample: d)
            }
            if let annotation { try Data(slide.lesionGeoJSON.utf8).write(to: URL(fileURLWithPath: annotation)) }
            print("\(out): \(width)x\(height) at \(SyntheticSlide.mpp) µm/px, \(levels.count) levels, \(slide.pieces.count) pieces, "
                  + "\(slide.lesions.count) lesions")
        }
    }
}

struct SlideCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slide",
        abstract: "Audits one slide: tiles on tissue, probabilities, verdicts and stitched heatmaps into a folder.",
        discussion: """
            Runs the pipeline's own code on one slide: it writes DIR/slide.yaml (a manifest you can rerun with \
            'candela run'), the run's store DIR/candela.sqlite, then DIR/tiles.csv (x,y,width,height in level-0 pixels, \
            tissue, piece, p_<class>...), DIR/verdict.json (per slide and tissue piece, with the aggregation rule), \
            DIR/tissue.png, and per method DIR/<method>.npy: the stitched heatmap, float32 [H,W], raw values on the \
            slide's one scale, NaN outside tiles, at --heatmap-mpp µm per pixel; DIR/heatmaps.json gives the scale and \
            the level-0 origin. A rerun reuses every tile already computed.
            """)

    @Option(help: "ONNX model.") var model: String
    @Option(help: "Slide file (any format OpenSlide reads).") var slide: String
    @Option(help: "Output folder (created; a non-empty folder must be one this command wrote).") var out: String
    @Option(help: "Micrometres per pixel of the tiles (default: level 0 as it is).") var mpp: Double?
    @Option(help: "Tile side in pixels (default: the model's input width).") var tile: Int?
    @Option(help: "Pixels shared by neighbouring tiles.") var overlap: Int = 0
    @Option(help: "Smallest tissue share of a tile.") var minTissue: Double = 0.5
    @Option(help: "Micrometres per pixel of the tissue mask.") var tissueMpp: Double = 8
    @Option(help: "Smallest tissue piece in square micrometres.") var minPieceArea: Double = 50_000
    @Option(help: "Explainer method (repeatable).") var method: [String] = []
    @Option(name: .customLong("set"), help: "Method parameter key=value (repeatable; applies to every method).") var settings: [String] = []
    @Option(help: "Class names, comma-separated (default: 0,1,...).") var classes: String?
    @Option(help: "Aggregation rule: \(Aggregation.Rule.allCases.map(\.rawValue).joined(separator: ", ")).") var aggregate: String = "mean"
    @Option(help: "Micrometres per pixel of the stitched heatmaps.") var heatmapMpp: Double = 8
    @Option(help: "Tiles processed in parallel.") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @OptionGroup var preprocessing: PreprocessingOptions
    @OptionGroup var kernelFlags: KernelFlags

    func run() throws {
        try guarded {
            let kernels = try kernelFlags.kernels()
            guard Aggregation.Rule(rawValue: aggregate) != nil else {
                throw ValidationError("--aggregate must be one of \(Aggregation.Rule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard heatmapMpp > 0, mpp.map({ $0 > 0 }) ?? true else { throw ValidationError("--mpp and --heatmap-mpp must be > 0") }
            let fm = FileManager.default
            let marker = "\(out)/candela-slide.json"
            if fm.fileExists(atPath: out), !(try fm.contentsOfDirectory(atPath: out)).isEmpty, !fm.fileExists(atPath: marker) {
                throw ValidationError("\(out): the folder is not empty and was not written by 'candela slide'; give a new folder")
            }
            try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
            try Data("{\"written_by\": \"candela slide\"}\n".utf8).write(to: URL(fileURLWithPath: marker))
            let m = try Model(path: model, kernels: kernels)
            let p = try preprocessing.preprocessing(for: m)
            let outputs = try m.forward(Tensor(shape: [1, 3, p.height, p.width])).shape.last ?? 0
            let names = classes.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
                ?? (0..<outputs).map(String.init)
            let absolute = { (path: String) in URL(fileURLWithPath: path).standardizedFileURL.path }
            // The slide is named by a glob pattern of one file: its metacharacters are escaped.
            func globEscaped(_ s: String) -> String {
                s.reduce(into: "") { out, c in
                    if "*?[]\\".contains(c) { out.append("\\") }
                    out.append(c)
                }
            }
            func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            let parameters = try parseSettings(settings)
            var yaml = """
            pipeline: slide
            datasets:
              slide:
                kind: slides
                glob: \(quoted(globEscaped(absolute(slide))))
                tile: \(tile ?? p.width)
                overlap: \(overlap)
                min_tissue: \(minTissue)
                tissue_mpp: \(tissueMpp)
                min_piece_area: \(minPieceArea)
                aggregate: {rule: \(aggregate)}

            """
            if let mpp { yaml += "    mpp: \(mpp)\n" }
            yaml += """
            models:
              model:
                onnx: \(quoted(absolute(model)))
                classes: [\(names.map(quoted).joined(separator: ", "))]
                preprocessing: {size: [\(p.width), \(p.height)], scale: \(p.scale), mean: \(p.mean), std: \(p.std), channel_order: \(p.channelOrder.rawValue)}

            """
            if !method.isEmpty {
                yaml += "explainers:\n"
                for name in method {
                    let params = parameters.sorted { $0.key < $1.key }.map { "\($0.key): \(quoted($0.value))" }.joined(separator: ", ")
                    yaml += "  \(quoted(name)): {method: \(quoted(name))\(params.isEmpty ? "" : ", params: {\(params)}")}\n"
                }
            }
            yaml += "stages:\n  predict: {kind: predict}\n" + (method.isEmpty ? "" : "  explain: {kind: explain}\n")
            let manifestPath = "\(out)/slide.yaml"
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: manifestPath))
            let plan = try Plan(try ManifestParser.load(path: manifestPath))
            let database = "\(out)/candela.sqlite"
            var options = RunOptions(jobs: max(1, jobs), database: database, handleInterrupts: true, resume: true)
            options.kernels = kernels
            let summary = try Runner(plan: plan, options: options, log: { note($0) }).run()
            let store = try Store(path: database)
            guard let record = try store.slides(run: summary.runID).first, let slideID = record.id else {
                throw SlideError("\(slide): no slide recorded")
            }
            // tiles.csv
            let items = try store.items(run: summary.runID)
            let predictions = Dictionary(try store.predictions(run: summary.runID).map { ($0.itemID, $0) }, uniquingKeysWith: { a, _ in a })
            var csv = "x,y,width,height,tissue,piece," + names.map { "p_\($0)" }.joined(separator: ",") + "\n"
            for item in items {
                guard let t = item.tile, let id = item.id, let pr = predictions[id] else { continue }
                csv += "\(t.x),\(t.y),\(t.width),\(t.height),\(String(format: "%.4f", t.tissue)),\(t.piece),"
                    + pr.probabilities.map { String(format: "%.6f", $0) }.joined(separator: ",") + "\n"
            }
            try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(out)/tiles.csv"))
            try record.tissueMask.write(to: URL(fileURLWithPath: "\(out)/tissue.png"))
            // verdict.json
            let verdicts = try store.slideVerdicts(slide: slideID)
            let verdictJSON: [String: Any] = [
                "slide": record.path, "rule": verdicts.first?.rule ?? "", "tiles": record.tiles,
                "verdicts": verdicts.map { v -> [String: Any] in
                    ["piece": v.piece, "tiles": v.tiles, "class": v.className, "score": v.score.map { $0 as Any } ?? NSNull(),
                     "mean_probabilities": Dictionary(uniqueKeysWithValues: zip(names, v.probabilities))]
                },
            ]
            try JSONSerialization.data(withJSONObject: verdictJSON, options: [.prettyPrinted, .sortedKeys])
                .write(to: URL(fileURLWithPath: "\(out)/verdict.json"))
            // Stitched heatmaps at --heatmap-mpp.
            let mpp0 = record.mppX.map { ($0 + (record.mppY ?? $0)) / 2 }
            let downsample = max(1, heatmapMpp / (mpp0 ?? 1))
            let (mapWidth, mapHeight) = (Double(record.width) / downsample, Double(record.height) / downsample)
            guard mapWidth * mapHeight <= 64_000_000 else {
                throw ValidationError(String(format: "--heatmap-mpp %g makes a %.0f x %.0f map (over 64 Mpixels); give a larger --heatmap-mpp",
                                             heatmapMpp, mapWidth, mapHeight))
            }
            // The pipeline's stitching at --heatmap-mpp (one model in this run).
            let maps = try SlideRecords.stitch(items.filter { $0.tile != nil }, of: record, downsample: downsample, store: store)
            var methods: [String: Any] = [:]
            for m in maps {
                try NPY.write(Tensor(shape: [m.height, m.width], data: m.values), to: "\(out)/\(m.explainer).npy")
                methods[m.explainer] = ["file": "\(m.explainer).npy", "low": m.low.map { $0 as Any } ?? NSNull(), "high": m.high.map { $0 as Any } ?? NSNull()]
            }
            let heatmapsJSON: [String: Any] = [
                "micrometres_per_pixel": mpp0.map { $0 * downsample as Any } ?? NSNull(), "level0_pixels_per_pixel": downsample,
                "origin_level0": [0, 0], "width": maps.first?.width ?? 0, "height": maps.first?.height ?? 0,
                "methods": methods,
            ]
            try JSONSerialization.data(withJSONObject: heatmapsJSON, options: [.prettyPrinted, .sortedKeys])
                .write(to: URL(fileURLWithPath: "\(out)/heatmaps.json"))
            let main = verdicts.first { $0.piece == 0 }
            print("\(record.path): \(record.tiles) tiles, verdict \(main?.className ?? "—")"
                  + (main?.score.map { String(format: " (score %.3f)", $0) } ?? "") + "; written to \(out)")
            if summary.failures > 0 { throw ExitCode(2) }
        }
    }
}

/// `candela read-slide`: the pipeline's slide input path alone (open, tissue, grid, every tile
/// read and resampled), timed; what `make bench` compares with openslide-python + NumPy.
struct ReadSlide: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-slide",
        abstract: "Times reading a slide as a slide dataset does: tissue detection, the tile grid, every tile read and resampled.")

    @Option(help: "Slide file (any format OpenSlide reads).") var slide: String
    @Option(help: "Micrometres per pixel of the tiles (default: level 0 as it is).") var mpp: Double?
    @Option(help: "Tile side in pixels.") var tile: Int = 224
    @Option(help: "Smallest tissue share of a tile.") var minTissue: Double = 0.5
    @Option(help: "Threads reading tiles.") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Also write the tiles as CSV (x,y,width,height in level-0 pixels, level, level_width, level_height), for comparisons.")
    var tilesCsv: String?
    @Option(help: "Also write the report's viewer pyramid (deep-zoom JPEG tiles on tissue) into this new folder, timed.")
    var viewer: String?

    func run() throws {
        try guarded {
            guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
            if let viewer, let contents = try? FileManager.default.contentsOfDirectory(atPath: viewer), !contents.isEmpty {
                throw ValidationError("--viewer \(viewer): the folder is not empty; give a new folder")
            }
            let t0 = Date()
            let opened = try Slide(path: slide)
            let t1 = Date()
            let grid = try TileGrid(slide: opened, options: TilingOptions(mpp: mpp, tile: tile, minTissue: minTissue))
            let t2 = Date()
            // Every tile, `jobs` threads pulling from one counter, each with its own handle (as the
            // pipeline's workers share one SlideCache).
            let cache = SlideCache()
            let next = Counter()
            let tiles = grid.tiles
            let outcome = Outcome()
            DispatchQueue.concurrentPerform(iterations: jobs) { _ in
                do {
                    let s = try cache.slide(slide)
                    while true {
                        let i = next.take()
                        if i >= tiles.count { break }
                        _ = try TileGrid.read(tiles[i], from: s)
                        if i == 0 { outcome.set(first: Date().timeIntervalSince(t0)) }
                    }
                } catch {
                    outcome.set(failure: error)
                }
            }
            if let failure = outcome.failure { throw failure }
            let firstTile = outcome.first
            let t3 = Date()
            if let tilesCsv {
                let rows = tiles.map { "\($0.x),\($0.y),\($0.width),\($0.height),\($0.level),\($0.levelWidth),\($0.levelHeight)" }
                try Data((["x,y,width,height,level,level_width,level_height"] + rows).joined(separator: "\n").appending("\n").utf8)
                    .write(to: URL(fileURLWithPath: tilesCsv))
            }
            var result: [String: Any] = [
                "slide": slide, "width": opened.width, "height": opened.height, "tiles": tiles.count, "tile": tile,
                "level": tiles.first?.level ?? 0, "jobs": jobs,
                "open_seconds": t1.timeIntervalSince(t0), "tissue_and_grid_seconds": t2.timeIntervalSince(t1),
                "read_seconds": t3.timeIntervalSince(t2), "total_seconds": t3.timeIntervalSince(t0),
                "first_tile_seconds": firstTile.isNaN ? NSNull() : firstTile as Any,
                "tiles_per_second": Double(tiles.count) / max(1e-9, t3.timeIntervalSince(t2)),
            ]
            if let viewer {
                // The report's slide viewer pyramid, as `candela report` writes it for this slide.
                let started = Date()
                let pyramid = try DeepZoomWriter(directory: viewer).write(opened, key: "slide", finest: grid.scale, tissue: grid.mask.image)
                let seconds = Date().timeIntervalSince(started)
                var bytes = 0
                for f in pyramid.files {
                    bytes += (try FileManager.default.attributesOfItem(atPath: "\(viewer)/\(f)")[.size] as? Int) ?? 0
                }
                let slideBytes = (try FileManager.default.attributesOfItem(atPath: slide)[.size] as? Int) ?? 0
                result["viewer"] = ["tiles": pyramid.written, "seconds": seconds, "tiles_per_second": Double(pyramid.written) / max(seconds, 1e-9),
                                    "bytes": bytes, "slide_bytes": slideBytes, "glass_left_out": pyramid.grid - pyramid.written,
                                    "zooms": pyramid.maxZoom + 1]
                if !json {
                    print(String(format: "viewer: %d tiles in %.2f s (%.0f tiles/s, %d threads), %.1f MB = %.3f of the slide file (%.1f MB); %d tiles on glass left out",
                                 pyramid.written, seconds, Double(pyramid.written) / max(seconds, 1e-9), ProcessInfo.processInfo.activeProcessorCount,
                                 Double(bytes) / 1e6, Double(bytes) / Double(max(slideBytes, 1)), Double(slideBytes) / 1e6,
                                 pyramid.grid - pyramid.written))
                }
            }
            if json {
                print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(String(format: "%@: %d x %d, %d tiles of %d px (level %d): open %.2f s, tissue + grid %.2f s, read %.2f s (%.0f tiles/s, %d threads)",
                             slide, opened.width, opened.height, tiles.count, tile, tiles.first?.level ?? 0, t1.timeIntervalSince(t0),
                             t2.timeIntervalSince(t1), t3.timeIntervalSince(t2), Double(tiles.count) / max(1e-9, t3.timeIntervalSince(t2)), jobs))
            }
        }
    }

    /// What the reading threads report.
    final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var first = Double.nan
        private(set) var failure: Error?
        func set(first value: Double) { lock.lock(); first = value; lock.unlock() }
        func set(failure value: Error) { lock.lock(); if failure == nil { failure = value }; lock.unlock() }
    }

    /// A shared cursor over the tiles.
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func take() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value - 1 }
    }
}
