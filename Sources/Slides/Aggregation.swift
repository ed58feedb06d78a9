import Foundation

/// How tile probabilities become a verdict for a tissue piece or a slide (docs/slides.md,
/// "Aggregation"). Every rule scores the positive class from the tiles' probabilities of it;
/// the verdict is the positive class when the score reaches `threshold`, else the other class
/// with the highest mean probability. (Attention-weighted pooling needs a model that outputs
/// weights; Candela's classifiers output class scores only.)
public struct Aggregation: Sendable, Equatable {
    public enum Rule: String, Sendable, CaseIterable {
        /// Mean probability over the tiles.
        case mean
        /// The most positive tile (one tile decides: sensitive, and sensitive to one false tile).
        case max
        /// Mean of the `k` most positive tiles (a small focus is not diluted by a large piece).
        case topKMean = "top_k_mean"
        /// Share of tiles whose positive probability is at least 0.5.
        case positiveFraction = "positive_fraction"
    }

    public var rule: Rule = .mean
    public var k: Int = 8
    public var threshold: Double = 0.5
    /// The positive class; the last class when nil (binary models: index 1).
    public var positiveClass: String?

    public init(rule: Rule = .mean, k: Int = 8, threshold: Double = 0.5, positiveClass: String? = nil) {
        self.rule = rule
        self.k = k
        self.threshold = threshold
        self.positiveClass = positiveClass
    }

    /// The verdict of `tiles` (each one probability per class, in `classes` order).
    public func verdict(_ tiles: [[Double]], classes: [String]) -> (className: String, score: Double?, mean: [Double]) {
        let positive = positiveClass.flatMap { classes.firstIndex(of: $0) } ?? classes.count - 1
        var mean = [Double](repeating: 0, count: classes.count)
        for p in tiles { for (i, v) in p.enumerated() where i < mean.count { mean[i] += v / Double(tiles.count) } }
        guard !tiles.isEmpty, positive >= 0 else { return ("no tissue", nil, mean) }
        let values = tiles.map { $0.indices.contains(positive) ? $0[positive] : 0 }
        let score: Double
        switch rule {
        case .mean: score = values.reduce(0, +) / Double(values.count)
        case .max: score = values.max()!
        case .topKMean:
            let top = values.sorted(by: >).prefix(max(1, k))
            score = top.reduce(0, +) / Double(top.count)
        case .positiveFraction: score = Double(values.filter { $0 >= 0.5 }.count) / Double(values.count)
        }
        if score >= threshold { return (classes[positive], score, mean) }
        let other = mean.indices.filter { $0 != positive }.max { mean[$0] < mean[$1] }
        return (other.map { classes[$0] } ?? classes[positive], score, mean)
    }

    /// The rule in words with its parameters, as stored beside each verdict.
    public var description: String {
        let positive = positiveClass ?? "the last class"
        switch rule {
        case .mean: return "mean probability of \(positive) ≥ \(threshold)"
        case .max: return "largest tile probability of \(positive) ≥ \(threshold)"
        case .topKMean: return "mean of the \(k) largest tile probabilities of \(positive) ≥ \(threshold)"
        case .positiveFraction: return "share of tiles with \(positive) ≥ 0.5 at least \(threshold)"
        }
    }
}
