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

    public init(id: Int64? = nil, runID: Int64, dataset: String, path: String, label: String?, maskPath: String?,
                tissueMaskPath: String? = nil, contentHash: String, width: Int, height: Int) {
        self.id = id
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

    public init(id: Int64? = nil, itemID: Int64, modelHash: String, explainer: String, method: String, parameters: String,
                target: Int, cacheKey: String, rawShape: [Int], height: Int, width: Int, heatmap: [Float], seconds: Double) {
        self.id = id
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

    /// The record as the store gives it back: the heatmap through its 16-bit quantization.
    public var asStored: AttributionRecord {
        var r = self
        r.heatmap = AttributionRecord.dequantize(AttributionRecord.quantize(heatmap))
        return r
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
