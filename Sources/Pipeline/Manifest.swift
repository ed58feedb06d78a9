import Analysis
import Imaging
import Slides

/// A validated pipeline manifest (docs/manifest.md). Paths are absolute, resolved against the
/// manifest's folder.
public struct Manifest: Sendable {
    public var file: String
    public var pipeline: String
    public var datasets: [String: DatasetSpec]
    public var models: [String: ModelSpec]
    public var explainers: [String: ExplainerSpec]
    /// Stages in the order they were written; `Plan` orders them by their dependencies.
    public var stages: [StageSpec]
    /// Gates in the order they were written.
    public var gates: [GateSpec] = []
    /// Where each dataset, model and explainer is defined ("datasets.NAME", "models.NAME",
    /// "explainers.NAME"), for warnings that point at the line.
    public var marks: [String: ManifestMark] = [:]

    /// "FILE:LINE:COLUMN" of a definition, or the file alone when its place is unknown.
    public func location(_ key: String) -> String {
        marks[key].map { "\(file):\($0.line):\($0.column)" } ?? file
    }
}

/// A place in the manifest (1-based line and column).
public struct ManifestMark: Sendable, Equatable {
    public var line: Int
    public var column: Int
}

/// Where a dataset's items come from (docs/manifest.md, "datasets").
public struct DatasetSpec: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// CSV with header `path,label[,mask][,tissue_mask]`; paths relative to the CSV's folder.
        case csv(String)
        /// One subfolder per class: `FOLDER/<label>/*.png|jpg`.
        case folder(String)
        /// A shell pattern of image files (no labels).
        case glob(String)
    }
    public var name: String
    public var source: Source
    /// Use only the first `limit` items (quick runs).
    public var limit: Int?
    /// Use a seeded random sample of this many items (in dataset order).
    public var sample: Int?
    public var seed: Int
    /// A dataset of whole-slide images (`kind: slides`): how they are tiled and how tile
    /// probabilities become verdicts; nil for a dataset of image files.
    public var slides: SlideSettings?

    public init(name: String, source: Source, limit: Int? = nil, sample: Int? = nil, seed: Int = 0, slides: SlideSettings? = nil) {
        self.slides = slides
        self.name = name
        self.source = source
        self.limit = limit
        self.sample = sample
        self.seed = seed
    }

    /// Where the items come from, for messages and the plan.
    public var origin: String {
        switch source {
        case .csv(let p): return p
        case .folder(let p): return "\(p)/<label>/"
        case .glob(let p): return p
        }
    }
}

/// A slide dataset's settings (docs/slides.md).
public struct SlideSettings: Sendable, Equatable {
    public var tiling: TilingOptions
    public var aggregation: Aggregation

    public init(tiling: TilingOptions, aggregation: Aggregation = Aggregation()) {
        self.tiling = tiling
        self.aggregation = aggregation
    }
}

/// An ONNX classifier and how to feed it.
public struct ModelSpec: Sendable, Equatable {
    public var name: String
    public var onnx: String
    public var classes: [String]
    public var preprocessing: Preprocessing
    /// Default layer for CAM methods; the engine's default when nil.
    public var camLayer: String?
}

/// A named explainer: a method and its parameters.
public struct ExplainerSpec: Sendable, Equatable {
    public var name: String
    public var method: String
    public var parameters: [String: String]
    /// The items it explains (nil: every item): a budget for costly methods on slides.
    public var only: ExplainerScope? = nil
}

/// Which items an explainer explains (`only:`, docs/manifest.md): decided per item, from the
/// item's own prediction and annotation, so that resume, shards and merge give the same rows as
/// one uninterrupted run.
public struct ExplainerScope: Sendable, Equatable {
    /// Items the model predicts as this class (any class when nil) ...
    public var className: String?
    /// ... with at least this probability (of `className`, else of the top class).
    public var probability: Double?
    /// Slide tiles that overlap their slide's annotation.
    public var annotated: Bool = false

    public init(className: String? = nil, probability: Double? = nil, annotated: Bool = false) {
        self.className = className
        self.probability = probability
        self.annotated = annotated
    }

    /// In words, for the plan and the report.
    public var description: String {
        var parts: [String] = []
        if let probability {
            parts.append(String(format: "p(%@) ≥ %g", className ?? "top class", probability))
        } else if let className {
            parts.append("predicted \(className)")
        }
        if annotated { parts.append("tiles on the annotation") }
        return parts.joined(separator: ", ")
    }
}

/// What to explain: the predicted class, the item's label, or a class index.
public enum TargetSpec: Sendable, Equatable {
    case predicted
    case label
    case index(Int)
}

/// One stage of the DAG.
public struct StageSpec: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case predict, explain, evaluate, compare, drift, spray, report }
    public var name: String
    public var kind: Kind
    public var needs: [String]
    /// explain: the explainers to run (names from `explainers:`); all of them when empty.
    public var explainers: [String]
    public var target: TargetSpec
    /// evaluate: metric names.
    public var metrics: [String]
    /// report: the output folder.
    public var out: String?
    /// predict, explain: the datasets and models the stage covers (every one when empty).
    public var datasets: [String] = []
    public var models: [String] = []
    public var line: Int
    public var column: Int
    /// report: the explainer shown on the doctor's pages.
    public var doctorExplainer: String?
    /// report: a folder of Mustache templates overriding the built-in ones.
    public var templates: String?
    /// report: items per gallery page.
    public var pageSize: Int = 100
    /// drift: the baseline, "previous" (the latest earlier run of the pipeline in this store) or
    /// "STORE.sqlite" / "STORE.sqlite#RUN".
    public var baseline: String? = nil
    /// drift: an item "moved" when its heatmap's Spearman ρ to the baseline is below this.
    public var moved: Double = 0.5
    /// compare, drift: the share of pixels of the top-k intersection.
    public var topK: Double = 0.1
    /// spray: the analysis's settings (docs/analysis.md, "SpRAy").
    public var spray = SpRAy.Settings()
}

/// A gate: a run-level number compared with a threshold; a failed gate makes `candela run` exit 3.
///
/// `metric` is a per-item metric of an evaluate stage (averaged over the items that have a
/// value, for one `explainer`), or a run-level count: `failures` (failure rows), `accuracy`
/// (share of labelled items predicted as their label).
public struct GateSpec: Sendable, Equatable {
    public enum Comparison: String, Sendable { case atLeast = ">=", atMost = "<=" }
    public var name: String
    public var metric: String
    public var explainer: String?
    /// The model the gate judges; every model of the run, each on its own, when nil.
    public var model: String? = nil
    public var comparison: Comparison
    public var threshold: Double
    public var line: Int
    public var column: Int

    /// Metrics measured on the whole run rather than per item.
    public static let runMetrics = ["failures", "accuracy"]
    /// Drift against the baseline, per explainer: mean similarities, and the share of items moved.
    public static let driftMetrics = ["drift_spearman", "drift_ssim", "drift_topk", "drift_moved"]
    /// SpRAy, per explainer: the number of clusters flagged as Clever Hans (over the classes).
    public static let sprayMetrics = ["spray_flags"]
    /// Slides, per explainer: the slide pointing game, averaged over the run's annotated slides.
    public static let slideMetrics = ["slide_pointing_game"]
}
