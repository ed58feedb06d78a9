import Explainers
import Foundation
import Imaging

/// How alike two heatmaps of the same image are (docs/analysis.md): the numbers behind model
/// comparison and night-over-night drift. Maps of different sizes are compared at the first
/// one's size (the second resized bilinearly).
public struct Similarity: Sendable, Equatable {
    /// Spearman's rank correlation of the pixels (scipy.stats.spearmanr).
    public var spearman: Double
    /// Mean structural similarity (Wang et al. 2004, "Image quality assessment: from error
    /// visibility to structural similarity", Eq. 13), with scikit-image's settings
    /// `gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1`.
    public var ssim: Double
    /// |top-k(a) ∩ top-k(b)| / k for the k = `topFraction` · pixels most relevant pixels.
    public var topK: Double

    public init(spearman: Double, ssim: Double, topK: Double) {
        self.spearman = spearman
        self.ssim = ssim
        self.topK = topK
    }

    /// The three similarities of [0,1] maps `a` (width × height) and `b` (its own size).
    public static func of(_ a: [Float], width: Int, height: Int, _ b: [Float], bWidth: Int, bHeight: Int,
                          topFraction: Double = 0.1) -> Similarity {
        let b = (bWidth == width && bHeight == height) ? b
            : Resize.bilinear(b, channels: 1, height: bHeight, width: bWidth, toHeight: height, toWidth: width)
        return Similarity(spearman: Statistics.spearman(a, b), ssim: ssim(a, b, width: width, height: height),
                          topK: topK(a, b, fraction: topFraction))
    }

    /// Share of the top `fraction` pixels of `a` that are among the top pixels of `b` (ties by index).
    public static func topK(_ a: [Float], _ b: [Float], fraction: Double) -> Double {
        let k = max(1, Int((Double(a.count) * fraction).rounded()))
        func top(_ v: [Float]) -> Set<Int> { Set(v.indices.sorted { (v[$0], $1) > (v[$1], $0) }.prefix(k)) }
        return Double(top(a).intersection(top(b)).count) / Double(k)
    }

    /// Mean SSIM over the pixels at least 5 from the border (scikit-image's crop), Gaussian
    /// window σ = 1.5 truncated at 3.5σ (11 taps), mirrored borders, C1 = 0.01², C2 = 0.03².
    public static func ssim(_ a: [Float], _ b: [Float], width w: Int, height h: Int) -> Double {
        let sigma = 1.5, radius = Int(3.5 * sigma + 0.5)
        var kernel = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        /// scipy's mode 'reflect': (d c b a | a b c d | d c b a).
        func mirror(_ i: Int, _ n: Int) -> Int {
            var i = i
            let period = 2 * n
            i = ((i % period) + period) % period
            return i < n ? i : period - 1 - i
        }
        func filter(_ v: [Double]) -> [Double] {
            var rows = [Double](repeating: 0, count: w * h)
            for r in 0..<h {
                for c in 0..<w {
                    var s = 0.0
                    for (k, weight) in kernel.enumerated() { s += weight * v[mirror(r + k - radius, h) * w + c] }
                    rows[r * w + c] = s
                }
            }
            var out = [Double](repeating: 0, count: w * h)
            for r in 0..<h {
                for c in 0..<w {
                    var s = 0.0
                    for (k, weight) in kernel.enumerated() { s += weight * rows[r * w + mirror(c + k - radius, w)] }
                    out[r * w + c] = s
                }
            }
            return out
        }
        let x = a.map(Double.init), y = b.map(Double.init)
        let ux = filter(x), uy = filter(y)
        let uxx = filter(zip(x, x).map(*)), uyy = filter(zip(y, y).map(*)), uxy = filter(zip(x, y).map(*))
        let (c1, c2) = (0.01 * 0.01, 0.03 * 0.03)
        var sum = 0.0, count = 0
        for r in radius..<max(radius, h - radius) {
            for c in radius..<max(radius, w - radius) {
                let i = r * w + c
                let vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i], vxy = uxy[i] - ux[i] * uy[i]
                sum += ((2 * ux[i] * uy[i] + c1) * (2 * vxy + c2)) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2))
                count += 1
            }
        }
        return count > 0 ? sum / Double(count) : .nan
    }
}
