import Foundation

/// Correlations used by the trust metrics.
public enum Statistics {
    /// Pearson's r in double precision; 0 when either side is constant.
    public static func pearson(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        let n = Double(a.count)
        guard n > 1 else { return 0 }
        let ma = a.reduce(0.0) { $0 + Double($1) } / n, mb = b.reduce(0.0) { $0 + Double($1) } / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            let da = Double(a[i]) - ma, db = Double(b[i]) - mb
            sab += da * db
            saa += da * da
            sbb += db * db
        }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }

    /// Ranks 1...n with ties given their average rank (as scipy.stats.rankdata's default).
    public static func ranks(_ v: [Float]) -> [Float] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var r = [Float](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            let average = Float(i + j) / 2 + 1
            for k in i...j { r[order[k]] = average }
            i = j + 1
        }
        return r
    }

    /// Spearman's rank correlation ρ: Pearson's r of the average ranks (scipy.stats.spearmanr).
    public static func spearman(_ a: [Float], _ b: [Float]) -> Double {
        pearson(ranks(a), ranks(b))
    }
}

extension Statistics {
    /// Split-half reliability of a Monte Carlo map: Pearson's r between the maps estimated from
    /// two disjoint halves of the samples, stepped up to the full sample count with the
    /// Spearman–Brown formula 2r / (1 + r) (Spearman 1910; Brown 1910). It estimates the
    /// correlation between this map and the map of an independent run with as many samples
    /// (another seed). Clamped to [0, 1]: halves that do not agree at all give 0, as do halves
    /// of which one is constant.
    public static func splitHalfReliability(_ a: [Float], _ b: [Float]) -> Double {
        let r = pearson(a, b)
        return r > 0 ? min(1, 2 * r / (1 + r)) : 0
    }
}
