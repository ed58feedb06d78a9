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
}
