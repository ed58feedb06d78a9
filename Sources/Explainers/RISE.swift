import Foundation
import Imaging
import Tensors

/// RISE (Petsiuk et al. 2018, arXiv:1806.07421, Eq. 6-7 and §3.2) in two modes. Masks are
/// random binary `cells`×`cells` grids (each cell kept with probability `p`), upsampled
/// bilinearly to (cells+1)·⌈H/cells⌉ and cropped at a random shift; each multiplies the input and
/// P_t, the target's score (`output`), is measured. Masked inputs run in batches of `batch`.
///
/// `mode=paper`: the paper's estimator S = Σ_i P_t(x ⊙ M_i)·M_i / (N·p) over `masks` (2000)
/// masks of `cells` 7 and `p` 0.5, P_t the softmax probability.
///
/// `mode=adaptive` (the default) estimates the paper's map up to a constant (its S(λ) is
/// E[P | λ kept]; this is E[P | λ kept] − E[P]) with far less variance, and stops when it is
/// stable:
/// - S = Σ_i (P_i − P̄)·M_i / Σ_i M_i: each pixel divided by how often it was actually kept
///   rather than by its expectation N·p, and the mean score subtracted as a control
///   variate. The paper's form carries the noise of the mask density times P̄, which for a
///   confident model outweighs the signal (on the demo it put the peak on the border of
///   every abnormal slide);
/// - `cells` from the image: one cell per 8 px of the shorter side (2 to 16 cells), and `p` 0.8,
///   so that a mask hides a small region at a time (a detector of small lesions keeps its
///   answer while any lesion is visible);
/// - the target's log-odds under the masks (`output=logodds`, `SampledOutput`) rather than its
///   probability, which a confident model holds at 1 whatever a mask hides;
/// - masks in rounds of 250 after a first 500, until the map's split-half reliability
///   (`Statistics.splitHalfReliability`, even against odd masks) reaches `stability` (0.9) or
///   `masks` (4000) are spent.
///
/// Both modes report `stability` and `samples` (masks run). `seed` fixes the masks. Raw output
/// (H,W), same resolution as the input.
public struct RISEExplainer: Explainer {
    public static let method = "rise"
    enum Mode: String { case adaptive, paper }
    let mode: Mode
    let masks: Int
    /// nil: from the image size.
    let cells: Int?
    let p: Float
    let stability: Float
    /// What is averaged under the masks: the target's probability (the paper's) or its log-odds.
    let output: SampledOutput
    let seed: Int
    let batch: Int
    static let firstRound = 500, round = 250

    public var parameters: [String: String] {
        var d = ["mode": mode.rawValue, "masks": "\(masks)", "cells": cells.map { "\($0)" } ?? "auto", "p": "\(p)", "seed": "\(seed)",
                 "output": output.rawValue]
        if mode == .adaptive { d["stability"] = "\(stability)" }
        return d
    }
    public static let card = MethodCard(
        title: "RISE",
        meaning: "Regions whose presence, under random partial masking, keeps the class score high (its log-odds; the probability in paper mode).",
        cost: "One forward pass per mask: adaptive mode masks until the map is stable (at most 4000 by default); paper mode 2000.",
        limits: "Noisy with few masks (its stability says how much); smooth at the grid's scale; random unless the seed is fixed.")

    init(_ params: Parameters) throws {
        mode = Mode(rawValue: try params.choice("mode", default: Mode.adaptive.rawValue, among: [Mode.adaptive.rawValue, Mode.paper.rawValue]))!
        masks = try params.int("masks", default: mode == .paper ? 2000 : 4000)
        if params.string("cells") == nil || params.string("cells") == "auto" {
            cells = mode == .paper ? 7 : nil
        } else {
            cells = try params.int("cells", default: 7)
        }
        p = try params.float("p", default: mode == .paper ? 0.5 : 0.8, range: 0.01...1)
        if mode == .paper, params.string("stability") != nil {
            throw ExplainerError("rise: stability is the adaptive mode's stopping rule; mode=paper runs exactly `masks`")
        }
        stability = try params.float("stability", default: 0.9, range: 0...1)
        seed = try params.int("seed", default: 0, min: 0, max: Int(Int32.max))
        batch = try params.int("batch", default: 16)
        output = try SampledOutput(params, default: mode == .paper ? .probability : .logodds)
    }

    /// Cells for an image: one per 8 px of the shorter side, 2 to 16.
    static func autoCells(height h: Int, width w: Int) -> Int {
        min(16, max(2, Int((Double(min(h, w)) / 8).rounded())))
    }

