/// Bilinear resampling with half-pixel centres and no antialiasing: the convention of OpenCV's
/// INTER_LINEAR and PyTorch's `interpolate(mode="bilinear", align_corners=False)`.
///
/// A destination pixel (y, x) samples the source at ((y + 0.5)·H/h − 0.5, (x + 0.5)·W/w − 0.5),
/// clamped to the border.
public enum Resize {
    /// Resizes planar data (C,H,W) to (C,outH,outW).
    public static func bilinear(_ src: [Float], channels: Int, height: Int, width: Int,
                                toHeight oh: Int, toWidth ow: Int) -> [Float] {
        if oh == height && ow == width { return src }
        return sample(src, channels: channels, height: height, width: width,
                      rows: taps(out: oh, in: height), columns: taps(out: ow, in: width))
    }

    /// Interpolates planar data at precomputed (index, next index, weight of next) taps.
    static func sample(_ src: [Float], channels: Int, height: Int, width: Int,
                       rows ys: [(Int, Int, Float)], columns xs: [(Int, Int, Float)]) -> [Float] {
        let (oh, ow) = (ys.count, xs.count)
        var out = [Float](repeating: 0, count: channels * oh * ow)
        for c in 0..<channels {
            let sp = c * height * width, dp = c * oh * ow
            for y in 0..<oh {
                let (y0, y1, fy) = ys[y]
                for x in 0..<ow {
                    let (x0, x1, fx) = xs[x]
                    let top = src[sp + y0 * width + x0] * (1 - fx) + src[sp + y0 * width + x1] * fx
                    let bottom = src[sp + y1 * width + x0] * (1 - fx) + src[sp + y1 * width + x1] * fx
                    out[dp + y * ow + x] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }

    /// For each output index: the two source indices and the weight of the second.
    static func taps(out: Int, in size: Int) -> [(Int, Int, Float)] {
        let scale = Float(size) / Float(out)
        return (0..<out).map { i in
            let s = max(0, (Float(i) + 0.5) * scale - 0.5)
            let i0 = min(Int(s), size - 1)
            let i1 = min(i0 + 1, size - 1)
            return (i0, i1, s - Float(i0))
        }
    }

    /// Bilinear resampling with aligned corners (PyTorch `align_corners=True`,
    /// `UpsamplingBilinear2d`): corner pixels map to corner pixels, source = dst·(in−1)/(out−1).
    public static func bilinearAlignCorners(_ src: [Float], channels: Int, height: Int, width: Int,
                                            toHeight oh: Int, toWidth ow: Int) -> [Float] {
        func taps(out: Int, in size: Int) -> [(Int, Int, Float)] {
            (0..<out).map { i in
                let s = out > 1 ? Float(i) * Float(size - 1) / Float(out - 1) : 0
                let i0 = min(Int(s), size - 1)
                return (i0, min(i0 + 1, size - 1), s - Float(i0))
            }
        }
        return sample(src, channels: channels, height: height, width: width,
                      rows: taps(out: oh, in: height), columns: taps(out: ow, in: width))
    }
}
