import Foundation
import Imaging
import Mustache
import Slides
import Store
import Tensors

/// A method card as the report shows it (filled by the pipeline from the explainer registry,
/// since Report does not import Explainers).
public struct ReportCard: Sendable {
    public let title: String
    public let meaning: String
    public let cost: String
    public let limits: String

    public init(title: String, meaning: String, cost: String, limits: String) {
        self.title = title
        self.meaning = meaning
        self.cost = cost
        self.limits = limits
    }
}

/// How the report is written (the report stage's keys; docs/report.md).
public struct ReportOptions: Sendable {
    public var colormap: Colormap
    /// Items per gallery page.
    public var pageSize: Int
    /// The explainer shown on the doctor's pages (default: the best at the pointing game, else the first).
    public var doctorExplainer: String?
    /// A folder with `index|gallery|item|doctor.mustache` overriding the built-in templates.
    public var templateDirectory: String?
    /// Write into a non-empty folder that holds no Candela report (`ReportFolder`); files that
    /// Candela did not write are still never deleted.
    public var force: Bool
    /// The metrics of the trust-metric table, in order, with a line of help each (the pipeline
    /// passes its metric registry; Report does not import Explainers).
    public var metrics: [(name: String, help: String)] = []
    /// The compare and drift stages' settings by stage name: the Spearman ρ below which an item
    /// moved, and the top-k share (defaults 0.5 and 0.1 for stages not listed).
    public var comparisonSettings: [String: (moved: Double, topK: Double)] = [:]
    /// Progress lines (the slide viewer's pyramid: tiles written and time); nil: quiet.
    public var log: (@Sendable (String) -> Void)?

    public init(colormap: Colormap = .viridis, pageSize: Int = 100, doctorExplainer: String? = nil, templateDirectory: String? = nil,
                force: Bool = false) {
        self.colormap = colormap
        self.pageSize = pageSize
        self.doctorExplainer = doctorExplainer
        self.templateDirectory = templateDirectory
        self.force = force
    }
}

/// Writes a static HTML report for one run from the store (docs/report.md):
///
/// - `index.html`: run header, gates, confusion matrix, metric tables, curated views, methods;
/// - `gallery-<class>-<page>.html`: overlays by predicted class, `pageSize` items a page;
/// - `items/<id>.html`: every explainer's overlay, probabilities, metrics, heatmap arrays;
/// - `doctor/<id>.html`: one printable page per case;
/// - `images/`, `thumbs/`, `arrays/`: JPEGs and `.npy` heatmaps, named by content (image hash,
///   heatmap cache key), so a rewrite skips what exists; files no page uses are removed.
///
/// The store is read item by item (heatmaps are not all held in memory). Mustache escapes every
/// value, so file names and labels reach the pages as text.
public struct ReportWriter {
    let store: Store
    let runID: Int64
    let directory: String
    let cards: [String: ReportCard]
    let options: ReportOptions
    /// The files this report and the one before it wrote (only those are reused or deleted).
    let folder: ReportFolder

    public init(store: Store, runID: Int64, directory: String, cards: [String: ReportCard] = [:], options: ReportOptions = ReportOptions()) {
        self.store = store
        self.runID = runID
        self.directory = directory
        self.cards = cards
        self.options = options
        self.folder = ReportFolder(directory)
    }

    /// What rendering one item produced.
    struct ItemPages {
        let id: Int64
        let card: [String: Any]
        let thumb: String?
        let used: Set<String>
    }

