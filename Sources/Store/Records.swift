import Foundation

/// One execution of a pipeline.
public struct RunRecord: Codable, Sendable, Equatable {
    public var id: Int64?
    public var pipeline: String
    public var manifestPath: String
    public var manifestHash: String
    public var candelaVersion: String
    public var startedAt: String
    public var finishedAt: String?
    /// "running", "complete", "partial" (some items failed) or "interrupted".
    public var status: String
    public var jobs: Int
    /// How the run was asked to run, as canonical JSON: `{"shard":"2/3"}`, `{"merged_from":[...]}`.
    public var parameters: String

    public init(id: Int64? = nil, pipeline: String, manifestPath: String, manifestHash: String,
                candelaVersion: String, startedAt: String, finishedAt: String? = nil, status: String, jobs: Int,
                parameters: String = "{}") {
        self.parameters = parameters
        self.id = id
        self.pipeline = pipeline
        self.manifestPath = manifestPath
        self.manifestHash = manifestHash
        self.candelaVersion = candelaVersion
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.status = status
        self.jobs = jobs
    }
}

/// A model, identified by the SHA-256 of its ONNX file.
public struct ModelRecord: Codable, Sendable, Equatable {
    public var hash: String
    public var name: String
    public var path: String
    public var classes: [String]
    /// The preprocessing as JSON (kept opaque to the store).
    public var preprocessing: String

    public init(hash: String, name: String, path: String, classes: [String], preprocessing: String) {
        self.hash = hash
        self.name = name
        self.path = path
        self.classes = classes
        self.preprocessing = preprocessing
    }
}

/// One image of a dataset within a run.
public struct ItemRecord: Codable, Sendable, Equatable {
    public var id: Int64?
    public var runID: Int64
    public var dataset: String
    /// Absolute path of the image file.
    public var path: String
    public var label: String?
    public var maskPath: String?
    /// Absolute path of the tissue mask (white = tissue), when the dataset has one.
    public var tissueMaskPath: String?
    /// SHA-256 of the file's bytes: the item's identity.
    public var contentHash: String
    public var width: Int
    public var height: Int
    /// For a tile of a slide: the slide and the tile's place on it.
    public var tile: TileRecord?
    /// A GeoJSON file of annotations (lesions) in level-0 pixels, for tiles of annotated slides.
    public var annotationPath: String?

    public init(id: Int64? = nil, runID: Int64, dataset: String, path: String, label: String?, maskPath: String?,
                tissueMaskPath: String? = nil, contentHash: String, width: Int, height: Int, tile: TileRecord? = nil,
                annotationPath: String? = nil) {
        self.id = id
        self.tile = tile
        self.annotationPath = annotationPath
        self.tissueMaskPath = tissueMaskPath
        self.runID = runID
        self.dataset = dataset
        self.path = path
        self.label = label
        self.maskPath = maskPath
        self.contentHash = contentHash
        self.width = width
        self.height = height
    }
}

/// Where a tile sits on its slide: a level-0 rectangle, the level it was read from, the share of
/// it that is tissue, the tissue piece it belongs to (0: none), and its focus (`Focus.sharpness`
/// of the tile as read; nil in stores from before schema 12).
public struct TileRecord: Codable, Sendable, Equatable {
    public var slidePath: String
    public var x: Int, y: Int, width: Int, height: Int
    public var level: Int
    public var tissue: Double
    public var piece: Int
    public var sharpness: Double?

    public init(slidePath: String, x: Int, y: Int, width: Int, height: Int, level: Int, tissue: Double, piece: Int,
                sharpness: Double? = nil) {
        self.sharpness = sharpness
        self.slidePath = slidePath
        (self.x, self.y, self.width, self.height) = (x, y, width, height)
        self.level = level
        self.tissue = tissue
        self.piece = piece
    }
}

