import Engine
import Foundation
import Tensors

/// Deletion and insertion (Petsiuk et al., "RISE", BMVC 2018, §4.1 "Deletion and insertion
/// metrics"): pixels are removed from (deletion) or added to (insertion) the image in the order
/// of the heatmap, most important first, and the target's softmax probability is traced; the
/// score is the area under that curve, the x axis scaled to [0,1].
///
/// - Deletion replaces pixels with the baseline (black: 0 in the [0,1] image) — a faithful
///   heatmap makes the probability fall fast, so *lower is better*.
/// - Insertion starts from a blurred image (Gaussian, 11×11, σ = 5, as the RISE code's
///   `gkern(11, 5)`; the border padded with black like its zero-padded convolution) and puts the
///   original pixels back — *higher is better*.
///
/// Perturbations are made in model-input space. The normalization (x·scale − mean)/std is
/// affine per channel, so blending and blurring there equals doing it on the [0,1] image, as
/// long as "black" is the model input of a black image: `black[c]` = (0 − mean_c)/std_c.
/// A step changes ⌈H·W/steps⌉ pixels (all channels); the `steps`+1 images of each curve go
/// through the network in batches. AUC: trapezoid, (Σ p − p₀/2 − p_n/2)/n, as the RISE code.
public struct Faithfulness: Sendable {
    public var steps: Int
    public var batch: Int

    public init(steps: Int = 32, batch: Int = 16) {
        self.steps = steps
        self.batch = batch
    }

    public struct Curves: Sendable {
        public let deletion: [Double]
        public let insertion: [Double]
        public var deletionAUC: Double { Faithfulness.auc(deletion) }
        public var insertionAUC: Double { Faithfulness.auc(insertion) }
    }

    /// - Parameters:
    ///   - heatmap: (H,W) importance, at the model input's resolution.
    ///   - input: the model input (1,C,H,W).
    ///   - black: the model-input value of a black pixel, per channel.
    public func curves(model: Model, input: Tensor, target: Int, heatmap: Heatmap, black: [Float]) throws -> Curves {
        let (c, h, w) = (input.shape[1], input.shape[2], input.shape[3])
        precondition(heatmap.width == w && heatmap.height == h && black.count == c)
        let plane = h * w
        // Most important first; ties keep pixel order (a stable, reproducible ranking).
        let order = (0..<plane).sorted { heatmap.values[$0] != heatmap.values[$1] ? heatmap.values[$0] > heatmap.values[$1] : $0 < $1 }
        let perStep = (plane + steps - 1) / steps
        let blurred = Faithfulness.blur(input, black: black)
        let baseline = Tensor(shape: input.shape, data: (0..<input.count).map { black[$0 / plane] })

        /// Image k of a curve: `from` with the first k·perStep pixels of the order taken from `to`.
        func path(from: Tensor, to: Tensor) -> [Tensor] {
            var current = from
            var images = [current]
            for k in 1...steps {
                for p in order[min(plane, (k - 1) * perStep)..<min(plane, k * perStep)] {
                    for ch in 0..<c { current.data[ch * plane + p] = to.data[ch * plane + p] }
                }
                images.append(current)
            }
            return images
        }
        func probabilities(_ images: [Tensor]) throws -> [Double] {
            try Backprop.batchScores(model, inputs: images, chunk: batch).map { Double(softmax($0)[target]) }
        }
        return Curves(deletion: try probabilities(path(from: input, to: baseline)),
                      insertion: try probabilities(path(from: blurred, to: input)))
    }

    /// Trapezoid area under a curve sampled at n+1 equally spaced points of [0,1].
    public static func auc(_ v: [Double]) -> Double {
        guard v.count > 1 else { return v.first ?? 0 }
        return (v.reduce(0, +) - v[0] / 2 - v[v.count - 1] / 2) / Double(v.count - 1)
    }

    /// Separable Gaussian blur (11 taps, σ = 5) of each channel of a (1,C,H,W) tensor, outside
    /// pixels taken as `black[c]`.
    static func blur(_ x: Tensor, black: [Float]) -> Tensor {
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let radius = 5, sigma = 5.0
        var kernel = (-radius...radius).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        var out = x
        var row = [Float](repeating: 0, count: h * w)
        for ch in 0..<c {
            let base = ch * h * w, b = black[ch]
            for y in 0..<h {
                for xx in 0..<w {
                    var s: Float = 0
                    for k in -radius...radius {
                        let xi = xx + k
                        s += kernel[k + radius] * (xi >= 0 && xi < w ? x.data[base + y * w + xi] : b)
                    }
                    row[y * w + xx] = s
                }
            }
            for y in 0..<h {
                for xx in 0..<w {
                    var s: Float = 0
                    for k in -radius...radius {
                        let yi = y + k
                        s += kernel[k + radius] * (yi >= 0 && yi < h ? row[yi * w + xx] : b)
                    }
                    out.data[base + y * w + xx] = s
                }
            }
        }
        return out
    }
}