    /// `transform` over `items` on two workers (or as many cores as there are), in order;
    /// the first error is rethrown.
    static func parallelMap<T, R>(_ items: [T], _ transform: @escaping (T) throws -> R) throws -> [R] {
        let box = ParallelMapState(items, transform)
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4, items.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                box.lock.lock()
                guard box.next < box.items.count, box.error == nil else { box.lock.unlock(); return }
                let index = box.next
                box.next += 1
                box.lock.unlock()
                do {
                    let r = try box.transform(box.items[index])
                    box.lock.lock(); box.results[index] = r; box.lock.unlock()
                } catch {
                    box.lock.lock(); if box.error == nil { box.error = error }; box.lock.unlock()
                }
            }
        }
        if let error = box.error { throw error }
        return (0..<items.count).map { box.results[$0]! }
    }

    /// Mirrors `Evaluation.sanityThreshold` (Report does not import Explainers).
    static let sanityThreshold = 0.5
    /// A LIME or RISE heatmap whose stability (split-half reliability) is below this is flagged
    /// unstable wherever it is shown (docs/methods.md, "Stability").
    static let stabilityThreshold = 0.8
    static let thumbnailSide = 96
    /// A slide whose tissue view is at least this share pen ink gets a warning on its pages.
    static let penWarning = 0.001
    /// A slide with at least this share of its tiles out of focus (`Focus.blurred`) gets a warning.
    static let blurWarning = 0.05

    /// Writes the report; returns the path of `index.html`.
    @discardableResult
    public func write() throws -> String {
        let fm = FileManager.default
        try folder.prepare(force: options.force)
        for sub in ["images", "thumbs", "arrays", "items", "doctor"] {
            try fm.createDirectory(atPath: "\(directory)/\(sub)", withIntermediateDirectories: true)
        }
        guard let run = try store.runs().first(where: { $0.id == runID }) else {
            throw StoreError("\(store.path): no run \(runID)")
        }
        let templates = try loadTemplates()
        let items = try store.items(run: runID)
        // A run may hold several models (every dataset × model of its manifest). The first by
        // name is the primary model: its predictions sort the galleries and fill the doctor's
        // pages. With several models every heatmap and metric is labelled "explainer [model]".
        let allPredictions = try store.predictions(run: runID)
        let predictionsByItem = Dictionary(grouping: allPredictions, by: \.itemID)
        let runModelHashes = Set(allPredictions.map(\.modelHash))
        let runModels = try store.models().filter { runModelHashes.contains($0.hash) }
        let model = runModels.first
        let multiModel = runModels.count > 1
        let modelNames = Dictionary(runModels.map { ($0.hash, $0.name) }, uniquingKeysWith: { a, _ in a })
        let classesOf = Dictionary(runModels.map { ($0.hash, $0.classes) }, uniquingKeysWith: { a, _ in a })
        func label(_ explainer: String, _ modelHash: String) -> String {
            multiModel ? "\(explainer) [\(modelNames[modelHash] ?? String(modelHash.prefix(12)))]" : explainer
        }
        // Each item's shown prediction: the first model by name among those that predicted it.
        let rank = Dictionary(runModels.enumerated().map { ($1.hash, $0) }, uniquingKeysWith: { a, _ in a })
        let predictions = predictionsByItem.compactMapValues { list in
            list.min { (rank[$0.modelHash] ?? Int.max) < (rank[$1.modelHash] ?? Int.max) }
        }
        let metrics = try store.metrics(run: runID).map { m -> MetricRecord in
            var m = m
            m.explainer = label(m.explainer, m.modelHash)
            return m
        }
        let metricsByItem = Dictionary(grouping: metrics, by: \.itemID)
        let failures = try store.failures(run: runID)
        let classes = model?.classes ?? Array(Set(predictions.values.map(\.className))).sorted()
        var labelledCards = self.cards
        let summaries = try store.attributionSummaries(run: runID).map { s -> AttributionSummary in
            var s = s
            let raw = s.explainer
            s.explainer = label(raw, s.modelHash)
            if let card = self.cards[raw] { labelledCards[s.explainer] = card }
            return s
        }
        let cards = labelledCards
        let explainerNames = Array(Set(summaries.map(\.explainer))).sorted()
        let sequentialBar = SVG.colorBar(options.colormap, low: "0 (image shows)", high: "≥ 99.5th pct.", width: 260)
        // With signed methods in the run, their diverging scale beside it (item pages give its values).
        let colorBar = try store.hasSignedAttributions(run: runID)
            ? sequentialBar + " " + SVG.divergingBar(low: "−99.5th pct.", high: "+99.5th pct.", width: 260) : sequentialBar

        // Pointing game and metric tables.
        func values(_ e: String, _ name: String) -> [Double] { metrics.filter { $0.explainer == e && $0.name == name }.compactMap(\.value) }
        var pointingRows: [[String: Any]] = []
        var pointingBars: [(String, Double)] = []
        for e in explainerNames {
            let standard = values(e, "pointing_game"), strict = values(e, "pointing_game_strict")
            guard !standard.isEmpty else { continue }
            let hits = standard.filter { $0 >= 0.5 }.count, strictHits = strict.filter { $0 >= 0.5 }.count
            pointingRows.append(["explainer": e, "hits": hits, "total": standard.count, "strictHits": strictHits,
                                 "fraction": percent(Double(hits) / Double(standard.count)),
                                 "strictFraction": percent(Double(strictHits) / Double(max(strict.count, 1)))])
            pointingBars.append((e, Double(hits) / Double(standard.count)))
        }
        // The trust-metric table: the metrics the pipeline's registry lists, in its order, then any
        // other stored metric (a store from another Candela), except the pointing game's own table.
        let withValues = Set(metrics.filter { $0.value != nil }.map(\.name))
        let known = options.metrics.map(\.name)
        let present = known.filter(withValues.contains)
            + withValues.subtracting(known).subtracting(["pointing_game", "pointing_game_strict"]).sorted()
        let help = Dictionary(options.metrics.map { ($0.name, $0.help) }, uniquingKeysWith: { a, _ in a })
        // Plots (inline SVG, no script): each metric's distribution per explainer, and the time
        // each explainer took per heatmap.
        let metricPlots = present.map { name in
            SVG.strips(explainerNames.map { ($0, values($0, name)) }.filter { !$0.1.isEmpty }, title: "\(name): every item (dots), median (red)")
        }.filter { !$0.isEmpty }
        let timePlot = SVG.amounts(try store.attributionSeconds(run: runID).filter { $0.count > 0 }
            .map { (label($0.explainer, $0.modelHash), 1000 * $0.seconds / Double($0.count)) }.sorted { $0.0 < $1.0 },
            title: "Time per heatmap (mean of first computations)", unit: "ms")
        // Curves (inline SVG): the mean deletion and insertion curve of each explainer with its
        // mean AUC, and the randomization check per layer (Adebayo et al.'s cascade) with the 0.5 line.
        let curves = try store.curves(run: runID)
        func meanCurve(_ kind: String, _ e: String) -> [Double] {
            let list = curves.filter { $0.kind == kind && label($0.explainer, $0.modelHash) == e }.map(\.points)
            guard let n = list.map(\.count).min(), n > 0 else { return [] }
            return (0..<n).map { i in list.reduce(0) { $0 + $1[i] } / Double(list.count) }
        }
        func curvePlot(_ kind: String, metric: String, title: String, better: String) -> String {
            SVG.lines(explainerNames.compactMap { e -> (label: String, points: [Double], note: String)? in
                let c = meanCurve(kind, e)
                let auc = values(e, metric)
                guard !c.isEmpty, !auc.isEmpty else { return nil }
                return (e, c, String(format: "AUC %.3f (mean of %d)", auc.reduce(0, +) / Double(auc.count), auc.count))
            }, title: "\(title) (\(better))", xLabel: "share of pixels \(kind == "deletion" ? "deleted" : "inserted"), most relevant first",
                      yLabel: "probability", yRange: 0...1)
        }
        let curvePlots = [
            curvePlot("deletion", metric: "deletion_auc", title: "Deletion: mean probability", better: "lower is better"),
            curvePlot("insertion", metric: "insertion_auc", title: "Insertion: mean probability", better: "higher is better"),
            SVG.lines(explainerNames.compactMap { e -> (label: String, points: [Double], note: String)? in
                let c = meanCurve("randomization", e)
                guard !c.isEmpty else { return nil }
                let mean = c.reduce(0, +) / Double(c.count)
                return (e, c, String(format: "mean ρ %.3f: %@", mean, mean < ReportWriter.sanityThreshold ? "passes" : "fails"))
            }, title: "Sanity check per layer: Spearman ρ with the randomized model's heatmap (below 0.5 passes)",
                      xLabel: "top layers randomized", yLabel: "Spearman ρ", xFrom: 1, yRange: -0.2...1, reference: ReportWriter.sanityThreshold),
        ].filter { !$0.isEmpty }
        var metricRows: [[String: Any]] = []
        for e in explainerNames where !present.isEmpty {
            var row: [String: Any] = ["explainer": e]
            row["cells"] = present.map { name -> [String: Any] in
                let v = values(e, name)
                let mean = v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
                if name == "randomization", let mean {
                    row["sanity"] = mean < ReportWriter.sanityThreshold ? "passes" : "fails"
                    if mean >= ReportWriter.sanityThreshold { row["sanityFails"] = true }
                }
                return ["value": mean.map { String(format: name == "samples" ? "%.0f" : "%.3f", $0) } ?? "—", "n": v.count]
            }
            metricRows.append(row)
        }

        // The explainer a doctor sees: the configured one; else, among those that did not fail the
        // sanity check, the best at the pointing game (ties: name order); else the first.
        let failedSanity = Set(metricRows.filter { $0["sanityFails"] != nil }.compactMap { $0["explainer"] as? String })
        let doctorExplainer = options.doctorExplainer.map { label($0, model?.hash ?? "") }.flatMap { explainerNames.contains($0) ? $0 : nil }
            ?? pointingBars.filter { !failedSanity.contains($0.0) }.sorted { ($1.1, $0.0) < ($0.1, $1.0) }.first?.0
            ?? explainerNames.first { !failedSanity.contains($0) } ?? explainerNames.first

        // Galleries by predicted class, paginated.
        let byClass = Dictionary(grouping: items.filter { $0.id != nil }) { predictions[$0.id!]?.className ?? "unpredicted" }
        var galleryPage: [Int64: String] = [:]
        var galleryLinks: [[String: Any]] = []
        var pagesToWrite: [(file: String, className: String, page: Int, pages: Int, items: [ItemRecord])] = []
        for className in (classes + ["unpredicted"]) where byClass[className] != nil {
            let members = byClass[className]!
            let pages = max(1, (members.count + options.pageSize - 1) / options.pageSize)
            for p in 0..<pages {
                let slice = Array(members[(p * options.pageSize)..<min(members.count, (p + 1) * options.pageSize)])
                let file = "gallery-\(safe(className))-\(p + 1).html"
                for it in slice { galleryPage[it.id!] = file }
                pagesToWrite.append((file, className, p + 1, pages, slice))
            }
            galleryLinks.append(["className": className, "count": members.count, "href": "gallery-\(safe(className))-1.html"])
        }

        // Per item: images (once), item page, doctor page; gallery cards collected by id.
        var used = Set<String>()
        var cardsByID: [Int64: [String: Any]] = [:]
        var thumbByID: [Int64: String] = [:]
        var common = headerContext(run: run, model: model, items: items)
        if multiModel {
            common["model"] = runModels.map(\.name).joined(separator: ", ")
            common["modelHash"] = runModels.map { String($0.hash.prefix(12)) }.joined(separator: ", ")
        }
        let explainerRows = explainerParameterRows(summaries)
        let tiles = TileReader()
        let slides = try store.slides(run: runID)
        let slideIDs = Dictionary(slides.compactMap { s in s.id.map { ("\(s.dataset)\u{0}\(s.path)", $0) } }, uniquingKeysWith: { a, _ in a })
        // One item's images and pages; items are independent, so two workers share them.
        let renderItem = { (item: ItemRecord) throws -> ItemPages? in
            guard let id = item.id else { return nil }
            var used = Set<String>()
            var thumbForID: String?
            let name = URL(fileURLWithPath: item.path).lastPathComponent
            let p = predictions[id]
            let original: Image? = item.tile.map { try? tiles.read($0, size: item.width) } ?? (try? Codecs.decode(path: item.path))
            let key = String(item.contentHash.prefix(16))
            var imageFile: String?, thumbFile: String?
            if let original {
                imageFile = try writeOnce("images/\(key).jpg", &used) { try writeJPEG(original, to: $0) }
                thumbFile = needsThumbnail(original)
                    ? try writeOnce("thumbs/\(key).jpg", &used) { try writeJPEG(thumbnail(original), to: $0) } : imageFile
                thumbForID = thumbFile
            }
            let wrong = item.label != nil && p != nil && item.label != p!.className
            let itemMetrics = metricsByItem[id] ?? []
            var overlayViews: [[String: Any]] = []
            var doctorOverlay: String?
            var doctorTarget = p?.className ?? ""
            let stored = try store.attributions(item: id).map { a -> AttributionRecord in
                var a = a
                a.explainer = label(a.explainer, a.modelHash)
                return a
            }
            for a in stored.sorted(by: { $0.explainer < $1.explainer }) {
                let tag = "\(String(a.cacheKey.prefix(16)))-\(options.colormap.rawValue)-q995"
                let targetClasses = classesOf[a.modelHash] ?? classes
                var view: [String: Any] = ["explainer": a.explainer, "method": a.method, "target": a.target,
                                           "targetName": a.target < targetClasses.count ? targetClasses[a.target] : "\(a.target)"]
                if let original {
                    let (overlay, scale) = Overlay.relevance(image: original, heatmap: a.heatmap, width: a.width, height: a.height,
                                                             colormap: options.colormap)
                    // The clip in the method's own units: the stored map is min-max scaled from [low, high].
                    let (low, high) = a.rawRange
                    view["scale"] = String(format: "full colour from %.3g (99.5th percentile; map range %.3g to %.3g)",
                                           low + Double(scale.clip) * (high - low), low, high)
                    view["image"] = try writeOnce("images/\(tag).jpg", &used) { try writeJPEG(overlay, to: $0) }
                    /// The heatmap alone at the image's size (for the item page's view switch): `values`
                    /// resized to the image, then `paint`ed.
                    func alone(_ name: String, _ values: [Float], _ paint: ([Float]) -> Image) throws -> String {
                        try writeOnce("images/\(name)-map.jpg", &used) {
                            try writeJPEG(paint(Resize.bilinear(values, channels: 1, height: a.height, width: a.width,
                                                                toHeight: original.height, toWidth: original.width)), to: $0)
                        }
                    }
                    // A signed method: red for the class, blue against it, on the item page and in the
                    // gallery; the doctor's page keeps the magnitude (one colour scale to explain).
                    view["doctorImage"] = view["image"]
                    // The sequential thumbnail also serves the slide and SpRAy pages (one colour scale there).
                    view["sequentialThumb"] = needsThumbnail(original)
                        ? try writeOnce("thumbs/\(tag).jpg", &used) { try writeJPEG(thumbnail(overlay), to: $0) } : view["image"]
                    var (shown, shownTag) = (overlay, tag)
                    if let signed = a.signed, let top = a.signedMax {
                        let (bwr, s) = Overlay.signedRelevance(image: original, map: signed, width: a.width, height: a.height)
                        let q = Double(s.clip) * top
                        let (lo, hi) = (Double(signed.min() ?? 0) * top, Double(signed.max() ?? 0) * top)
                        let name = view["targetName"] as? String ?? ""
                        view["scale"] = String(format: "red: for %@, blue: against; full colour at ±%.3g (99.5th percentile of |relevance|; signed map from %.3g to %.3g)",
                                               name, q, lo, hi)
                        view["signedBar"] = SVG.divergingBar(low: String(format: "−%.3g", q), high: String(format: "+%.3g", q))
                        (shown, shownTag) = (bwr, "\(String(a.cacheKey.prefix(16)))-bwr-q995")
                        view["image"] = try writeOnce("images/\(shownTag).jpg", &used) { try writeJPEG(bwr, to: $0) }
                        view["map"] = try alone(shownTag, signed) {
                            Overlay.colorizeSigned($0, width: original.width, height: original.height, clip: s.clip)
                        }
                    } else {
                        view["map"] = try alone(tag, a.heatmap.map { min(1, max(0, $0 / scale.clip)) }) {
                            Overlay.colorize($0, width: original.width, height: original.height, colormap: options.colormap)
                        }
                    }
                    view["original"] = imageFile
                    view["thumb"] = shownTag == tag ? view["sequentialThumb"] : needsThumbnail(original)
                        ? try writeOnce("thumbs/\(shownTag).jpg", &used) { try writeJPEG(thumbnail(shown), to: $0) } : view["image"]
                }
                // A slide tile's heatmap is in the slide's stitched .npy (and the store): no file per tile.
                if item.tile == nil {
                    view["array"] = try writeOnce("arrays/\(String(a.cacheKey.prefix(16))).npy", &used) {
                        try NPY.write(Tensor(shape: [a.height, a.width], data: a.heatmap), to: $0)
                    }
                }
                if let v = itemMetrics.first(where: { $0.explainer == a.explainer && $0.name == "pointing_game" })?.value {
                    view["lesion"] = v >= 0.5 ? "peak on lesion" : "peak off lesion"
                }
                if let stability = a.diagnostics["stability"] {
                    var parts = [String(format: "stability %.2f", stability)]
                    if let r2 = a.diagnostics["fit_r2"] { parts.append(String(format: "fit R² %.2f", r2)) }
                    if let n = a.diagnostics["samples"] { parts.append("\(Int(n)) samples") }
                    view["stability"] = parts.joined(separator: " · ")
                    if stability < ReportWriter.stabilityThreshold { view["unstable"] = true }
                }
                if a.explainer == doctorExplainer {
                    doctorOverlay = (view["doctorImage"] ?? view["image"]) as? String
                    doctorTarget = view["targetName"] as? String ?? doctorTarget
                }
                overlayViews.append(view)
            }
            let probabilities = (p?.probabilities ?? []).enumerated().map { i, v -> [String: Any] in
                ["className": i < classes.count ? classes[i] : "\(i)", "value": String(format: "%.4f", v), "percent": percent(v)]
            }
            // A tile's case page is its slide's doctor page.
            let slideID = item.tile.flatMap { slideIDs["\(item.dataset)\u{0}\($0.slidePath)"] }
            let itemHref = "items/\(id).html", doctorHref = slideID.map { "doctor/slide-\($0).html" } ?? "doctor/\(id).html"
            var context = common
            context.merge([
                "title": "Candela: \(name)", "name": name, "path": item.path, "label": item.label ?? "—",
                "prediction": p?.className ?? "—", "probability": p.map { String(format: "%.3f", $0.probability) } ?? "—",
                "wrong": wrong, "image": orFalse(imageFile), "overlays": overlayViews, "probabilities": probabilities,
                "metrics": itemMetrics.sorted { ($0.explainer, $0.name) < ($1.explainer, $1.name) }.map {
                    ["explainer": $0.explainer, "name": $0.name, "value": $0.value.map { String(format: "%.4g", $0) } ?? "n/a"]
                },
                "colorBar": colorBar, "galleryHref": galleryPage[id] ?? "index.html", "doctorHref": doctorHref, "itemHref": itemHref,
                "modelPredictions": multiModel ? (predictionsByItem[id] ?? []).sorted { (modelNames[$0.modelHash] ?? "") < (modelNames[$1.modelHash] ?? "") }.map {
                    ["model": modelNames[$0.modelHash] ?? String($0.modelHash.prefix(12)), "className": $0.className,
                     "probability": String(format: "%.3f", $0.probability), "wrong": item.label != nil && item.label != $0.className]
                } as Any : false,
                "hasModelPredictions": multiModel,
            ]) { _, new in new }
            try render(templates["item"]!, context, to: itemHref, &used)

            if let doctorExplainer, item.tile == nil {
                let card = cards[doctorExplainer]
                var doctor = context
                doctor.merge([
                    "label": orFalse(item.label), "overlay": orFalse(doctorOverlay), "explainer": doctorExplainer, "colorBar": sequentialBar,
                    "targetName": doctorTarget, "methodTitle": card?.title ?? doctorExplainer,
                    "probabilityPercent": p.map { percent($0.probability) } ?? "—",
                    "caption": "The same image: the highlighted regions are those that raised the model's '\(doctorTarget)' score the most.",
                    "meaning": card?.meaning ?? "The colours show how much each region mattered to the model's answer.",
                    "limits": card?.limits ?? "",
                    "trust": trustSentence(doctorExplainer, metricRows: metricRows, pointing: pointingRows),
                    "unstable": overlayViews.first { $0["explainer"] as? String == doctorExplainer }?["unstable"] != nil
                        ? "This method draws its picture from random samples, and for this case two halves of its samples drew different pictures: treat the highlighted regions as uncertain." as Any : false,
                ]) { _, new in new }
                try render(templates["doctor"]!, doctor, to: doctorHref, &used)
            }

            let card: [String: Any] = ["name": name, "label": item.label ?? "—", "prediction": p?.className ?? "—",
                             "probability": p.map { String(format: "%.3f", $0.probability) } ?? "—", "wrong": wrong,
                             "thumb": orFalse(thumbFile), "overlays": overlayViews.map { ["explainer": $0["explainer"]!, "thumb": orFalse($0["thumb"]), "lesion": orFalse($0["lesion"]),
                                                                   "unstable": $0["unstable"] ?? false] },
                             "href": itemHref, "doctorHref": doctorHref]
            return ItemPages(id: id, card: card, thumb: thumbForID, used: used)
        }
        let pagesByItem = try ReportWriter.parallelMap(items, renderItem)
        // Each tile's overlay thumbnails by explainer label, for the slide pages' top tiles.
        var overlayThumbs: [Int64: [String: String]] = [:]
        for page in pagesByItem.compactMap({ $0 }) {
            for o in page.card["overlays"] as? [[String: Any]] ?? [] {
                if let e = o["explainer"] as? String, let t = (o["sequentialThumb"] ?? o["thumb"]) as? String { overlayThumbs[page.id, default: [:]][e] = t }
            }
        }
        let slideRows = slides.isEmpty ? [] : try writeSlidePages(slides, templates: templates, common: common,
                                                                   modelNames: modelNames, models: runModels, items: items,
                                                                   predictions: predictions, overlayThumbs: overlayThumbs,
                                                                   metricsByItem: metricsByItem, colorBar: sequentialBar, used: &used)
        for page in pagesByItem.compactMap({ $0 }) {
            cardsByID[page.id] = page.card
            if let t = page.thumb { thumbByID[page.id] = t }
            used.formUnion(page.used)
        }

        for page in pagesToWrite {
            var context = common
            context.merge([
                "title": "Candela: \(page.className), page \(page.page) of \(page.pages)", "className": page.className,
                "page": page.page, "pages": page.pages, "count": page.items.count, "colorBar": colorBar,
                "items": page.items.compactMap { cardsByID[$0.id!] },
                "previous": page.page > 1 ? "gallery-\(safe(page.className))-\(page.page - 1).html" as Any : false,
                "next": page.page < page.pages ? "gallery-\(safe(page.className))-\(page.page + 1).html" as Any : false,
            ]) { _, new in new }
            try render(templates["gallery"]!, context, to: page.file, &used)
        }

        let comparisons = try comparisonSections(items: items, modelNames: modelNames, thumbs: thumbByID)
        let sprayRows = try writeSprayPage(templates: templates, common: common, modelNames: modelNames,
                                           classNames: Dictionary(try store.models().map { ($0.hash, $0.classes) }, uniquingKeysWith: { a, _ in a }),
                                           items: items, overlayThumbs: overlayThumbs, thumbs: thumbByID, label: label, used: &used)
        // Index.
        var labelled = 0, correct = 0
        for item in items { if let id = item.id, let l = item.label, let p = predictions[id] { labelled += 1; if l == p.className { correct += 1 } } }
        let labels = Array(Set(items.compactMap(\.label))).sorted { (classes.firstIndex(of: $0) ?? Int.max, $0) < (classes.firstIndex(of: $1) ?? Int.max, $1) }
        let confusion = labels.map { label -> [String: Any] in
            ["label": label, "cells": classes.map { c -> [String: Any] in
                let n = items.filter { $0.label == label && $0.id.flatMap { predictions[$0]?.className } == c }.count
                return ["count": n, "off": n > 0 && c != label]
            }]
        }
        // Every model of the run side by side: accuracy, and agreement with the primary model.
        let modelRows = runModels.map { m -> [String: Any] in
            let mine = allPredictions.filter { $0.modelHash == m.hash }
            let labelled = mine.compactMap { p -> Bool? in
                guard let l = items.first(where: { $0.id == p.itemID })?.label else { return nil }
                return l == p.className
            }
            let shared = mine.compactMap { p in predictions[p.itemID].map { $0.className == p.className } }
            return ["name": m.name, "hash": String(m.hash.prefix(12)), "items": mine.count,
                    "accuracy": labelled.isEmpty ? "no labels" : String(format: "%.1f%%", 100 * Double(labelled.filter { $0 }.count) / Double(labelled.count)),
                    "agreement": shared.isEmpty ? "—" : String(format: "%.1f%%", 100 * Double(shared.filter { $0 }.count) / Double(shared.count))]
        }
        let gates = try store.gateResults(run: runID).map { g -> [String: Any] in
            ["name": g.name, "subject": g.explainer.map { "\(g.metric) of \($0)" } ?? g.metric,
             "value": g.value.map { String(format: "%.4g", $0) } ?? "no value",
             "rule": "\(g.comparison) \(String(format: "%g", g.threshold))", "verdict": g.passed ? "PASS" : "FAIL", "failed": !g.passed]
        }
        let gatesFailed = gates.contains { ($0["failed"] as? Bool) == true }
        var context = common
        context.merge([
            "title": "Candela report: \(run.pipeline)",
            "accuracy": labelled > 0 ? String(format: "%d / %d correct (%.1f%%)", correct, labelled, 100 * Double(correct) / Double(labelled)) : "no labels",
            "runParameters": run.parameters == "{}" ? false : run.parameters.replacingOccurrences(of: "\\/", with: "/") as Any,
            "explainers": explainerNames.joined(separator: ", "), "explainerRows": explainerRows,
            "galleries": galleryLinks,
            "hasConfusion": !labels.isEmpty, "confusion": confusion, "confusionClasses": classes,
            "primaryModel": model?.name ?? "?", "multiModel": multiModel, "modelRows": modelRows,
            "hasSlides": !slideRows.isEmpty, "slides": slideRows,
            "hasComparisons": !comparisons.isEmpty, "comparisons": comparisons,
            "hasSpray": !sprayRows.isEmpty, "spray": sprayRows,
            "pointing": pointingRows, "hasPointing": !pointingRows.isEmpty,
            "pointingChart": pointingBars.isEmpty ? "" : SVG.bars(pointingBars, title: "Pointing game (standard), share of items with a lesion"),
            "metricNames": present.map { ["name": $0, "help": help[$0] ?? ""] },
            "metricRows": metricRows, "hasMetrics": !metricRows.isEmpty,
            "metricPlots": (curvePlots + metricPlots).map { ["svg": $0] }, "hasMetricPlots": !(curvePlots + metricPlots).isEmpty, "timePlot": timePlot, "hasSanity": present.contains("randomization"),
            "gates": gates, "hasGates": !gates.isEmpty, "gateVerdict": gatesFailed ? "FAIL" : "PASS", "gatesFailed": gatesFailed,
            "views": try curatedViews(items: items, predictions: predictions, metrics: metrics, thumbs: thumbByID, run: run),
            "cards": explainerNames.compactMap { e -> [String: Any]? in
                guard let c = cards[e] else { return nil }
                var card: [String: Any] = ["name": e, "title": c.title, "meaning": c.meaning, "cost": c.cost, "limits": c.limits]
                if let s = summaries.first(where: { $0.explainer == e }),
                   let mode = (try? JSONDecoder().decode([String: String].self, from: Data(s.parameters.utf8)))?["mode"] {
                    card["mode"] = mode
                }
                let stability = values(e, "stability").sorted()
                if !stability.isEmpty {
                    let unstable = stability.filter { $0 < ReportWriter.stabilityThreshold }.count
                    card["stability"] = String(format: "Stability (split-half reliability): median %.2f over %d heatmaps", stability[stability.count / 2], stability.count)
                        + (unstable > 0 ? "; \(unstable) below \(ReportWriter.stabilityThreshold), flagged unstable" : "; none below \(ReportWriter.stabilityThreshold)")
                    if unstable > 0 { card["unstable"] = true }
                }
                return card
            },
            "failures": failures.prefix(500).map { ["path": $0.itemPath, "stage": $0.stage, "message": $0.message] },
            "failureCount": failures.count, "hasFailures": !failures.isEmpty,
            "colormap": options.colormap.rawValue, "colorBar": colorBar,
        ]) { _, new in new }
        try render(templates["index"]!, context, to: "index.html", &used)
        try folder.finish(using: used)
        return "\(directory)/index.html"
    }

    // MARK: - Pieces

    func headerContext(run: RunRecord, model: ModelRecord?, items: [ItemRecord]) -> [String: Any] {
        ["pipeline": run.pipeline, "runID": run.id ?? 0, "started": run.startedAt, "status": run.status, "version": run.candelaVersion,
         "model": model?.name ?? "?", "modelHash": String((model?.hash ?? "").prefix(12)),
         "dataset": Array(Set(items.map(\.dataset))).sorted().joined(separator: ", "), "itemCount": items.count]
    }

    func explainerParameterRows(_ summaries: [AttributionSummary]) -> [[String: Any]] {
        var seen = Set<String>()
        return summaries.sorted { $0.explainer < $1.explainer }.compactMap { s in
            guard seen.insert(s.explainer).inserted else { return nil }
            return ["name": s.explainer, "method": s.method, "parameters": s.parameters.replacingOccurrences(of: "\\/", with: "/")]
        }
    }

    /// A sentence on how far the chosen explainer can be trusted on this run, from its metrics.
    func trustSentence(_ explainer: String, metricRows: [[String: Any]], pointing: [[String: Any]]) -> String {
        var parts: [String] = []
        if let p = pointing.first(where: { $0["explainer"] as? String == explainer }) {
            parts.append("On this review's annotated cases, its most highlighted point fell on the marked lesion in \(p["fraction"]!) of cases.")
        }
        if let row = metricRows.first(where: { $0["explainer"] as? String == explainer }), let sanity = row["sanity"] as? String {
            parts.append(sanity == "passes" ? "It passed the sanity check (its pictures change when the model's knowledge is erased)."
                                            : "Caution: it failed the sanity check (its pictures barely change when the model's knowledge is erased).")
        }
        return parts.joined(separator: " ")
    }

    /// The index's curated views: small tables of the items that deserve a look first.
    func curatedViews(items: [ItemRecord], predictions: [Int64: PredictionRecord], metrics: [MetricRecord],
                      thumbs: [Int64: String], run: RunRecord) throws -> [[String: Any]] {
        let byID = Dictionary(items.compactMap { i in i.id.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
        func row(_ id: Int64, _ cells: [String]) -> [String: Any] {
            let item = byID[id]!
            return ["name": URL(fileURLWithPath: item.path).lastPathComponent, "href": "items/\(id).html",
                    "thumb": orFalse(thumbs[id]), "cells": cells]
        }
        func view(_ id: String, _ title: String, _ description: String, columns: [String], rows: [[String: Any]], empty: String) -> [String: Any] {
            ["id": id, "title": title, "description": description, "columns": columns, "rows": rows, "hasRows": !rows.isEmpty,
             "empty": rows.isEmpty ? empty as Any : false]
        }
        var views: [[String: Any]] = []
        let errors = items.compactMap { i -> (Int64, PredictionRecord, String)? in
            guard let id = i.id, let l = i.label, let p = predictions[id], p.className != l else { return nil }
            return (id, p, l)
        }.sorted { $0.1.probability > $1.1.probability }.prefix(12)
        views.append(view("errors", "Most confident errors", "Misclassified items, most confident first.",
                          columns: ["label", "predicted", "probability"],
                          rows: errors.map { row($0.0, [$0.2, $0.1.className, String(format: "%.3f", $0.1.probability)]) },
                          empty: items.contains { $0.label != nil } ? "No misclassified item." : "The dataset has no labels."))
        func perItem(_ name: String) -> [(Int64, String, Double)] {
            metrics.filter { $0.name == name }.compactMap { m in m.value.map { (m.itemID, m.explainer, $0) } }
        }
        let agreement = Dictionary(grouping: perItem("agreement"), by: \.0).mapValues { $0.map(\.2).reduce(0, +) / Double($0.count) }
        views.append(view("disagree", "Explainers that disagree",
                          "Items whose explainers' heatmaps rank pixels least alike (mean Spearman ρ between explainers).",
                          columns: ["mean agreement"], rows: agreement.sorted { $0.value < $1.value }.prefix(12).map { row($0.key, [String(format: "%.3f", $0.value)]) },
                          empty: "Add `agreement` to an evaluate stage's metrics to find them."))
        let outside = perItem("outside_tissue").sorted { $0.2 > $1.2 }.prefix(12)
        views.append(view("outside-tissue", "Attention outside tissue", "Heatmaps with the largest share of their mass outside the tissue mask.",
                          columns: ["explainer", "mass outside"], rows: outside.map { row($0.0, [$0.1, percent($0.2)]) },
                          empty: "Add `outside_tissue` to an evaluate stage and `tissue_mask` to the dataset CSV to find them."))
        let insertion = perItem("insertion_auc").sorted { $0.2 < $1.2 }.prefix(12)
        views.append(view("least-faithful", "Least faithful heatmaps",
                          "Lowest insertion AUC: putting the highlighted pixels back first barely restores the model's confidence.",
                          columns: ["explainer", "insertion AUC"], rows: insertion.map { row($0.0, [$0.1, String(format: "%.3f", $0.2)]) },
                          empty: "Add `insertion_auc` to an evaluate stage's metrics to find them."))
        // What changed since the previous run of this pipeline in this store.
        let previous = try store.runs().last { $0.pipeline == run.pipeline && ($0.id ?? 0) < runID && $0.status != "running" }
        if let previous, let pid = previous.id {
            // The previous run's predicted class by item path.
            let classByID = Dictionary(try store.predictions(run: pid).map { ($0.itemID, $0.className) }, uniquingKeysWith: { a, _ in a })
            let beforeItems = Dictionary(try store.items(run: pid).compactMap { i in i.id.map { (i.path, $0) } }, uniquingKeysWith: { a, _ in a })
            let before = beforeItems.compactMapValues { classByID[$0] }
            var changed: [[String: Any]] = []
            for item in items {
                guard let id = item.id, let now = predictions[id]?.className, let old = before[item.path], old != now else { continue }
                changed.append(row(id, [old, now]))
            }
            let added = items.filter { beforeItems[$0.path] == nil }.count
            views.append(view("changes", "Changes since run \(pid) (\(previous.startedAt))",
                              "Items whose prediction changed since the previous run of this pipeline in this store; \(added) items are new.",
                              columns: ["before", "now"], rows: Array(changed.prefix(50)), empty: "No prediction changed."))
        } else {
            views.append(view("changes", "Changes since the previous run", "", columns: [], rows: [],
                              empty: "This is the first run of pipeline '\(run.pipeline)' in this store."))
        }
        return views
    }

    func loadTemplates() throws -> [String: MustacheTemplate] {
        var out: [String: MustacheTemplate] = [:]
        for name in Templates.names {
            var text = Templates.builtIn(name)
            if let dir = options.templateDirectory, let data = FileManager.default.contents(atPath: "\(dir)/\(name).mustache") {
                text = String(decoding: data, as: UTF8.self)
            }
            do {
                out[name] = try MustacheTemplate(string: text)
            } catch {
                throw StoreError("\(options.templateDirectory.map { "\($0)/\(name).mustache" } ?? "built-in \(name) template"): \(error)")
            }
        }
        return out
    }

    func render(_ template: MustacheTemplate, _ context: [String: Any], to relative: String, _ used: inout Set<String>) throws {
        try Data(template.render(context).utf8).write(to: URL(fileURLWithPath: "\(directory)/\(relative)"))
        used.insert(relative)
    }

    /// Writes `relative` with `body` unless the previous report wrote it (files are named by
    /// content); returns it.
    func writeOnce(_ relative: String, _ used: inout Set<String>, _ body: (String) throws -> Void) throws -> String {
        if !folder.wroteBefore(relative) { try body("\(directory)/\(relative)") }
        used.insert(relative)
        return relative
    }

    /// Report images are JPEG (quality 90): photographs and smooth overlays, written by the
    /// thousand; PNG would cost ~4x the bytes and ~3x the time.
    func writeJPEG(_ image: Image, to path: String, quality: Int = 90) throws {
        try Codecs.encodeJPEG(image, quality: quality).write(to: URL(fileURLWithPath: path))
    }

    /// Images up to twice the thumbnail side are shown as they are (a smaller copy saves little).
    func needsThumbnail(_ image: Image) -> Bool { max(image.width, image.height) > 2 * ReportWriter.thumbnailSide }

    /// At most `thumbnailSide` pixels on the longer side (bilinear, per channel).
    func thumbnail(_ image: Image) -> Image {
        let rgb = image.rgb()
        let side = max(rgb.width, rgb.height)
        guard side > ReportWriter.thumbnailSide else { return rgb }
        let (w, h) = (max(1, rgb.width * ReportWriter.thumbnailSide / side), max(1, rgb.height * ReportWriter.thumbnailSide / side))
        let planes = rgb.planarFloats()
        let resized = Resize.bilinear(planes, channels: 3, height: rgb.height, width: rgb.width, toHeight: h, toWidth: w)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for c in 0..<3 { for i in 0..<(w * h) { pixels[i * 3 + c] = UInt8(min(255, max(0, resized[c * w * h + i].rounded()))) } }
        return Image(width: w, height: h, channels: 3, pixels: pixels)
    }

    /// Mustache sections treat any present value, even "", as true: absent values become false.
    func orFalse(_ v: Any?) -> Any { v ?? false }

    func percent(_ v: Double) -> String { String(format: "%.0f%%", 100 * v) }

    /// A file-name-safe form of a name.
    func safe(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}

/// Reads tiles of the report's items from their slides (each slide opened once).
final class TileReader: @unchecked Sendable {
    private let slides = SlideCache()

    /// The tile's pixels as the item job read them (its level, resampled to `size`).
    func read(_ t: TileRecord, size: Int) throws -> Image {
        let slide = try slides.slide(t.slidePath)
        let ds = slide.levels[min(t.level, slide.levels.count - 1)].downsample
        let tile = SlideTile(x: t.x, y: t.y, width: t.width, height: t.height, level: t.level,
                             levelWidth: max(1, Int((Double(t.width) / ds).rounded())), levelHeight: max(1, Int((Double(t.height) / ds).rounded())),
                             size: size, tissue: t.tissue, piece: t.piece)
        return try TileGrid.read(tile, from: slide)
    }
}

/// The shared state of `ReportWriter.parallelMap`'s workers, guarded by its lock.
private final class ParallelMapState<T, R>: @unchecked Sendable {
    let lock = NSLock()
    var next = 0
    var results: [Int: R] = [:]
    var error: Error?
    let items: [T]
    let transform: (T) throws -> R

    init(_ items: [T], _ transform: @escaping (T) throws -> R) {
        self.items = items
        self.transform = transform
    }
}