/// A slide of a run: its header, how it was tiled, its tissue and a small view of it.
public struct SlideRecord: Codable, Sendable, Equatable {
    public var id: Int64?
    public var runID: Int64
    public var dataset: String
    public var path: String
    public var label: String?
    public var annotationPath: String?
    public var vendor: String
    public var width: Int
    public var height: Int
    /// Each level's "WIDTHxHEIGHT@DOWNSAMPLE".
    public var levels: [String]
    public var mppX: Double?
    public var mppY: Double?
    public var objectivePower: Double?
    public var quickHash: String
    /// The tiling settings as canonical JSON (mpp, tile, overlap, tissue thresholds).
    public var tiling: String
    public var tiles: Int
    public var tissueFraction: Double
    /// Tissue pieces as JSON: [{"id":1,"x":..,"y":..,"width":..,"height":..}].
    public var pieces: String
    /// Level-0 pixels per pixel of `view` (and of the stitched heatmaps).
    public var viewDownsample: Double
    /// The slide at low resolution, about 1024 pixels on its longer side (JPEG), and its tissue
    /// mask at the tissue resolution (PNG, white = tissue).
    public var view: Data
    public var tissueMask: Data
    /// Share of the tissue view rejected as pen ink.
    public var penFraction: Double

    public init(id: Int64? = nil, runID: Int64, dataset: String, path: String, label: String?, annotationPath: String?, vendor: String,
                width: Int, height: Int, levels: [String], mppX: Double?, mppY: Double?, objectivePower: Double?, quickHash: String,
                tiling: String, tiles: Int, tissueFraction: Double, pieces: String, viewDownsample: Double, view: Data, tissueMask: Data,
                penFraction: Double = 0) {
        self.id = id
        self.penFraction = penFraction
        self.runID = runID
        self.dataset = dataset
        self.path = path
        self.label = label
        self.annotationPath = annotationPath
        self.vendor = vendor
        self.width = width
        self.height = height
        self.levels = levels
        self.mppX = mppX
        self.mppY = mppY
        self.objectivePower = objectivePower
        self.quickHash = quickHash
        self.tiling = tiling
        self.tiles = tiles
        self.tissueFraction = tissueFraction
        self.pieces = pieces
        self.viewDownsample = viewDownsample
        self.view = view
        self.tissueMask = tissueMask
    }
}

/// A model's verdict on a slide (piece 0) or on one tissue piece, from its tiles' probabilities.
public struct SlideVerdictRecord: Codable, Sendable, Equatable {
    public var slideID: Int64
    public var modelHash: String
    public var piece: Int
    /// The aggregation rule and its parameters, as words ("top_k_mean k=8 threshold=0.5 class=abnormal").
    public var rule: String
    public var tiles: Int
    /// The rule's score for the positive class (nil: no tile).
    public var score: Double?
    public var className: String
    /// Mean tile probability per class.
    public var probabilities: [Double]

    public init(slideID: Int64, modelHash: String, piece: Int, rule: String, tiles: Int, score: Double?, className: String,
                probabilities: [Double]) {
        self.slideID = slideID
        self.modelHash = modelHash
        self.piece = piece
        self.rule = rule
        self.tiles = tiles
        self.score = score
        self.className = className
        self.probabilities = probabilities
    }
}

/// A stitched heatmap of one explainer over a whole slide, at `downsample` level-0 pixels per
/// pixel: raw relevance on one scale for the slide (NaN where no tile), float32 row-major.
public struct SlideHeatmapRecord: Codable, Sendable, Equatable {
    public var slideID: Int64
    public var modelHash: String
    public var explainer: String
    public var downsample: Double
    public var width: Int
    public var height: Int
    public var low: Double?
    public var high: Double?
    public var values: [Float]
    /// The slide pointing game (share of the k most relevant tiles on an annotated region) and
    /// its k; nil on a slide without annotations.
    public var pointing: Double?
    public var pointingK: Int?

    public init(slideID: Int64, modelHash: String, explainer: String, downsample: Double, width: Int, height: Int,
                low: Double?, high: Double?, values: [Float], pointing: Double? = nil, pointingK: Int? = nil) {
        self.pointing = pointing
        self.pointingK = pointingK
        self.slideID = slideID
        self.modelHash = modelHash
        self.explainer = explainer
        self.downsample = downsample
        self.width = width
        self.height = height
        self.low = low
        self.high = high
        self.values = values
    }
}

/// The model's top-1 prediction for an item, with every class probability.
public struct PredictionRecord: Codable, Sendable, Equatable {
    public var itemID: Int64
    public var modelHash: String
    public var classIndex: Int
    public var className: String
    public var probability: Double
    public var probabilities: [Double]

