import Foundation
import Imaging

/// Focus of a tile: the variance of its Laplacian (Pech-Pacheco et al., "Diatom autofocusing in
/// brightfield microscopy: a comparative study", ICPR 2000), the measure HistoQC's blur module
/// and most autofocus code use. A sharp tile has strong second derivatives at nuclei and fibres;
/// a tile out of focus has almost none.
public enum Focus {
    /// The variance of the 4-neighbour Laplacian (0 1 0 / 1 −4 1 / 0 1 0) of the tile's luma
    /// (0.299 R + 0.587 G + 0.114 B, 0–255) over its interior pixels; 0 for tiles under 3 × 3.
    public static func sharpness(_ image: Image) -> Double {
        let (w, h) = (image.width, image.height)
        guard w >= 3, h >= 3 else { return 0 }
        let ch = image.channels
        var luma = [Double](repeating: 0, count: w * h)
        for i in 0..<(w * h) {
            let p = i * ch
            luma[i] = ch >= 3 ? 0.299 * Double(image.pixels[p]) + 0.587 * Double(image.pixels[p + 1]) + 0.114 * Double(image.pixels[p + 2])
                              : Double(image.pixels[p])
        }
        var sum = 0.0, sumSquares = 0.0
        for r in 1..<(h - 1) {
            for c in 1..<(w - 1) {
                let i = r * w + c
                let v = luma[i - w] + luma[i + w] + luma[i - 1] + luma[i + 1] - 4 * luma[i]
                sum += v
                sumSquares += v * v
            }
        }
        let n = Double((w - 2) * (h - 2))
        return max(0, sumSquares / n - (sum / n) * (sum / n))
    }

    /// The tiles out of focus among `values` (one sharpness per tile of a slide): those below
    /// `fraction` of the slide's median sharpness. Relative to the slide, because the sharpness of
    /// a tile in focus depends on the stain, the scanner and the resolution.
    public static func blurred(_ values: [Double], fraction: Double = 0.25) -> [Bool] {
        guard !values.isEmpty else { return [] }
        let sorted = values.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        return values.map { $0 < fraction * median }
    }
}
