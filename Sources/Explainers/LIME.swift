import Foundation
import Imaging
import Tensors

/// LIME for images (Ribeiro et al. 2016, arXiv:1602.04938, Eq. 1-2 and Algorithm 1) following
/// lime's `LimeImageExplainer.explain_instance`: superpixels (SLIC here, `segments`,
/// `compactness`; or a user segmentation `segments=FILE.npy`, integer labels (H,W)); `samples`
/// binary vectors over superpixels, the first all ones; hidden superpixels filled with their mean
/// colour; softmax probability of the target for each; cosine distance to the all-ones vector;
/// kernel √exp(−d²/0.25²); a weighted ridge regression (α = 1, intercept unpenalized, solved with
/// LAPACK) of the probability on the binary vectors. `seed` seeds every random choice.
/// Raw output (H,W): each superpixel painted with its coefficient.
public struct LIMEExplainer: Explainer {
    public static let method = "lime"
    let samples: Int
    let segments: Int
    let segmentsFile: String?
    let compactness: Float
    let seed: Int
    let batch: Int
    public var parameters: [String: String] {
        ["samples": "\(samples)", "segments": segmentsFile ?? "\(segments)", "compactness": "\(compactness)", "seed": "\(seed)"]
    }
    public static let card = MethodCard(
        title: "LIME",
        meaning: "A simple linear model fitted to how the class probability changes when superpixels are greyed out: each region's weight.",
        cost: "One forward pass per sample (1000 by default, batched).",
        limits: "Depends on the segmentation and on the random samples; fills hidden regions with their mean colour, which the model may still read.")

    init(_ p: Parameters) throws {
        samples = try p.int("samples", default: 1000, min: 2)
        compactness = try p.float("compactness", default: 10, range: 0.001...10000)
        seed = try p.int("seed", default: 0, min: 0, max: Int(Int32.max))
        batch = try p.int("batch", default: 16)
        if let s = p.string("segments"), Int(s) == nil {
            segmentsFile = s
            segments = 0
        } else {
            segmentsFile = nil
            segments = try p.int("segments", default: 50)
        }
    }

    /// Labels (H·W) in 0..<count from the user's file or from SLIC on the request's image.
    func segmentation(_ request: ExplanationRequest, height h: Int, width w: Int) throws -> (labels: [Int], count: Int) {
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
            return (t.data.map { index[Int($0)]! }, distinct.count)
        }
        let rgb = request.image ?? {
            // A .npy input: each channel min-max scaled to [0,1].
            var planes = Array(request.input.data.prefix(3 * h * w))
            for c in 0..<3 {
                let range = (c * h * w)..<((c + 1) * h * w)
                let lo = planes[range].min() ?? 0, hi = planes[range].max() ?? 1
                for i in range { planes[i] = hi > lo ? (planes[i] - lo) / (hi - lo) : 0 }
            }
            return planes
        }()
        return SLIC.segment(rgb: rgb, height: h, width: w, segments: segments, compactness: compactness)
    }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let x = request.input
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let classes = try Backprop.scores(try request.forwardPass(), model: request.model).shape[1]
        try Backprop.checkTarget(request.target, classes: classes)
        let (labels, count) = try segmentation(request, height: h, width: w)
        // Each superpixel's mean value per channel (lime's "fudged" image, hide_color=None).
        var means = [Float](repeating: 0, count: count * c), sizes = [Float](repeating: 0, count: count)
        for i in 0..<(h * w) { sizes[labels[i]] += 1 }
        for ch in 0..<c { for i in 0..<(h * w) { means[labels[i] * c + ch] += x.data[ch * h * w + i] } }
        for k in 0..<count { for ch in 0..<c { means[k * c + ch] /= max(sizes[k], 1) } }

        var rng = SeededGenerator(seed: UInt64(seed))
        var design = [[Float]](repeating: [], count: samples)
        design[0] = [Float](repeating: 1, count: count)
        for s in 1..<samples { design[s] = (0..<count).map { _ in Bool.random(using: &rng) ? 1 : 0 } }
        var probabilities: [Float] = []
        var start = 0
        while start < samples {
            let rows = design[start..<min(samples, start + batch)]
            let inputs = rows.map { z -> Tensor in
                var t = x
                for i in 0..<(h * w) where z[labels[i]] == 0 {
                    for ch in 0..<c { t.data[ch * h * w + i] = means[labels[i] * c + ch] }
                }
                return t
            }
            probabilities += try Backprop.batchScores(request.model, inputs: Array(inputs), chunk: batch)
                .map { softmax($0)[request.target] }
            start += rows.count
        }
        // Cosine distance to the all-ones row, then lime's kernel with width 0.25.
        let weights: [Double] = design.map { z in
            let ones = Double(z.reduce(0, +))
            let cosine = ones > 0 ? ones / (ones.squareRoot() * Double(count).squareRoot()) : 0
            let d = 1 - cosine
            return (exp(-(d * d) / (0.25 * 0.25))).squareRoot()
        }
        let coefficients = try LIMEExplainer.ridge(design, probabilities.map(Double.init), weights: weights, alpha: 1)
        return Attribution(raw: Tensor(shape: [h, w], data: labels.map { Float(coefficients[$0]) }), space: .layer,
                           reduction: .absolute)
    }

    /// Weighted ridge regression with an unpenalized intercept (sklearn `Ridge(alpha)` with
    /// `sample_weight`): centre X and y by their weighted means, solve (XᵀWX + αI)β = XᵀWy.
    static func ridge(_ x: [[Float]], _ y: [Double], weights: [Double], alpha: Double) throws -> [Double] {
        let p = x.first?.count ?? 0
        let total = weights.reduce(0, +)
        var xm = [Double](repeating: 0, count: p)
        var ym = 0.0
        for (i, row) in x.enumerated() {
            for j in 0..<p { xm[j] += weights[i] * Double(row[j]) }
            ym += weights[i] * y[i]
        }
        for j in 0..<p { xm[j] /= total }
        ym /= total
        var a = [Double](repeating: 0, count: p * p), b = [Double](repeating: 0, count: p)
        for (i, row) in x.enumerated() {
            let centred = (0..<p).map { Double(row[$0]) - xm[$0] }
            for j in 0..<p {
                b[j] += weights[i] * centred[j] * (y[i] - ym)
                for k in j..<p { a[j * p + k] += weights[i] * centred[j] * centred[k] }
            }
        }
        for j in 0..<p { for k in 0..<j { a[j * p + k] = a[k * p + j] } }
        for j in 0..<p { a[j * p + j] += alpha }
        guard let beta = LinearAlgebra.solveSPD(a, b, n: p) else {
            throw ExplainerError("lime: the ridge system is singular")
        }
        return beta
    }
}

extension LIMEExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["samples", "segments", "compactness", "seed", "batch"]
    static func make(_ p: Parameters) throws -> any Explainer { try LIMEExplainer(p) }
}
