import Foundation
import Imaging
import Tensors

/// RISE (Petsiuk et al. 2018, arXiv:1806.07421, Eq. 6-7 and §3.2): `masks` random binary
/// `cells`×`cells` grids (each cell kept with probability `p`), upsampled bilinearly to
/// (cells+1)·⌈H/cells⌉ and cropped at a random shift, multiply the input; the saliency is
/// Σ_i P_t(x ⊙ M_i)·M_i / (masks·p) with P_t the softmax probability. `seed` fixes the masks.
/// Masked inputs run in batches of `batch`. Raw output (H,W), same resolution as the input.
public struct RISEExplainer: Explainer {
    public static let method = "rise"
    let masks: Int
    let cells: Int
    let p: Float
    let seed: Int
    let batch: Int
    public var parameters: [String: String] { ["masks": "\(masks)", "cells": "\(cells)", "p": "\(p)", "seed": "\(seed)"] }
    public static let card = MethodCard(
        title: "RISE",
        meaning: "Regions whose presence, under random partial masking, keeps the class probability high.",
        cost: "One forward pass per mask (thousands by default, batched).",
        limits: "Noisy with few masks; smooth at the grid's scale; random unless the seed is fixed.")

    init(_ params: Parameters) throws {
        masks = try params.int("masks", default: 2000)
        cells = try params.int("cells", default: 7)
        p = try params.float("p", default: 0.5, range: 0.01...1)
        seed = try params.int("seed", default: 0, min: 0, max: Int(Int32.max))
        batch = try params.int("batch", default: 16)
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

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let x = request.input
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        guard cells <= min(h, w) else {
            throw ExplainerError("rise: cells \(cells) exceeds the image's \(min(h, w)) px (its smaller side); use 1 to \(min(h, w))")
        }
        let classes = try Backprop.scores(try request.forwardPass(), model: request.model).shape[1]
        try Backprop.checkTarget(request.target, classes: classes)
        var rng = SeededGenerator(seed: UInt64(seed))
        var saliency = [Double](repeating: 0, count: h * w)
        var done = 0
        while done < masks {
            let n = min(batch, masks - done)
            let ms = (0..<n).map { _ in RISEExplainer.mask(cells: cells, p: p, height: h, width: w, rng: &rng) }
            let inputs = ms.map { m -> Tensor in
                var t = x
                for ch in 0..<c { for i in 0..<(h * w) { t.data[ch * h * w + i] *= m[i] } }
                return t
            }
            let scores = try Backprop.batchScores(request.model, inputs: inputs, chunk: batch)
            for (m, s) in zip(ms, scores) {
                let prob = Double(softmax(s)[request.target])
                for i in 0..<(h * w) { saliency[i] += prob * Double(m[i]) }
            }
            done += n
        }
        let scale = 1 / (Double(masks) * Double(p))
        return Attribution(raw: Tensor(shape: [h, w], data: saliency.map { Float($0 * scale) }), space: .layer)
    }
}

extension RISEExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["masks", "cells", "p", "seed", "batch"]
    static func make(_ p: Parameters) throws -> any Explainer { try RISEExplainer(p) }
}
