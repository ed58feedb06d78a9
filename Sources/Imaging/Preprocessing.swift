import Tensors

/// How a model wants its input: size, scale, per-channel mean and std, channel order.
///
/// x = (resize(pixel · scale) − mean) / std, laid out (1,3,H,W). Resizing is bilinear with
/// half-pixel centres (see `Resize`).
public struct Preprocessing: Sendable, Equatable, Codable {
    public enum ChannelOrder: String, Sendable, Codable { case rgb, bgr }

    public var width: Int
    public var height: Int
    public var scale: Float
    public var mean: [Float]
    public var std: [Float]
    public var channelOrder: ChannelOrder

    public init(width: Int, height: Int, scale: Float = 1.0 / 255.0, mean: [Float] = [0, 0, 0],
                std: [Float] = [1, 1, 1], channelOrder: ChannelOrder = .rgb) {
        self.width = width
        self.height = height
        self.scale = scale
        self.mean = mean
        self.std = std
        self.channelOrder = channelOrder
    }

    /// The image resized to the model's input, RGB planar (3,H,W) in [0,1] (scale applied, no
    /// mean/std, no channel swap): what an explainer shows or segments.
    public func resizedRGB(_ image: Image) -> [Float] {
        let rgb = image.rgb()
        let planes = rgb.planarFloats().map { $0 / 255 }
        return Resize.bilinear(planes, channels: 3, height: rgb.height, width: rgb.width, toHeight: height, toWidth: width)
    }

    /// Turns a decoded image into the model's input tensor (1,3,H,W).
    public func apply(_ image: Image) -> Tensor {
        let rgb = image.rgb()
        var planes = rgb.planarFloats()
        for i in 0..<planes.count { planes[i] *= scale }
        var resized = Resize.bilinear(planes, channels: 3, height: rgb.height, width: rgb.width,
                                      toHeight: height, toWidth: width)
        let plane = width * height
        if channelOrder == .bgr {
            for i in 0..<plane { resized.swapAt(i, 2 * plane + i) }
        }
        for c in 0..<3 {
            let m = mean[c], s = std[c]
            for i in 0..<plane { resized[c * plane + i] = (resized[c * plane + i] - m) / s }
        }
        return Tensor(shape: [1, 3, height, width], data: resized)
    }
}