    public init(itemID: Int64, modelHash: String, classIndex: Int, className: String, probability: Double, probabilities: [Double]) {
        self.itemID = itemID
        self.modelHash = modelHash
        self.classIndex = classIndex
        self.className = className
        self.probability = probability
        self.probabilities = probabilities
    }
}

/// A heatmap for (item, model, explainer, target). The [0,1] heatmap at the model input's
/// resolution is stored quantized to 16 bits (little-endian UInt16, value·65535): 2 bytes a
/// pixel, error ≤ 7.7e-6.
public struct AttributionRecord: Codable, Sendable, Equatable {
    public var id: Int64?
    public var itemID: Int64
    public var modelHash: String
    /// The manifest's explainer name (e.g. "gradcam").
    public var explainer: String
    public var method: String
    /// Parameters as canonical JSON.
    public var parameters: String
    public var target: Int
    public var cacheKey: String
    public var rawShape: [Int]
    public var height: Int
    public var width: Int
    public var heatmap: [Float]
    public var seconds: Double
    /// The range the heatmap was normalized from (raw = low + v · (high − low)); nil for rows
    /// written before schema 5.
    public var low: Double?
    public var high: Double?
    /// What a stochastic method measured about this heatmap (`stability`, `fit_r2`, `samples`);
    /// empty for the others and for rows written before schema 9.
    public var diagnostics: [String: Double]
    /// A signed method's map (gradients, integrated gradients, LRP) at the heatmap's size,
    /// divided by its largest |value| (`signedMax`, in raw units): values in [−1, 1], positive
    /// for the class. nil for unsigned methods and for rows written before schema 10.
    public var signed: [Float]?
    public var signedMax: Double?

    public init(id: Int64? = nil, itemID: Int64, modelHash: String, explainer: String, method: String, parameters: String,
                target: Int, cacheKey: String, rawShape: [Int], height: Int, width: Int, heatmap: [Float], seconds: Double,
                low: Double? = nil, high: Double? = nil, diagnostics: [String: Double] = [:],
                signed: [Float]? = nil, signedMax: Double? = nil) {
        self.id = id
        self.diagnostics = diagnostics
        self.signed = signed
        self.signedMax = signedMax
        self.low = low
        self.high = high
        self.itemID = itemID
        self.modelHash = modelHash
        self.explainer = explainer
        self.method = method
        self.parameters = parameters
        self.target = target
        self.cacheKey = cacheKey
        self.rawShape = rawShape
        self.height = height
        self.width = width
        self.heatmap = heatmap
        self.seconds = seconds
    }

    /// The range the heatmap was normalized from; [0, 1] for rows written before schema 5.
    public var rawRange: (low: Double, high: Double) { (low ?? 0, high ?? 1) }

    /// The heatmap's mean in raw units (its [0,1] mean brought back through `rawRange`).
    public var meanRaw: Double {
        let mean = heatmap.isEmpty ? 0 : Double(heatmap.reduce(0, +)) / Double(heatmap.count)
        return rawRange.low + mean * (rawRange.high - rawRange.low)
    }

    /// The record as the store gives it back: the heatmap through its 16-bit quantization.
    public var asStored: AttributionRecord {
        var r = self
        r.heatmap = AttributionRecord.dequantize(AttributionRecord.quantize(heatmap))
        r.signed = signed.map { AttributionRecord.dequantizeSigned(AttributionRecord.quantizeSigned($0)) }
        return r
    }

    /// A raw signed map as stored: divided by its largest |value|, which is returned beside it
    /// (nil when the map is all zero or not finite anywhere).
    public static func normalizedSigned(_ map: [Float]) -> (values: [Float], max: Double)? {
        let top = map.filter { $0.isFinite }.map { abs($0) }.max() ?? 0
        guard top > 0 else { return nil }
        return (map.map { $0.isFinite ? $0 / top : 0 }, Double(top))
    }

    /// Values in [−1, 1] as little-endian Int16 of round(v · 32767): error below 1.6·10⁻⁵.
    static func quantizeSigned(_ values: [Float]) -> Data {
        var d = Data(capacity: values.count * 2)
        for v in values {
            let q = UInt16(bitPattern: Int16((min(1, max(-1, v.isFinite ? v : 0)) * 32767).rounded()))
            d.append(UInt8(q & 0xff))
            d.append(UInt8(q >> 8))
        }
        return d
    }

