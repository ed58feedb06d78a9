import Foundation
import Imaging
import Tensors

/// LIME for images (Ribeiro et al. 2016, arXiv:1602.04938, Eq. 1-2 and Algorithm 1) in two modes.
///
/// `mode=lime` is lime's `LimeImageExplainer.explain_instance` (lime parity): SLIC superpixels
/// (`segments` 50, `compactness` 10, or a user segmentation `segments=FILE.npy`, integer labels
/// (H,W)); `samples` (1000) binary vectors over superpixels, the first all ones; hidden
/// superpixels filled with their mean colour; the softmax probability of the target for each;
/// cosine distance to the all-ones vector; kernel √exp(−d²/w²) with w = `kernel_width` 0.25; a
/// weighted ridge regression (α = 1, intercept unpenalized) of the probability on the vectors.
///
/// `mode=adaptive` (the default) keeps lime's model and changes what lime leaves to chance:
/// - superpixels at three scales derived from the image, sides of about 1/7, 1/10 and 1/14 of
///   its shorter side (at least 4 px; ≈ 50, 100 and 200 superpixels), their maps averaged, each
///   scaled by its largest |coefficient| (`segments=N` or a file gives one scale);
/// - the linear model explains the target's log-odds (`output=logodds`, `SampledOutput`), not
///   its probability, which a confident model holds at 1 whatever is hidden (nothing to fit);
/// - the kernel width is the median distance of the first round's samples (the median
///   heuristic) unless `kernel_width` is given;
/// - sampling in rounds: 200 samples per scale, then 100 more per round to every scale whose own
///   map is not yet stable, until the split-half reliability of the averaged map
///   (`Statistics.splitHalfReliability`, even against odd samples) reaches `stability` (0.9) or
///   `samples` (2000, the most forward passes in all) are spent.
///
/// Both modes report the map's split-half reliability (`stability`), the weighted R² of the fits
/// (`fit_r2`, mean over scales) and the forward passes spent (`samples`). `seed` seeds every
/// random choice. Raw output (H,W): each superpixel painted with its coefficient (one scale),
/// or the average of the scaled maps.
public struct LIMEExplainer: Explainer {
    public static let method = "lime"
    enum Mode: String { case adaptive, lime }
    let mode: Mode
    let samples: Int
    /// nil: scales from the image size (adaptive mode's default).
    let segments: Int?
    let segmentsFile: String?
    let compactness: Float
    /// nil: the median heuristic.
    let kernelWidth: Float?
    let stability: Float
    /// What the linear model explains: the target's probability (lime's) or its log-odds.
    let output: SampledOutput
    let seed: Int
    let batch: Int
    /// Samples per scale in the first round and in each later round of the adaptive mode.
    static let firstRound = 200, round = 100

    public var parameters: [String: String] {
        var p = ["mode": mode.rawValue, "samples": "\(samples)", "segments": segmentsFile ?? segments.map { "\($0)" } ?? "auto",
                 "compactness": "\(compactness)", "kernel_width": kernelWidth.map { "\($0)" } ?? "auto", "seed": "\(seed)"]
        if mode == .adaptive { p["stability"] = "\(stability)" }
        p["output"] = output.rawValue
        return p
    }
    public static let card = MethodCard(
        title: "LIME",
        meaning: "A simple linear model fitted to how the class score (its log-odds; the probability in lime mode) changes when superpixels are greyed out: each region's weight.",
        cost: "One forward pass per sample: adaptive mode samples until the map is stable (at most 2000 by default); lime mode 1000.",
        limits: "Depends on the segmentation and on the random samples (its stability says how much); fills hidden regions with their mean colour, which the model may still read.")

    init(_ p: Parameters) throws {
        mode = Mode(rawValue: try p.choice("mode", default: Mode.adaptive.rawValue, among: [Mode.adaptive.rawValue, Mode.lime.rawValue]))!
        samples = try p.int("samples", default: mode == .lime ? 1000 : 2000, min: 2)
        compactness = try p.float("compactness", default: 10, range: 0.001...10000)
        seed = try p.int("seed", default: 0, min: 0, max: Int(Int32.max))
        batch = try p.int("batch", default: 16)
        output = try SampledOutput(p, default: mode == .lime ? .probability : .logodds)
        switch p.string("kernel_width") {
        case nil, "auto": kernelWidth = mode == .lime ? 0.25 : nil
        default: kernelWidth = try p.float("kernel_width", default: 0.25, range: 1e-6...1e6)
        }
        if mode == .lime, p.string("stability") != nil {
            throw ExplainerError("lime: stability is the adaptive mode's stopping rule; mode=lime draws exactly `samples`")
        }
        stability = try p.float("stability", default: 0.9, range: 0...1)
        let given = p.string("segments")
        if let given, given != "auto", Int(given) == nil {
            segmentsFile = given
            segments = nil
        } else {
            segmentsFile = nil
            segments = given == nil || given == "auto" ? (mode == .lime ? 50 : nil) : try p.int("segments", default: 50)
        }
    }

