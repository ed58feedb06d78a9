import Engine
import Foundation
import Tensors

/// Trust metrics: numbers that say how far to trust a heatmap (docs/methods.md, "Metrics").
///
/// | metric | question | better |
/// |---|---|---|
/// | `pointing_game` (+ `pointing_game_strict`) | is the peak on the lesion? | 1 |
/// | `energy_pointing_game` | how much of the heatmap's mass lies on the lesion? | higher |
/// | `outside_tissue` | how much of the mass lies outside the tissue? | lower |
/// | `deletion_auc`, `insertion_auc` | does removing/adding pixels in heatmap order move the probability? | lower / higher |
/// | `randomization` | mean Spearman ρ with the heatmaps of the models of a cascading randomization | lower (< 0.5 passes) |
/// | `max_sensitivity` | how much does the explanation change under tiny input noise? | lower |
/// | `agreement` | mean Spearman ρ with the item's other explainers | context |
public enum Evaluation {
    /// The randomization check passes when the mean Spearman ρ between the heatmaps of the
    /// trained and the randomized model is below this: the map depends on what the model learnt.
    public static let sanityThreshold = 0.5

    /// The pointing-game rows for one heatmap: `pointing_game` (Zhang et al.'s tolerance, scaled)
    /// and `pointing_game_strict` (the peak pixel itself). nil values: no lesion in the mask.
    public static func pointingGame(_ heatmap: Heatmap, mask: [Float]) -> [(name: String, value: Double?)] {
        let tolerance = PointingGame.standardTolerance(size: max(heatmap.width, heatmap.height))
        func score(_ t: Int) -> Double? { PointingGame.hit(heatmap: heatmap, mask: mask, tolerance: t).map { $0 ? 1 : 0 } }
        return [("pointing_game", score(tolerance)), ("pointing_game_strict", score(0))]
    }

    /// Share of the heatmap's mass inside a region: Σ_{mask} h / Σ h (the energy-based pointing
    /// game of Wang et al., "Score-CAM", CVPRW 2020, §4.3). nil when the region is empty or the
    /// heatmap is all zero.
    public static func massInside(_ heatmap: Heatmap, region: [Float]) -> Double? {
        precondition(region.count == heatmap.values.count)
        guard region.contains(where: { $0 > 0 }) else { return nil }
        var inside = 0.0, total = 0.0
        for (v, r) in zip(heatmap.values, region) {
            total += Double(v)
            if r > 0 { inside += Double(v) }
        }
        return total > 0 ? inside / total : nil
    }

    /// Share of the heatmap's mass outside the tissue mask (white = tissue). nil without tissue.
    public static func outsideTissue(_ heatmap: Heatmap, tissue: [Float]) -> Double? {
        massInside(heatmap, region: tissue).map { 1 - $0 }
    }

    /// Max-sensitivity (Yeh et al., "On the (in)fidelity and sensitivity of explanations",
    /// NeurIPS 2019, Eq. 6), as Captum `sensitivity_max` with its default perturbation: the
    /// largest ‖Φ(x+δ) − Φ(x)‖₂ / ‖Φ(x)‖₂ over `samples` draws of δ uniform in [−r, r] per input
    /// element (model-input units), Φ the raw attribution. `seed` fixes the draws.
    public static func maxSensitivity(_ explainer: any Explainer, request: ExplanationRequest, attribution: Tensor,
                                      radius: Float = 0.02, samples: Int = 10, seed: UInt64 = 0) throws -> Double {
        var rng = SeededGenerator(seed: seed)
        var norm = 0.0
        for v in attribution.data { norm += Double(v) * Double(v) }
        norm = norm.squareRoot()
        var worst = 0.0
        let x = request.input
        for _ in 0..<samples {
            var noisy = x
            for i in 0..<noisy.count { noisy.data[i] += Float.random(in: -radius...radius, using: &rng) }
            let other = try explainer.explain(ExplanationRequest(model: request.model, input: noisy, target: request.target,
                                                                 image: request.image)).raw
            var diff = 0.0
            for (a, b) in zip(attribution.data, other.data) {
                let d = Double(a) - Double(b)
                diff += d * d
            }
            worst = max(worst, diff.squareRoot() / (norm == 0 ? 1 : norm))
        }
        return worst
    }

    /// The randomization check for one item (Adebayo et al., "Sanity checks for saliency maps",
    /// NeurIPS 2018, §3.1, cascading randomization): Spearman ρ between the heatmap on the
    /// trained model and on each model of `cascade` (the top 1, 2, ..., L layers re-drawn,
    /// `Model.randomizingTopLayers`), same input and target; the value is their mean, the area
    /// under the similarity curve of the cascade. A method whose map does not depend on the
    /// learnt weights keeps ρ near 1 and fails (`sanityThreshold`).
    public static func randomization(_ explainer: any Explainer, request: ExplanationRequest, heatmap: Heatmap,
                                     cascade: [Model]) throws -> Double {
        let rhos = try randomizationCurve(explainer, request: request, heatmap: heatmap, cascade: cascade)
        return rhos.reduce(0, +) / Double(rhos.count)
    }

    /// The cascade's Spearman ρ one by one: with the top 1, 2, ..., L layers randomized (the
    /// curve of Adebayo et al.'s Fig. 2, one point per layer).
    public static func randomizationCurve(_ explainer: any Explainer, request: ExplanationRequest, heatmap: Heatmap,
                                          cascade: [Model]) throws -> [Double] {
        precondition(!cascade.isEmpty)
        return try cascade.map { randomized -> Double in
            let other = try explainer.explain(ExplanationRequest(model: randomized, input: request.input, target: request.target,
                                                                 image: request.image))
            return Statistics.spearman(heatmap.values, other.heatmap(height: heatmap.height, width: heatmap.width).values)
        }
    }

    /// The models of the cascade: the top 1, 2, ..., L Conv/Gemm layers randomized.
    public static func randomizationCascade(_ model: Model, seed: UInt64 = 0) throws -> [Model] {
        try (1...max(1, model.graph.parameterizedLayers.count)).map { try model.randomizingTopLayers($0, seed: seed) }
    }

    /// Mean Spearman ρ of each heatmap with the others of the same item (by explainer name).
    public static func agreement(_ heatmaps: [String: Heatmap]) -> [String: Double] {
        guard heatmaps.count > 1 else { return [:] }
        let names = heatmaps.keys.sorted()
        let ranks = names.map { Statistics.ranks(heatmaps[$0]!.values) }
        var out: [String: Double] = [:]
        for (i, name) in names.enumerated() {
            let others = names.indices.filter { $0 != i }
            out[name] = others.reduce(0.0) { $0 + Statistics.pearson(ranks[i], ranks[$1]) } / Double(others.count)
        }
        return out
    }
}
