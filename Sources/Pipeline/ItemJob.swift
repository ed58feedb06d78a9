import Engine
import Explainers
import Foundation
import Imaging
import Slides
import Store
import Tensors

/// A model ready to run: loaded, hashed, checked against its class list.
struct LoadedModel: @unchecked Sendable {
    let spec: ModelSpec
    let model: Model
    let hash: String

    /// Loads `spec`'s ONNX file and checks that one zero input at the preprocessing size gives
    /// one score per class. Every pass of the model runs `kernels`.
    init(_ spec: ModelSpec, kernels: KernelOptions) throws {
        let model = try Model(path: spec.onnx, kernels: kernels)
        let p = spec.preprocessing
        try Limits.checkShape([1, 3, p.height, p.width], "\(spec.onnx): model '\(spec.name)' input at its preprocessing size")
        let probe = try model.forward(Tensor(shape: [1, 3, p.height, p.width]))
        guard probe.rank == 2, probe.shape[1] == spec.classes.count else {
            throw PipelineError("\(spec.onnx): model '\(spec.name)' outputs shape \(probe.shape) but the manifest lists \(spec.classes.count) classes")
        }
        self.spec = spec
        self.model = model
        self.hash = try LoadedModel.hash(model)
    }

    /// The model's identity for cache keys: the file's SHA-256, and with external data the
    /// SHA-256 of each data file as well (named relative to the model's folder), so that new
    /// weights in a side file never serve old heatmaps.
    static func hash(_ model: Model) throws -> String {
        let fileHash = try Hashing.sha256(file: model.path)
        guard !model.dataFiles.isEmpty else { return fileHash }
        let folder = URL(fileURLWithPath: model.path).deletingLastPathComponent().resolvingSymlinksInPath().path + "/"
        var parts = [fileHash]
        for file in model.dataFiles {
            let name = file.hasPrefix(folder) ? String(file.dropFirst(folder.count)) : file
            parts.append("\(name)=\(try Hashing.sha256(file: file))")
        }
        return Hashing.sha256(parts.joined(separator: "\n"))
    }

    /// The store's row for this model.
    var record: ModelRecord {
        get throws {
            ModelRecord(hash: hash, name: spec.name, path: spec.onnx, classes: spec.classes,
                        preprocessing: String(decoding: try JSONEncoder.canonical.encode(spec.preprocessing), as: UTF8.self))
        }
    }
}

/// An explainer instantiated for one model, with its cache-key parameters.
struct ExplainerWork: @unchecked Sendable {
    let planned: PlannedExplainer
    let explainer: any Explainer
    /// The canonical parameters for the cache key (with the SHA-256 of every file they name).
    let parameterKey: String

    /// `planned`'s method with its parameters; a CAM method without a `layer` takes the model's
    /// `cam_layer` (as `candela explain --layer` would).
    init(_ planned: PlannedExplainer, for model: ModelSpec) throws {
        var parameters = planned.spec.parameters
        if ExplainerRegistry.usesLayer(planned.spec.method), parameters["layer"] == nil, let layer = model.camLayer {
            parameters["layer"] = layer
        }
        self.planned = planned
        self.explainer = try ExplainerRegistry.make(method: planned.spec.method, parameters: parameters)
        self.parameterKey = try ExplainerWork.parameterKey(explainer.parameters)
    }

    /// An explainer's parameters for its cache key: the canonical JSON of the values, and for
    /// every value that names an existing file (an integrated-gradients baseline, LIME segments)
    /// the file's SHA-256, so that a changed file is a new key.
    static func parameterKey(_ parameters: [String: String]) throws -> String {
        var keyed = parameters
        for (name, value) in parameters {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: value, isDirectory: &isDirectory), !isDirectory.boolValue {
                keyed[name + "#sha256"] = try Hashing.sha256(file: value)
            }
        }
        return canonicalJSON(keyed)
    }
}

/// One model of a run with what runs on it for one dataset.
struct ModelWork: @unchecked Sendable {
    let model: LoadedModel
    let explainers: [ExplainerWork]
    /// The randomization check's cascade (top layer, top two, ..., all re-drawn), when a metric
    /// asks for it.
    let randomized: [Model]?
    /// How the run summary names this model's explainers: the explainer alone in a one-model
    /// run, "explainer [model]" otherwise.
    let showModel: Bool

    func label(_ explainer: String) -> String { showModel ? "\(explainer) [\(model.spec.name)]" : explainer }
}

/// One item's rows, written together (the item is the unit of commit).
struct ItemRows {
    var item: ItemRecord
    var predictions: [PredictionRecord]
    var attributions: [AttributionRecord]
    var metrics: [MetricRecord]
    var curves: [CurveRecord] = []
}

