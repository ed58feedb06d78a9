/// Pointing game (Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016,
/// Sec. 5.1): a hit when the heatmap's maximum falls inside the ground-truth region, within
/// `tolerance` pixels. The paper uses 15 px on 224-pixel images; `standardTolerance` scales
/// that to the map's size. Candela records both the strict game (tolerance 0) and the standard one.
public enum PointingGame {
    /// 15 px at 224 px, scaled to a map whose longer side is `size` (at least 1 px).
    public static func standardTolerance(size: Int) -> Int {
        max(1, Int((15.0 * Double(size) / 224.0).rounded()))
    }

    /// - Parameters:
    ///   - heatmap: (H,W) map.
    ///   - mask: (H,W) ground truth, nonzero inside the region; same size as the heatmap.
    /// - Returns: nil when the mask is empty (the item does not count), else hit or miss.
    public static func hit(heatmap: Heatmap, mask: [Float], tolerance: Int = 0) -> Bool? {
        precondition(mask.count == heatmap.values.count)
        guard mask.contains(where: { $0 > 0 }) else { return nil }
        let (py, px) = heatmap.peak
        for y in max(0, py - tolerance)...min(heatmap.height - 1, py + tolerance) {
            for x in max(0, px - tolerance)...min(heatmap.width - 1, px + tolerance) {
                let dy = y - py, dx = x - px
                if dy * dy + dx * dx <= tolerance * tolerance && mask[y * heatmap.width + x] > 0 { return true }
            }
        }
        return false
    }
}