    /// One mask (H,W) in [0,1].
    static func mask(cells: Int, p: Float, height: Int, width: Int, rng: inout SeededGenerator) -> [Float] {
        let grid = (0..<(cells * cells)).map { _ in Float.random(in: 0..<1, using: &rng) < p ? Float(1) : 0 }
        let ch = (height + cells - 1) / cells, cw = (width + cells - 1) / cells
        let (uh, uw) = ((cells + 1) * ch, (cells + 1) * cw)
        let up = Resize.bilinear(grid, channels: 1, height: cells, width: cells, toHeight: uh, toWidth: uw)
        let dy = Int.random(in: 0..<ch, using: &rng), dx = Int.random(in: 0..<cw, using: &rng)
        var out = [Float](repeating: 0, count: height * width)
        for y in 0..<height { for x in 0..<width { out[y * width + x] = up[(y + dy) * uw + x + dx] } }
        return out
    }

    /// Running sums over one half of the masks: Σ P·M and Σ M per pixel, Σ P and the count.
    struct Sums {
        var pm: [Double], m: [Double]
        var p = 0.0, n = 0
        init(pixels: Int) { pm = [Double](repeating: 0, count: pixels); m = pm }
        static func + (a: Sums, b: Sums) -> Sums {
            var s = a
            for i in s.pm.indices { s.pm[i] += b.pm[i]; s.m[i] += b.m[i] }
            s.p += b.p
            s.n += b.n
            return s
        }
    }

    /// The saliency map of `s` in this mode's estimator.
    func saliency(_ s: Sums) -> [Float] {
        switch mode {
        case .paper:
            let scale = 1 / (Double(max(s.n, 1)) * Double(p))
            return s.pm.map { Float($0 * scale) }
        case .adaptive:
            let mean = s.p / Double(max(s.n, 1))
            return s.pm.indices.map { i in s.m[i] > 0 ? Float((s.pm[i] - mean * s.m[i]) / s.m[i]) : 0 }
        }
    }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let x = request.input
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let cells = self.cells ?? RISEExplainer.autoCells(height: h, width: w)
        guard cells <= min(h, w) else {
            throw ExplainerError("rise: cells \(cells) exceeds the image's \(min(h, w)) px (its smaller side); use 1 to \(min(h, w))")
        }
        let classes = try Backprop.scores(try request.forwardPass(), model: request.model).shape[1]
        try Backprop.checkTarget(request.target, classes: classes)
        var rng = SeededGenerator(seed: UInt64(seed))
        var halves = [Sums(pixels: h * w), Sums(pixels: h * w)]
        var done = 0
        var goal = mode == .paper ? masks : min(masks, RISEExplainer.firstRound)
        while true {
            while done < goal {
                let n = min(batch, goal - done)
                let ms = (0..<n).map { _ in RISEExplainer.mask(cells: cells, p: p, height: h, width: w, rng: &rng) }
                let inputs = ms.map { m -> Tensor in
                    var t = x
                    for ch in 0..<c { for i in 0..<(h * w) { t.data[ch * h * w + i] *= m[i] } }
                    return t
                }
                let scores = try Backprop.batchScores(request.model, inputs: inputs, chunk: batch)
                for (m, s) in zip(ms, scores) {
                    let prob = output.value(s, target: request.target)
                    let k = done % 2
                    for i in 0..<(h * w) {
                        halves[k].pm[i] += prob * Double(m[i])
                        halves[k].m[i] += Double(m[i])
                    }
                    halves[k].p += prob
                    halves[k].n += 1
                    done += 1
                }
            }
            let reliability = Statistics.splitHalfReliability(saliency(halves[0]), saliency(halves[1]))
            if mode == .paper || reliability >= Double(stability) || done >= masks {
                // The adaptive map is centred (0: the mean score under the masks): drawn diverging.
                var attribution = Attribution(raw: Tensor(shape: [h, w], data: saliency(halves[0] + halves[1])), space: .layer,
                                              signed: mode == .adaptive)
                attribution.diagnostics = ["stability": reliability, "samples": Double(done)]
                return attribution
            }
            goal = min(masks, done + RISEExplainer.round)
        }
    }
}

extension RISEExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["mode", "masks", "cells", "p", "stability", "output", "seed", "batch"]
    static func make(_ p: Parameters) throws -> any Explainer { try RISEExplainer(p) }
}
