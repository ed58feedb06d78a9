import Tensors

/// The sufficient statistics of a weighted ridge regression with an unpenalized intercept
/// (sklearn's `Ridge(alpha)` with `sample_weight`, which lime fits): Σw, Σwy, Σwy², Σwz, Σwzy and
/// Σwzzᵀ over the rows seen so far. Rows are added one at a time, halves of a sample add up to
/// the whole, and a fit costs one p×p solve however many rows there are, so that an adaptive
/// sampler can refit after every round.
struct RidgeMoments {
    let features: Int
    private(set) var rows = 0
    private var sw = 0.0, swy = 0.0, swyy = 0.0
    private var swz: [Double], swzy: [Double]
    /// Σ w z zᵀ, row-major (p,p), upper triangle only.
    private var swzz: [Double]

    init(features: Int) {
        self.features = features
        swz = [Double](repeating: 0, count: features)
        swzy = swz
        swzz = [Double](repeating: 0, count: features * features)
    }

    /// Adds a binary design row `z` (1 = superpixel shown) with response `y` and weight `w`.
    mutating func add(_ z: [Float], y: Double, weight w: Double) {
        precondition(z.count == features)
        rows += 1
        sw += w
        swy += w * y
        swyy += w * y * y
        let on = z.indices.filter { z[$0] != 0 }
        for j in on {
            swz[j] += w
            swzy[j] += w * y
            for k in on where k >= j { swzz[j * features + k] += w }
        }
    }

    static func + (a: RidgeMoments, b: RidgeMoments) -> RidgeMoments {
        precondition(a.features == b.features)
        var s = a
        s.rows += b.rows
        s.sw += b.sw
        s.swy += b.swy
        s.swyy += b.swyy
        for j in 0..<a.features {
            s.swz[j] += b.swz[j]
            s.swzy[j] += b.swzy[j]
        }
        for i in s.swzz.indices { s.swzz[i] += b.swzz[i] }
        return s
    }

    /// The ridge coefficients β (intercept excluded) and the weighted R² of the fit.
    /// Centred about the weighted means: C = Σw(z−z̄)(z−z̄)ᵀ, c = Σw(z−z̄)(y−ȳ);
    /// (C + αI)β = c; RSS = TSS − 2βᵀc + βᵀCβ; R² = 1 − RSS/TSS (0 when y is constant).
    /// No rows of positive weight give β = 0 and R² 0.
    func fit(alpha: Double) throws -> (beta: [Double], r2: Double) {
        let p = features
        // No weight at all (a kernel so narrow that only the all-ones row, which sits in the other
        // half, counts): nothing to fit.
        guard sw > 0 else { return ([Double](repeating: 0, count: p), 0) }
        var c = [Double](repeating: 0, count: p * p), rhs = [Double](repeating: 0, count: p)
        for j in 0..<p {
            rhs[j] = swzy[j] - swz[j] * swy / sw
            for k in j..<p {
                let v = swzz[j * p + k] - swz[j] * swz[k] / sw
                c[j * p + k] = v
                c[k * p + j] = v
            }
        }
        var a = c
        for j in 0..<p { a[j * p + j] += alpha }
        guard let beta = LinearAlgebra.solveSPD(a, rhs, n: p) else {
            throw ExplainerError("lime: the ridge system is singular")
        }
        let tss = swyy - swy * swy / sw
        var quadratic = 0.0, linear = 0.0
        for j in 0..<p {
            linear += beta[j] * rhs[j]
            var row = 0.0
            for k in 0..<p { row += c[j * p + k] * beta[k] }
            quadratic += beta[j] * row
        }
        let rss = max(0, tss - 2 * linear + quadratic)
        // A response that does not vary (to rounding) leaves nothing to explain: R² 0.
        return (beta, tss > 1e-12 * swyy ? 1 - rss / tss : 0)
    }
}
