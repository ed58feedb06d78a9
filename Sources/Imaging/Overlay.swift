/// Heatmap rendering: a [0,1] map through a colormap, alone or blended over the image.
public enum Overlay {
    /// Colours a heatmap (H,W) in [0,1], row-major, as an RGB image.
    public static func colorize(_ heatmap: [Float], width: Int, height: Int, colormap: Colormap = .viridis) -> Image {
        precondition(heatmap.count == width * height)
        var p = [UInt8](repeating: 0, count: width * height * 3)
        let table = colormap.table
        for i in 0..<heatmap.count {
            let v = heatmap[i].isNaN ? 0 : min(1, max(0, heatmap[i]))
            let c = table[Int((v * 255).rounded())]
            p[3 * i] = c.0; p[3 * i + 1] = c.1; p[3 * i + 2] = c.2
        }
        return Image(width: width, height: height, channels: 3, pixels: p)
    }

    /// Blends a heatmap over an image: out = (1 − α)·image + α·colormap(h).
    ///
    /// The heatmap is resized bilinearly to the image when their sizes differ. `alpha` 0.5 is the
    /// blend pytorch-grad-cam's `show_cam_on_image` uses.
    public static func blend(image: Image, heatmap: [Float], width: Int, height: Int,
                             colormap: Colormap = .viridis, alpha: Float = 0.5) -> Image {
        let rgb = image.rgb()
        let h = Resize.bilinear(heatmap, channels: 1, height: height, width: width,
                                toHeight: rgb.height, toWidth: rgb.width)
        let colors = colorize(h, width: rgb.width, height: rgb.height, colormap: colormap)
        var p = rgb.pixels
        for i in 0..<p.count {
            let v = (1 - alpha) * Float(rgb.pixels[i]) + alpha * Float(colors.pixels[i])
            p[i] = UInt8(min(255, max(0, v.rounded())))
        }
        return Image(width: rgb.width, height: rgb.height, channels: 3, pixels: p)
    }

    /// How a relevance overlay was scaled: the value of the [0,1] map shown at full colour.
    public struct Scale: Sendable, Equatable {
        /// The map value at the `percentile` (and above it: clipped).
        public var clip: Float
        public var percentile: Double
    }

    /// A relevance overlay that reads at a glance (Captum's and Zennit's habits): the map is
    /// clipped at its `percentile` (outliers no longer squeeze everything else into the dark end
    /// of the colormap), coloured by the clipped value, and blended with an opacity that grows
    /// with it, up to `maxAlpha`: where nothing is relevant the image shows untouched.
    ///
    /// out = (1 − a)·image + a·colormap(v′), v′ = min(1, v / q), a = maxAlpha · v′, q the map's
    /// `percentile` quantile (over its pixels; 1 when the map is all zero).
    public static func relevance(image: Image, heatmap: [Float], width: Int, height: Int, colormap: Colormap = .viridis,
                                 percentile: Double = 0.995, maxAlpha: Float = 0.85) -> (image: Image, scale: Scale) {
        let clip = quantile(heatmap, percentile)
        let table = colormap.table
        let out = relevanceBlend(image: image, scaled: heatmap.map { $0.isFinite ? min(1, max(0, $0 / clip)) : 0 }, width: width, height: height,
                        range: 0...1, maxAlpha: maxAlpha) { table[Int(($0 * 255).rounded())] }
        return (out, Scale(clip: clip, percentile: percentile))
    }

    /// The blend both relevance overlays share: `scaled` (H,W), already divided by its clip, is
    /// resized to the image, clamped to `range`, coloured by `color` and laid over the image with
    /// opacity `maxAlpha`·|v|.
    static func relevanceBlend(image: Image, scaled: [Float], width: Int, height: Int, range: ClosedRange<Float>, maxAlpha: Float,
                      color: (Float) -> (UInt8, UInt8, UInt8)) -> Image {
        let rgb = image.rgb()
        let h = Resize.bilinear(scaled, channels: 1, height: height, width: width, toHeight: rgb.height, toWidth: rgb.width)
        var p = rgb.pixels
        for i in 0..<(rgb.width * rgb.height) {
            let v = min(range.upperBound, max(range.lowerBound, h[i]))
            let a = maxAlpha * abs(v)
            let c = color(v)
            for (k, channel) in [c.0, c.1, c.2].enumerated() {
                let mixed = (1 - a) * Float(rgb.pixels[3 * i + k]) + a * Float(channel)
                p[3 * i + k] = UInt8(min(255, max(0, mixed.rounded())))
            }
        }
        return Image(width: rgb.width, height: rgb.height, channels: 3, pixels: p)
    }

    /// The diverging colour of v ∈ [−1, 1] (matplotlib's `bwr`): blue (0,0,255) at −1, white at
    /// 0, red (255,0,0) at +1, linear in between.
    public static func bwr(_ v: Float) -> (UInt8, UInt8, UInt8) {
        let t = min(1, max(-1, v.isFinite ? v : 0))
        let fade = UInt8((255 * (1 - abs(t))).rounded())
        return t >= 0 ? (255, fade, fade) : (fade, fade, 255)
    }

    /// The clip of a signed map: the `percentile` quantile of |v| (1 when the map is all zero).
    public static func signedClip(_ map: [Float], percentile: Double = 0.995) -> Float {
        quantile(map.map { abs($0) }, percentile)
    }

    /// Colours a signed map (H,W) with `bwr`, clipped at ±`clip`: the heatmap alone.
    public static func colorizeSigned(_ map: [Float], width: Int, height: Int, clip: Float) -> Image {
        precondition(map.count == width * height)
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<map.count {
            let c = bwr(map[i] / clip)
            p[3 * i] = c.0; p[3 * i + 1] = c.1; p[3 * i + 2] = c.2
        }
        return Image(width: width, height: height, channels: 3, pixels: p)
    }

    /// A signed relevance overlay, as Captum's `visualize_image_attr(sign="all")` and Zennit's
    /// `bwr` images show them: red where the map speaks for the class, blue where it speaks
    /// against, clipped at the `percentile` of |v| and blended with an opacity that grows with
    /// |v| up to `maxAlpha` (where the map is near 0 the image shows untouched).
    ///
    /// out = (1 − a)·image + a·bwr(v′), v′ = clamp(v / q, −1, 1), a = maxAlpha · |v′|, q the
    /// map's `percentile` quantile of |v|.
    public static func signedRelevance(image: Image, map: [Float], width: Int, height: Int,
                                       percentile: Double = 0.995, maxAlpha: Float = 0.85) -> (image: Image, scale: Scale) {
        let clip = signedClip(map, percentile: percentile)
        let out = relevanceBlend(image: image, scaled: map.map { $0.isFinite ? min(1, max(-1, $0 / clip)) : 0 }, width: width, height: height,
                        range: -1...1, maxAlpha: maxAlpha, color: bwr)
        return (out, Scale(clip: clip, percentile: percentile))
    }

    /// The `q` quantile of the finite values (nearest rank, as numpy's "higher"), at least the
    /// smallest positive float so that dividing by it is safe; 1 for an all-zero map.
    static func quantile(_ values: [Float], _ q: Double) -> Float {
        let finite = values.filter { $0.isFinite }.sorted()
        guard let top = finite.last, top > 0 else { return 1 }
        let rank = min(finite.count - 1, Int((Double(finite.count - 1) * q).rounded(.up)))
        let v = finite[rank]
        return v > 0 ? v : top
    }
}
