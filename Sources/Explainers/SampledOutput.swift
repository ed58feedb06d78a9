import Foundation

/// The number a sampling method (LIME, RISE) records for each perturbed input, from its class
/// scores (`output=probability|logodds`):
/// - `probability`: the target's softmax probability p_t (lime's and the RISE paper's);
/// - `logodds`: log p_t − log(1 − p_t) = s_t − log Σ_{j≠t} e^{s_j}, in double precision (SHAP's
///   logit link). Where a confident model's probability is 1 to float precision whatever is
///   hidden, the log-odds still tell the samples apart. A one-output model gives s_t.
enum SampledOutput: String, Sendable {
    case probability, logodds

    init(_ p: Parameters, default d: SampledOutput) throws {
        self = SampledOutput(rawValue: try p.choice("output", default: d.rawValue,
                                                    among: [SampledOutput.probability.rawValue, SampledOutput.logodds.rawValue]))!
    }

    func value(_ scores: [Float], target t: Int) -> Double {
        switch self {
        case .probability:
            return Double(softmax(scores)[t])
        case .logodds:
            let others = scores.indices.filter { $0 != t }.map { Double(scores[$0]) }
            guard let top = others.max() else { return Double(scores[t]) }
            return Double(scores[t]) - top - log(others.reduce(0) { $0 + exp($1 - top) })
        }
    }
}