/// The outcome of one item, for the run summary, with the rows to store.
struct ItemOutcome {
    var rows: ItemRows?
    /// Pointing-game hit per explainer label (`ModelWork.label`).
    var pointing: [String: Bool] = [:]
    /// Heatmaps computed, heatmaps reused from the store by cache key, and explainers left out
    /// by their `only:` scope.
    var computed = 0
    var reused = 0
    var skipped = 0
}

/// The item job (DESIGN.md §5): one item of a dataset through every model that covers the
/// dataset: load, forward, explainers, metrics; the rows come back for one write.
///
/// Work whose result is already in the store is not done again: a prediction is reused when
/// the same model saw the same image bytes, a heatmap when its cache key is stored. When
/// everything is cached the image is not even decoded. The image is read and decoded once
/// for all models; each model's preprocessing and forward pass happen at most once.
struct ItemJob {
    let item: DatasetItem
    let dataset: String
    let runID: Int64
    let models: [ModelWork]
    let library: SlideCache

    /// A tile is read from its slide (the pixels are its content: their SHA-256 is its hash);
    /// an image file is hashed as bytes and decoded only when something needs its pixels.
    func run(store: Store, recent: RecentAttributions) throws -> ItemOutcome {
        var decoded: Image?
        let contentHash: String
        var bytes = Data()
        var sharpness: Double?
        if let tile = item.tile, let slide = item.slide {
            let pixels = try TileGrid.read(tile, from: try library.slide(slide))
            decoded = pixels
            sharpness = Focus.sharpness(pixels)
            contentHash = Hashing.sha256(Data(pixels.pixels) + Data("\(pixels.width)x\(pixels.height)x\(pixels.channels)".utf8))
        } else {
            guard let data = FileManager.default.contents(atPath: item.path) else {
                throw PipelineError("\(item.path): cannot read image")
            }
            bytes = data
            contentHash = Hashing.sha256(data)
        }
        func image() throws -> Image {
            if let decoded { return decoded }
            do {
                decoded = try Codecs.decode(bytes)
            } catch let e as ImagingError {
                throw ImagingError("\(item.path): \(e.description)")
            }
            return decoded!
        }
        var outcome = ItemOutcome()
        let tile = item.tile.map { t in
            TileRecord(slidePath: item.slide ?? "", x: t.x, y: t.y, width: t.width, height: t.height, level: t.level,
                       tissue: t.tissue, piece: t.piece, sharpness: sharpness)
        }
        var rows = ItemRows(item: ItemRecord(runID: runID, dataset: dataset, path: item.path, label: item.label,
                                             maskPath: item.mask, tissueMaskPath: item.tissueMask, contentHash: contentHash,
                                             width: 0, height: 0, tile: tile, annotationPath: item.annotation),
                            predictions: [], attributions: [], metrics: [])
        for work in models {
            let size = try run(work, contentHash: contentHash, image: image, store: store, recent: recent, into: &rows, &outcome)
            (rows.item.width, rows.item.height) = size
        }
        outcome.rows = rows
        return outcome
    }

    /// Whether an explainer's `only:` scope takes this item: its prediction by the model (the
    /// class and probability asked for) and, for `annotated`, a tile overlapping its slide's
    /// annotation (its lesion mask at the model's size, the one the pointing game uses, has an
    /// annotated pixel). A class the model does not have takes nothing.
    func covers(_ only: ExplainerScope, prediction: PredictionRecord, classes: [String], lesion: () throws -> [Float]?) throws -> Bool {
        var index = prediction.classIndex
        if let name = only.className {
            guard let i = classes.firstIndex(of: name) else { return false }
            if only.probability == nil && prediction.classIndex != i { return false }
            index = i
        }
        if let p = only.probability, index >= prediction.probabilities.count || prediction.probabilities[index] < p { return false }
        if only.annotated {
            guard item.annotation != nil, item.tile != nil, try lesion() != nil else { return false }
        }
        return true
    }

    /// The prediction of a model's class scores: softmax, top-1. Non-finite scores are an error
    /// naming the item and the output (no prediction is stored for it).
    static func prediction(logits: [Float], classes: [String], modelHash: String, output: String, item: String) throws -> PredictionRecord {
        let nonFinite = logits.filter { !$0.isFinite }.count
        guard nonFinite == 0 else {
            throw PipelineError("\(item): the model's output '\(output)' has \(nonFinite) non-finite "
                                + "values (NaN or Inf) of \(logits.count); no prediction is stored for it")
        }
        let probabilities = softmax(logits)
        let top = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
        return PredictionRecord(itemID: 0, modelHash: modelHash, classIndex: top,
                                className: top < classes.count ? classes[top] : "\(top)",
                                probability: Double(probabilities[top]), probabilities: probabilities.map(Double.init))
    }

