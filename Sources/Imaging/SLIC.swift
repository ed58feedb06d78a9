import Foundation

/// SLIC superpixels (Achanta et al., "SLIC superpixels compared to state-of-the-art superpixel
/// methods", TPAMI 2012, Algorithm 1) in CIELAB, with scikit-image's parameter names:
/// `segments` (the desired number) and `compactness` (m in D = √(d_lab² + (d_xy/S)²·m²)),
/// 10 iterations, then connectivity enforced by merging fragments smaller than a quarter of the
/// average superpixel into a neighbour.
public enum SLIC {
    /// - Parameters:
    ///   - rgb: planar (3,H,W) in [0,1].
    /// - Returns: labels (H·W, row-major) in 0..<count, and count.
    public static func segment(rgb: [Float], height: Int, width: Int, segments: Int, compactness: Float,
                               iterations: Int = 10) -> (labels: [Int], count: Int) {
        let n = height * width
        let lab = toLab(rgb, count: n)
        let step = max(1, Int((Double(n) / Double(max(segments, 1))).squareRoot().rounded()))
        // Centres on a regular grid (L, a, b, y, x), moved to the lowest gradient in their 3×3 neighbourhood.
        var centres: [[Float]] = []
        var y = step / 2
        while y < height {
            var x = step / 2
            while x < width {
                var best = (y, x), bestGradient = Float.infinity
                for dy in -1...1 { for dx in -1...1 {
                    let (yy, xx) = (y + dy, x + dx)
                    guard yy > 0, yy < height - 1, xx > 0, xx < width - 1 else { continue }
                    var g: Float = 0
                    for c in 0..<3 {
                        let gx = lab[c][yy * width + xx + 1] - lab[c][yy * width + xx - 1]
                        let gy = lab[c][(yy + 1) * width + xx] - lab[c][(yy - 1) * width + xx]
                        g += gx * gx + gy * gy
                    }
                    if g < bestGradient { bestGradient = g; best = (yy, xx) }
                } }
                let i = best.0 * width + best.1
                centres.append([lab[0][i], lab[1][i], lab[2][i], Float(best.0), Float(best.1)])
                x += step
            }
            y += step
        }
        var labels = [Int](repeating: -1, count: n)
        var distance = [Float](repeating: .infinity, count: n)
        let spatialWeight = (compactness / Float(step)) * (compactness / Float(step))
        for _ in 0..<iterations {
            for i in 0..<n { distance[i] = .infinity }
            for (k, c) in centres.enumerated() {
                let cy = Int(c[3].rounded()), cx = Int(c[4].rounded())
                for yy in max(0, cy - 2 * step)..<min(height, cy + 2 * step + 1) {
                    for xx in max(0, cx - 2 * step)..<min(width, cx + 2 * step + 1) {
                        let i = yy * width + xx
                        let dl = lab[0][i] - c[0], da = lab[1][i] - c[1], db = lab[2][i] - c[2]
                        let dy = Float(yy) - c[3], dx = Float(xx) - c[4]
                        let d = dl * dl + da * da + db * db + (dy * dy + dx * dx) * spatialWeight
                        if d < distance[i] { distance[i] = d; labels[i] = k }
                    }
                }
            }
            var sums = [[Float]](repeating: [0, 0, 0, 0, 0], count: centres.count)
            var counts = [Float](repeating: 0, count: centres.count)
            for i in 0..<n where labels[i] >= 0 {
                let k = labels[i]
                sums[k][0] += lab[0][i]; sums[k][1] += lab[1][i]; sums[k][2] += lab[2][i]
                sums[k][3] += Float(i / width); sums[k][4] += Float(i % width)
                counts[k] += 1
            }
            for k in centres.indices where counts[k] > 0 { centres[k] = sums[k].map { $0 / counts[k] } }
        }
        return enforceConnectivity(labels, height: height, width: width, minimum: max(1, n / max(centres.count, 1) / 4))
    }

    /// Relabels 4-connected components 0..<count; a component smaller than `minimum` joins the
    /// neighbouring component it touches first (as SLIC's post-processing does).
    static func enforceConnectivity(_ labels: [Int], height: Int, width: Int, minimum: Int) -> (labels: [Int], count: Int) {
        let n = height * width
        var out = [Int](repeating: -1, count: n)
        var count = 0
        for start in 0..<n where out[start] < 0 {
            var stack = [start], component = [start]
            out[start] = count
            var adjacent = -1
            while let i = stack.popLast() {
                let (y, x) = (i / width, i % width)
                for (yy, xx) in [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)] where yy >= 0 && yy < height && xx >= 0 && xx < width {
                    let j = yy * width + xx
                    if out[j] < 0 && labels[j] == labels[start] {
                        out[j] = count
                        stack.append(j)
                        component.append(j)
                    } else if out[j] >= 0 && out[j] != count && adjacent < 0 {
                        adjacent = out[j]
                    }
                }
            }
            if component.count < minimum && adjacent >= 0 {
                for i in component { out[i] = adjacent }
            } else {
                count += 1
            }
        }
        return (out, count)
    }

    /// sRGB in [0,1] (planar) to CIELAB under D65, as scikit-image's rgb2lab.
    static func toLab(_ rgb: [Float], count n: Int) -> [[Float]] {
        func linear(_ v: Float) -> Float { v <= 0.04045 ? v / 12.92 : Float(pow(Double((v + 0.055) / 1.055), 2.4)) }
        func f(_ t: Float) -> Float { t > 0.008856 ? Float(cbrt(Double(t))) : 7.787 * t + 16.0 / 116.0 }
        var lab = [[Float]](repeating: [Float](repeating: 0, count: n), count: 3)
        for i in 0..<n {
            let r = linear(rgb[i]), g = linear(rgb[n + i]), b = linear(rgb[2 * n + i])
            let x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.95047
            let y = 0.212671 * r + 0.715160 * g + 0.072169 * b
            let z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.08883
            let (fx, fy, fz) = (f(x), f(y), f(z))
            lab[0][i] = y > 0.008856 ? 116 * fy - 16 : 903.3 * y
            lab[1][i] = 500 * (fx - fy)
            lab[2][i] = 200 * (fy - fz)
        }
        return lab
    }
}
