import Imaging
import Tensors

/// A raw attribution and how to turn it into a heatmap.
public struct Attribution: Sendable {
    public enum Space: String, Sendable {
        /// Same layout as the model input: (C,H,W).
        case input
        /// A map at a layer's resolution: (h,w); resized to the input for display.
        case layer
    }

    /// How input-space channels are reduced to one map.
    public enum Reduction: String, Sendable {
        /// Σ_c |a_c|: magnitude regardless of sign (the default, as Captum's "absolute_value").
        case absolute
        /// max(0, Σ_c a_c): only evidence for the class (Captum's "positive"), for signed
        /// perturbation scores where a negative value means hiding the region *raised* the score.
        case positive
    }

    public let raw: Tensor
    public let space: Space
    public let reduction: Reduction
    /// What a stochastic method measured about its own result, stored beside the heatmap as
    /// metrics: `stability` (split-half reliability), `fit_r2` (LIME's weighted R²), `samples`
    /// (the forward passes spent). Empty for deterministic methods.
    public var diagnostics: [String: Double] = [:]
    /// Whether the sign of the raw values tells the reader something: positive is evidence for
    /// the class, negative against it (gradients, input × gradient, integrated gradients, LRP;
    /// guided backprop and deconvnet too, as Captum draws them, though their modified ReLU
    /// backward makes "against" a weaker reading).
    /// Such maps are also kept signed (`signedMap`) and drawn with a diverging colormap.
    public let signed: Bool

    public init(raw: Tensor, space: Space, reduction: Reduction = .absolute, signed: Bool = false) {
        self.raw = raw
        self.space = space
        self.reduction = reduction
        self.signed = signed
    }

    /// The signed map (H,W) at the input's resolution, in raw units: channels summed with their
    /// signs (Captum's `sign="all"` view, Zennit's summed relevance), layer maps resized
    /// bilinearly. nil for a method whose sign means nothing (`signed` false).
    public func signedMap(height: Int, width: Int) -> [Float]? {
        guard signed else { return nil }
        switch space {
        case .input:
            let (c, h, w) = (raw.shape[0], raw.shape[1], raw.shape[2])
            var values = [Float](repeating: 0, count: h * w)
            for ch in 0..<c { for i in 0..<(h * w) { values[i] += raw.data[ch * h * w + i] } }
            return Resize.bilinear(values, channels: 1, height: h, width: w, toHeight: height, toWidth: width)
        case .layer:
            return Resize.bilinear(raw.data, channels: 1, height: raw.shape[0], width: raw.shape[1], toHeight: height, toWidth: width)
        }
    }

    /// The [H,W] heatmap at the input's resolution (DESIGN.md §3): channels reduced (sum of
    /// absolute values by default), layer maps resized bilinearly with half-pixel centres, then
    /// min-max normalized to [0,1]. A constant map becomes all zeros.
    public func heatmap(height: Int, width: Int) -> Heatmap {
        var values: [Float]
        switch space {
        case .input:
            let (c, h, w) = (raw.shape[0], raw.shape[1], raw.shape[2])
            values = [Float](repeating: 0, count: h * w)
            for ch in 0..<c {
                for i in 0..<(h * w) {
                    let v = raw.data[ch * h * w + i]
                    values[i] += reduction == .absolute ? abs(v) : v
                }
            }
            if reduction == .positive { values = values.map { max(0, $0) } }
            values = Resize.bilinear(values, channels: 1, height: h, width: w, toHeight: height, toWidth: width)
        case .layer:
            values = Resize.bilinear(raw.data, channels: 1, height: raw.shape[0], width: raw.shape[1],
                                     toHeight: height, toWidth: width)
        }
        let finite = values.filter { $0.isFinite }
        var map = Heatmap(width: width, height: height, values: Heatmap.normalized(values))
        (map.low, map.high) = (finite.min() ?? 0, finite.max() ?? 0)
        return map
    }
}

/// A [0,1] map at the input's resolution, row-major (H,W).
public struct Heatmap: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let values: [Float]
    /// The range `values` were normalized from (an `Attribution`'s map before min-max scaling):
    /// raw = low + value · (high − low). Zero for maps made directly in [0,1].
    public var low: Float = 0
    public var high: Float = 0

    public init(width: Int, height: Int, values: [Float]) {
        precondition(values.count == width * height)
        self.width = width
        self.height = height
        self.values = values
    }

    /// Min-max normalization to [0,1]; NaNs and constant maps become 0.
    public static func normalized(_ v: [Float]) -> [Float] {
        let finite = v.filter { $0.isFinite }
        guard let lo = finite.min(), let hi = finite.max(), hi > lo else {
            return [Float](repeating: 0, count: v.count)
        }
        return v.map { $0.isFinite ? ($0 - lo) / (hi - lo) : 0 }
    }

    /// Row and column of the maximum (first one in row-major order on ties).
    public var peak: (y: Int, x: Int) {
        var best = 0
        for i in 1..<values.count where values[i] > values[best] { best = i }
        return (best / width, best % width)
    }
}