    /// One model on the item: prediction, heatmaps, metrics appended to `rows`; returns the
    /// image's size.
    private func run(_ work: ModelWork, contentHash: String, image: @escaping () throws -> Image, store: Store, recent: RecentAttributions,
                     into rows: inout ItemRows, _ outcome: inout ItemOutcome) throws -> (width: Int, height: Int) {
        let model = work.model
        let p = model.spec.preprocessing
        // The forward pass, computed at most once and only when something needs it.
        var input: Tensor?
        func x() throws -> Tensor {
            if let input { return input }
            input = p.apply(try image())
            return input!
        }
        // The image in RGB at the model's resolution, for the methods that work in colour.
        var rgb: [Float]?
        func modelRGB() throws -> [Float] {
            if let rgb { return rgb }
            rgb = p.resizedRGB(try image())
            return rgb!
        }
        var pass: ForwardPass?
        func forward() throws -> ForwardPass {
            if let pass { return pass }
            let taps = try Array(Set(work.explainers.flatMap { try $0.explainer.taps(for: model.model) }))
            pass = try model.model.run([model.model.inputName: try x()], taps: taps)
            return pass!
        }

        let prediction: PredictionRecord
        let size: (width: Int, height: Int)
        if let cached = try store.cachedPrediction(contentHash: contentHash, modelHash: model.hash) {
            prediction = cached.prediction
            size = (cached.width, cached.height)
        } else {
            prediction = try ItemJob.prediction(logits: Array(try forward().outputs[0].data), classes: model.spec.classes,
                                                modelHash: model.hash, output: model.model.graph.outputs[0], item: item.path)
            size = (try image().width, try image().height)
        }
        rows.predictions.append(prediction)

        /// A binary mask at the model input's size (resized bilinearly, then thresholded at half).
        func binaryMask(_ path: String) throws -> [Float] {
            let m = try Codecs.decode(path: path, as: .gray)
            return Resize.bilinear(m.planarFloats(), channels: 1, height: m.height, width: m.width, toHeight: p.height, toWidth: p.width)
                .map { $0 >= 127.5 ? 1 : 0 }
        }
        // The masks metrics may ask for, each loaded once for all explainers.
        var lesion: [Float]??
        func lesionMask() throws -> [Float]? {
            if let lesion { return lesion }
            var mask = try item.mask.map(binaryMask)
            if let annotation = item.annotation, let t = item.tile {
                // A tile's lesion mask: the slide's annotated regions over the tile, at the model's size.
                let m = try library.annotations(annotation).mask(x: t.x, y: t.y, regionWidth: t.width, regionHeight: t.height,
                                                                 width: p.width, height: p.height)
                mask = m.contains(1) ? m : nil
            }
            lesion = .some(mask)
            return mask
        }
        var tissue: [Float]??
        func tissueMask() throws -> [Float]? {
            if let tissue { return tissue }
            tissue = .some(try item.tissueMask.map(binaryMask))
            return tissue!
        }
        // The model input of a black pixel, per channel: deletion's baseline, insertion's blur border.
        let black = (0..<3).map { c in (0 - p.mean[c]) / p.std[c] }
        var across: [String: [String: Heatmap]] = [:]
        func metric(_ explainer: String, _ name: String, _ value: Double?) {
            rows.metrics.append(MetricRecord(itemID: 0, explainer: explainer, name: name, value: value, modelHash: model.hash))
        }
        func curve(_ explainer: String, _ kind: String, _ points: [Double]) {
            rows.curves.append(CurveRecord(itemID: 0, modelHash: model.hash, explainer: explainer, kind: kind, points: points))
        }
        for e in work.explainers {
            let spec = e.planned.spec, wanted = e.planned.metrics
            if let only = spec.only, !(try covers(only, prediction: prediction, classes: model.spec.classes, lesion: lesionMask)) {
                outcome.skipped += 1
                continue
            }
            let target: Int
            switch e.planned.target {
            case .predicted: target = prediction.classIndex
            case .index(let i): target = i
            case .label:
                guard let label = item.label, let i = model.spec.classes.firstIndex(of: label) else {
                    throw PipelineError("\(item.path): label '\(item.label ?? "")' is not one of the classes of model '\(model.spec.name)' \(model.spec.classes)")
                }
                target = i
            }
            let key = ItemJob.cacheKey(model: model, contentHash: contentHash, method: spec.method, parameters: e.parameterKey, target: target)
            var record: AttributionRecord
            var raw: Tensor?
            if var cached = try recent.attribution(cacheKey: key) ?? store.attribution(cacheKey: key) {
                cached.explainer = spec.name
                record = cached
                outcome.reused += 1
            } else {
                let t0 = Date()
                let attribution = try e.explainer.explain(ExplanationRequest(
                    model: model.model, input: try x(), target: target, pass: try forward(), image: try modelRGB()))
                raw = attribution.raw
                let map = attribution.heatmap(height: p.height, width: p.width)
                let signed = attribution.signedMap(height: p.height, width: p.width).flatMap(AttributionRecord.normalizedSigned)
                record = AttributionRecord(itemID: 0, modelHash: model.hash, explainer: spec.name, method: spec.method,
                                           parameters: canonicalJSON(e.explainer.parameters), target: target, cacheKey: key,
                                           rawShape: attribution.raw.shape, height: p.height, width: p.width,
                                           heatmap: map.values, seconds: Date().timeIntervalSince(t0),
                                           low: Double(map.low), high: Double(map.high), diagnostics: attribution.diagnostics,
                                           signed: signed?.values, signedMax: signed?.max)
                outcome.computed += 1
                recent.insert(record.asStored)
            }
            rows.attributions.append(record)
            // A stochastic method's own measures of this heatmap (computed now or cached with it).
            for (name, value) in record.diagnostics.sorted(by: { $0.key < $1.key }) { metric(spec.name, name, value) }
            let heatmap = Heatmap(width: record.width, height: record.height, values: record.heatmap)
            var curves: Faithfulness.Curves?
            let context = MetricContext(
                explainer: e.explainer, heatmap: heatmap, raw: raw, randomized: work.randomized, lesion: lesionMask, tissue: tissueMask,
                request: { ExplanationRequest(model: model.model, input: try x(), target: target, pass: try forward(), image: try modelRGB()) },
                curves: {
                    if let curves { return curves }
                    curves = try Faithfulness().curves(model: model.model, input: try x(), target: target, heatmap: heatmap, black: black)
                    return curves!
                })
            // Each metric of the evaluate stages that need this explainer, in the registry's order.
            for m in MetricRegistry.registered where wanted.contains(m.info.name) {
                if m.acrossExplainers {
                    across[m.info.name, default: [:]][spec.name] = heatmap
                    continue
                }
                // A reusable (costly) metric whose values are stored under this heatmap's key is not measured again.
                if m.reusable {
                    let cached = try m.info.stored.map { try store.cachedMetric(cacheKey: key, name: $0) }
                    if cached.allSatisfy({ $0 != nil }) {
                        for (name, c) in zip(m.info.stored, cached) { metric(spec.name, name, c!.value) }
                        for kind in m.curves {
                            if let points = try store.cachedCurve(cacheKey: key, kind: kind) { curve(spec.name, kind, points) }
                        }
                        continue
                    }
                }
                for (name, value) in try m.measure(context) {
                    metric(spec.name, name, value)
                    if m.info.name == PointingGameMetric.info.name, let value {
                        outcome.pointing[work.label(name == "pointing_game" ? spec.name : "\(spec.name) (strict)")] = value >= 0.5
                    }
                }
            }
            for (kind, points) in context.recorded.sorted(by: { $0.key < $1.key }) { curve(spec.name, kind, points) }
        }
        for (name, maps) in across.sorted(by: { $0.key < $1.key }) {
            guard let m = MetricRegistry.entry(name), let values = m.across(maps) else { continue }
            for (explainer, value) in values { metric(explainer, name, value) }
        }
        return size
    }

    /// The cache key of one heatmap (DESIGN.md §2): model, image bytes, preprocessing, method,
    /// parameters, target and engine version.
    static func cacheKey(model: LoadedModel, contentHash: String, method: String, parameters: String, target: Int) -> String {
        let p = model.spec.preprocessing
        let preprocessing = canonicalJSON(["w": "\(p.width)", "h": "\(p.height)", "scale": "\(p.scale)", "mean": "\(p.mean)",
                                           "std": "\(p.std)", "order": p.channelOrder.rawValue])
        return Hashing.sha256([model.hash, contentHash, preprocessing, method, parameters, "\(target)", CandelaVersion.engine]
            .joined(separator: "\n"))
    }
}

/// Canonical JSON of a string map (sorted keys): parameters as the store and cache keys see them.
func canonicalJSON(_ d: [String: String]) -> String {
    String(decoding: (try? JSONEncoder.canonical.encode(d)) ?? Data(), as: UTF8.self)
}

extension JSONEncoder {
    /// Sorted keys: the same value always encodes to the same bytes.
    static var canonical: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }
}