    static func dequantizeSigned(_ d: Data) -> [Float] {
        let b = [UInt8](d)
        return stride(from: 0, to: b.count - 1, by: 2).map { Float(Int16(bitPattern: UInt16(b[$0]) | UInt16(b[$0 + 1]) << 8)) / 32767 }
    }

    static func quantize(_ values: [Float]) -> Data {
        var d = Data(capacity: values.count * 2)
        for v in values {
            let q = UInt16((min(1, max(0, v.isFinite ? v : 0)) * 65535).rounded())
            d.append(UInt8(q & 0xff))
            d.append(UInt8(q >> 8))
        }
        return d
    }

    static func dequantize(_ d: Data) -> [Float] {
        let b = [UInt8](d)
        return stride(from: 0, to: b.count - 1, by: 2).map { Float(UInt16(b[$0]) | UInt16(b[$0 + 1]) << 8) / 65535 }
    }
}

/// A curve measured on one heatmap, for the report's plots: `deletion` and `insertion` (the
/// target's probability at each step, the steps evenly spaced over the share of pixels 0…1) and
/// `randomization` (Spearman ρ with the heatmap of the model with its top 1, 2, … layers
/// randomized).
public struct CurveRecord: Codable, Sendable, Equatable {
    public var itemID: Int64
    public var modelHash: String
    public var explainer: String
    public var kind: String
    public var points: [Double]

    public init(itemID: Int64, modelHash: String, explainer: String, kind: String, points: [Double]) {
        self.itemID = itemID
        self.modelHash = modelHash
        self.explainer = explainer
        self.kind = kind
        self.points = points
    }
}

/// A named number about one heatmap (e.g. the pointing game: 1 hit, 0 miss): the heatmap of
/// `explainer` for the model `modelHash` on item `itemID`.
public struct MetricRecord: Codable, Sendable, Equatable {
    public var itemID: Int64
    public var explainer: String
    public var name: String
    public var value: Double?
    public var modelHash: String

    public init(itemID: Int64, explainer: String, name: String, value: Double?, modelHash: String = "") {
        self.itemID = itemID
        self.explainer = explainer
        self.name = name
        self.value = value
        self.modelHash = modelHash
    }
}

/// An item's identity within a run: its dataset and its path.
public struct ItemKey: Hashable, Sendable {
    public let dataset: String
    public let path: String

    public init(dataset: String, path: String) {
        self.dataset = dataset
        self.path = path
    }
}

/// A unit of work that failed: the run goes on and records why.
public struct FailureRecord: Codable, Sendable, Equatable {
    public var id: Int64?
    public var runID: Int64
    public var itemPath: String
    public var stage: String
    public var message: String

    public init(id: Int64? = nil, runID: Int64, itemPath: String, stage: String, message: String) {
        self.id = id
        self.runID = runID
        self.itemPath = itemPath
        self.stage = stage
        self.message = message
    }
}

/// The verdict of one gate of a run: `value comparison threshold` (`>=` for a manifest `min`,
/// `<=` for a `max`). A gate without a value (nothing was measured) fails.
public struct GateResultRecord: Codable, Sendable, Equatable {
    public var runID: Int64
    public var name: String
    public var metric: String
    public var explainer: String?
    public var comparison: String
    public var threshold: Double
    public var value: Double?
    public var passed: Bool

    public init(runID: Int64, name: String, metric: String, explainer: String?, comparison: String, threshold: Double,
                value: Double?, passed: Bool) {
        self.runID = runID
        self.name = name
        self.metric = metric
        self.explainer = explainer
        self.comparison = comparison
        self.threshold = threshold
        self.value = value
        self.passed = passed
    }
}

/// What a run's heatmaps were made with (one row per explainer and parameter set).
public struct AttributionSummary: Sendable, Equatable {
    public var explainer: String
    public let method: String
    public let parameters: String
    public var modelHash: String = ""
}