    /// Superpixel counts for an image: sides of about 1/7, 1/10 and 1/14 of the shorter side,
    /// at least 4 px each (so a small image gets fewer, distinct scales).
    static func autoSegments(height h: Int, width w: Int) -> [Int] {
        var counts: [Int] = []
        for d in [7.0, 10.0, 14.0] {
            let side = max(4, Double(min(h, w)) / d)
            let n = max(2, Int((Double(h * w) / (side * side)).rounded()))
            if !counts.contains(n) { counts.append(n) }
        }
        return counts
    }

    /// The image in RGB for SLIC: the request's, or a `.npy` input min-max scaled per channel.
    func rgb(_ request: ExplanationRequest, height h: Int, width w: Int) -> [Float] {
        request.image ?? {
            var planes = Array(request.input.data.prefix(3 * h * w))
            for c in 0..<3 {
                let range = (c * h * w)..<((c + 1) * h * w)
                let lo = planes[range].min() ?? 0, hi = planes[range].max() ?? 1
                for i in range { planes[i] = hi > lo ? (planes[i] - lo) / (hi - lo) : 0 }
            }
            return planes
        }()
    }

    /// Labels (H·W) in 0..<count per scale: the user's file, one SLIC count, or the auto scales.
    func segmentations(_ request: ExplanationRequest, height h: Int, width w: Int) throws -> [(labels: [Int], count: Int)] {
        if let segmentsFile {
            let t = try NPY.read(segmentsFile)
            guard t.shape == [h, w] else {
                throw ExplainerError("\(segmentsFile): segmentation has shape \(t.shape); the model input is [\(h), \(w)]")
            }
            // Labels must be integers (NaN, ±Inf or 2.5 would be no segment at all).
            if let bad = t.data.firstIndex(where: { !$0.isFinite || $0 != $0.rounded() || abs($0) > 1e9 }) {
                throw ExplainerError("\(segmentsFile): segment labels must be integers; pixel \(bad) (row \(bad / w), column \(bad % w)) is \(t.data[bad])")
            }
            // Relabel the user's labels to 0..<count, keeping their order.
            let distinct = Array(Set(t.data.map { Int($0) })).sorted()
            let index = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, $0) })
            return [(t.data.map { index[Int($0)]! }, distinct.count)]
        }
        let image = rgb(request, height: h, width: w)
        let counts = segments.map { [$0] } ?? LIMEExplainer.autoSegments(height: h, width: w)
        return counts.map { SLIC.segment(rgb: image, height: h, width: w, segments: $0, compactness: compactness) }
    }

    /// One segmentation's samples: its labels, the mean fill per superpixel and channel (lime's
    /// "fudged" image, hide_color=None), and the ridge moments of its even and odd samples.
    struct Scale {
        let labels: [Int]
        let count: Int
        let means: [Float]
        var halves: [RidgeMoments]
        var drawn = 0
        /// Split-half reliability of this scale's map alone, after the last fit.
        var stability = 0.0

        init(labels: [Int], count: Int, input x: Tensor) {
            let (c, hw) = (x.shape[1], x.shape[2] * x.shape[3])
            var means = [Float](repeating: 0, count: count * c), sizes = [Float](repeating: 0, count: count)
            for i in 0..<hw { sizes[labels[i]] += 1 }
            for ch in 0..<c { for i in 0..<hw { means[labels[i] * c + ch] += x.data[ch * hw + i] } }
            for k in 0..<count { for ch in 0..<c { means[k * c + ch] /= max(sizes[k], 1) } }
            self.labels = labels
            self.count = count
            self.means = means
            halves = [RidgeMoments(features: count), RidgeMoments(features: count)]
        }

        /// The input with the superpixels that `z` hides filled with their means.
        func masked(_ x: Tensor, _ z: [Float]) -> Tensor {
            let (c, hw) = (x.shape[1], x.shape[2] * x.shape[3])
            var t = x
            for i in 0..<hw where z[labels[i]] == 0 {
                for ch in 0..<c { t.data[ch * hw + i] = means[labels[i] * c + ch] }
            }
            return t
        }

        /// Coefficients painted per pixel.
        func paint(_ beta: [Double]) -> [Float] { labels.map { Float(beta[$0]) } }
    }

    /// Cosine distance of a binary row to the all-ones row of `count` features.
    static func distance(_ z: [Float], count: Int) -> Double {
        let ones = Double(z.reduce(0, +))
        return 1 - (ones > 0 ? ones / (ones.squareRoot() * Double(count).squareRoot()) : 0)
    }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let x = request.input
        let (h, w) = (x.shape[2], x.shape[3])
        let classes = try Backprop.scores(try request.forwardPass(), model: request.model).shape[1]
        try Backprop.checkTarget(request.target, classes: classes)
        var scales = try segmentations(request, height: h, width: w).map { Scale(labels: $0.labels, count: $0.count, input: x) }
        // A budget too small for two samples per scale keeps the coarsest scales only.
        if mode == .adaptive && samples < 2 * scales.count { scales = Array(scales.prefix(max(1, samples / 2))) }
        var rng = SeededGenerator(seed: UInt64(seed))
        var width = kernelWidth.map(Double.init)
        var spent = 0

        /// Draws `n[s]` rows for each scale s (a scale's first row is all ones), runs them in
        /// batches and adds them to the scale's halves, alternating even and odd.
        func sample(_ n: [Int]) throws {
            var rows: [(scale: Int, z: [Float])] = []
            for (s, count) in n.enumerated() {
                for r in 0..<count {
                    let k = scales[s].count
                    rows.append((s, scales[s].drawn + r == 0 ? [Float](repeating: 1, count: k)
                                                              : (0..<k).map { _ in Bool.random(using: &rng) ? 1 : 0 }))
                }
            }
            var probabilities: [Double] = []
            var start = 0
            while start < rows.count {
                let chunk = rows[start..<min(rows.count, start + batch)]
                probabilities += try Backprop.batchScores(request.model, inputs: chunk.map { scales[$0.scale].masked(x, $0.z) }, chunk: batch)
                    .map { output.value($0, target: request.target) }
                start += chunk.count
            }
            if width == nil {
                // The median heuristic over the first round's rows (the all-ones rows are at 0).
                let d = rows.map { LIMEExplainer.distance($0.z, count: scales[$0.scale].count) }.filter { $0 > 0 }.sorted()
                width = d.isEmpty || d[d.count / 2] <= 0 ? 0.25 : d[d.count / 2]
            }
            for (row, y) in zip(rows, probabilities) {
                let d = LIMEExplainer.distance(row.z, count: scales[row.scale].count)
                let weight = exp(-(d * d) / (width! * width!)).squareRoot()
                scales[row.scale].halves[scales[row.scale].drawn % 2].add(row.z, y: y, weight: weight)
                scales[row.scale].drawn += 1
            }
            spent += rows.count
        }

        /// Fits every scale on all its samples and on each half: the map, the maps of the two
        /// halves (averaged over scales as the map is), and the mean R².
        func fit() throws -> (map: [Float], halves: [[Float]], r2: Double) {
            var map = [Float](repeating: 0, count: h * w)
            var halves = [map, map]
            var r2 = 0.0
            let single = scales.count == 1
            /// Adds a painted map, scaled by its largest |value| when scales are averaged.
            func accumulate(_ m: [Float], into acc: inout [Float]) {
                let peak = single ? 1 : (m.map { abs($0) }.max() ?? 0)
                guard peak > 0 else { return }
                for i in acc.indices { acc[i] += m[i] / peak / Float(scales.count) }
            }
            for s in scales.indices {
                let full = try (scales[s].halves[0] + scales[s].halves[1]).fit(alpha: 1)
                r2 += full.r2 / Double(scales.count)
                accumulate(scales[s].paint(full.beta), into: &map)
                let parts = try scales[s].halves.map { try scales[s].paint($0.fit(alpha: 1).beta) }
                scales[s].stability = Statistics.splitHalfReliability(parts[0], parts[1])
                for k in 0..<2 { accumulate(parts[k], into: &halves[k]) }
            }
            return (map, halves, r2)
        }

        switch mode {
        case .lime:
            try sample([samples])
        case .adaptive:
            let first = min(LIMEExplainer.firstRound, samples / scales.count)
            try sample(scales.map { _ in first })
        }
        while true {
            let result = try fit()
            let reliability = Statistics.splitHalfReliability(result.halves[0], result.halves[1])
            let left = samples - spent
            if mode == .lime || reliability >= Double(stability) || left <= 0 {
                // Coefficients are signed (a region that lowers the score is negative): drawn diverging.
                var attribution = Attribution(raw: Tensor(shape: [h, w], data: result.map), space: .layer, signed: true)
                attribution.diagnostics = ["stability": reliability, "fit_r2": result.r2, "samples": Double(spent)]
                return attribution
            }
            // More samples where the fit is poor: to the scales whose own map is not stable yet.
            let poor = scales.indices.filter { scales[$0].stability < Double(stability) }
            let next = poor.isEmpty ? Array(scales.indices) : poor
            let each = max(1, min(LIMEExplainer.round, left / next.count))
            var n = [Int](repeating: 0, count: scales.count)
            var budget = left
            for s in next where budget > 0 {
                n[s] = min(each, budget)
                budget -= n[s]
            }
            try sample(n)
        }
    }
}

extension LIMEExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["mode", "samples", "segments", "compactness", "kernel_width", "stability", "output", "seed", "batch"]
    static func make(_ p: Parameters) throws -> any Explainer { try LIMEExplainer(p) }
}
