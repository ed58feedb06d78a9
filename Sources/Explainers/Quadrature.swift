import Foundation

/// The integration rules of Integrated Gradients, with Captum's names and node placement
/// (captum/attr/_utils/approximation_methods.py): points α_k in [0,1] and weights w_k.
enum Quadrature: String, CaseIterable, Sendable {
    case gausslegendre
    case riemannLeft = "riemann_left"
    case riemannRight = "riemann_right"
    case riemannMiddle = "riemann_middle"
    case riemannTrapezoid = "riemann_trapezoid"

    /// (α_k, w_k) for k = 0..<n.
    func rule(_ n: Int) -> [(alpha: Double, weight: Double)] {
        let d = Double(n)
        switch self {
        case .riemannLeft: return (0..<n).map { (n == 1 ? 0 : Double($0) * (1 - 1 / d) / (d - 1), 1 / d) }
        case .riemannRight: return (0..<n).map { (n == 1 ? 1 : 1 / d + Double($0) * (1 - 1 / d) / (d - 1), 1 / d) }
        case .riemannMiddle: return (0..<n).map { (n == 1 ? 0.5 : 1 / (2 * d) + Double($0) * (1 - 1 / d) / (d - 1), 1 / d) }
        case .riemannTrapezoid:
            // Captum's weights: 1/n with the two ends halved (they sum to (n−1)/n, not 1), at
            // points linspace(0, 1, n). Kept as Captum has them, so that results agree.
            precondition(n > 1)
            return (0..<n).map { k in (Double(k) / (d - 1), (k == 0 || k == n - 1 ? 0.5 : 1) / d) }
        case .gausslegendre:
            return Quadrature.gaussLegendre(n).map { (0.5 * ($0.x + 1), 0.5 * $0.w) }
        }
    }

    /// Gauss–Legendre nodes and weights on [−1, 1] (as numpy.polynomial.legendre.leggauss), by
    /// Newton's method on P_n from the Chebyshev-like initial guesses.
    static func gaussLegendre(_ n: Int) -> [(x: Double, w: Double)] {
        var out: [(Double, Double)] = []
        for i in 1...n {
            var x = cos(Double.pi * (Double(i) - 0.25) / (Double(n) + 0.5))
            var dp = 0.0
            for _ in 0..<100 {
                var p0 = 1.0, p1 = x
                for k in 2...max(2, n) where n >= 2 {
                    let pk = ((2 * Double(k) - 1) * x * p1 - (Double(k) - 1) * p0) / Double(k)
                    p0 = p1; p1 = pk
                }
                if n == 1 { p0 = 1; p1 = x }
                dp = Double(n) * (x * p1 - p0) / (x * x - 1)
                let step = p1 / dp
                x -= step
                if abs(step) < 1e-15 { break }
            }
            out.append((x, 2 / ((1 - x * x) * dp * dp)))
        }
        return out.sorted { $0.0 < $1.0 }
    }
}