/// Two heatmaps of one item compared: two models of a run (`kind` "models"), or a run's heatmap
/// against its baseline run's (`kind` "baseline", drift; `reference` names the baseline).
public struct ComparisonRecord: Codable, Sendable, Equatable {
    public var runID: Int64
    public var kind: String
    /// The compare or drift stage.
    public var name: String
    public var itemID: Int64
    public var explainer: String
    /// Model hashes: this run's model, and the other model (baseline: the baseline run's model of the same name).
    public var modelA: String
    public var modelB: String
    public var reference: String?
    public var spearman: Double?
    public var ssim: Double?
    public var topK: Double?
    /// Whether both predicted the same class (nil: a prediction is missing).
    public var samePrediction: Bool?

    public init(runID: Int64, kind: String, name: String, itemID: Int64, explainer: String, modelA: String, modelB: String,
                reference: String? = nil, spearman: Double?, ssim: Double?, topK: Double?, samePrediction: Bool?) {
        self.runID = runID
        self.kind = kind
        self.name = name
        self.itemID = itemID
        self.explainer = explainer
        self.modelA = modelA
        self.modelB = modelB
        self.reference = reference
        self.spearman = spearman
        self.ssim = ssim
        self.topK = topK
        self.samePrediction = samePrediction
    }
}

/// One heatmap's place in a SpRAy analysis (docs/analysis.md): its cluster among the heatmaps of
/// its class (`classIndex`, the explained class) for one model and explainer.
public struct ClusterRecord: Codable, Sendable, Equatable {
    public var runID: Int64
    /// The spray stage.
    public var name: String
    public var itemID: Int64
    public var modelHash: String
    public var explainer: String
    public var classIndex: Int
    public var cluster: Int
    /// Whether the item is its cluster's medoid.
    public var medoid: Bool
    /// The item's place in the 2-D spectral embedding.
    public var x: Double
    public var y: Double

    public init(runID: Int64, name: String, itemID: Int64, modelHash: String, explainer: String, classIndex: Int, cluster: Int,
                medoid: Bool, x: Double, y: Double) {
        self.runID = runID
        self.name = name
        self.itemID = itemID
        self.modelHash = modelHash
        self.explainer = explainer
        self.classIndex = classIndex
        self.cluster = cluster
        self.medoid = medoid
        self.x = x
        self.y = y
    }
}

/// One SpRAy cluster: its size, medoid, mean heatmap and what the Clever-Hans test found.
public struct ClusterSummaryRecord: Codable, Sendable, Equatable {
    public var runID: Int64
    public var name: String
    public var modelHash: String
    public var explainer: String
    public var classIndex: Int
    public var cluster: Int
    public var size: Int
    public var medoidItem: Int64
    public var flagged: Bool
    /// Why it is flagged, in words (empty when not).
    public var reasons: [String]
    /// Where the mean heatmap concentrates ("top-left corner", "interior", ...).
    public var place: String
    /// Median share of relevance outside the object masks (nil: too few masks).
    public var outsideShare: Double?
    /// Median lift of the objects: their share of relevance over their share of the image.
    public var objectLift: Double?
    /// Median share of relevance in the mean heatmap's region.
    public var regionShare: Double
    /// The mean heatmap's side (cells) and values (grid², row-major, unit sum).
    public var grid: Int
    public var meanMap: [Float]
    /// The region's cells (row-major indices into the grid).
    public var region: [Int]
    /// The class's smallest Laplacian eigenvalues (the eigengap chose the cluster count).
    public var eigenvalues: [Double]
    /// k of the class's nearest-neighbour graph.
    public var neighbours: Int

    public init(runID: Int64, name: String, modelHash: String, explainer: String, classIndex: Int, cluster: Int, size: Int,
                medoidItem: Int64, flagged: Bool, reasons: [String], place: String, outsideShare: Double?, objectLift: Double? = nil, regionShare: Double,
                grid: Int, meanMap: [Float], region: [Int], eigenvalues: [Double], neighbours: Int) {
        self.runID = runID
        self.name = name
        self.modelHash = modelHash
        self.explainer = explainer
        self.classIndex = classIndex
        self.cluster = cluster
        self.size = size
        self.medoidItem = medoidItem
        self.flagged = flagged
        self.reasons = reasons
        self.place = place
        self.outsideShare = outsideShare
        self.objectLift = objectLift
        self.regionShare = regionShare
        self.grid = grid
        self.meanMap = meanMap
        self.region = region
        self.eigenvalues = eigenvalues
        self.neighbours = neighbours
    }
}
