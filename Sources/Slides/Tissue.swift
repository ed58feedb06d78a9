import Foundation
import Imaging

/// Tissue detection on a low-resolution view of a slide (docs/slides.md, "Tissue").
///
/// The method follows HistoQC's ideas (Janowczyk et al., JCO Clinical Cancer Informatics 2019):
/// stained tissue is coloured, glass is white and grey, so
/// 1. each pixel's HSV saturation S = (max − min) / max and value V = max are computed;
/// 2. the threshold is Otsu's (1979) on the saturation histogram, never below `minSaturation`
///    (a slide with no tissue must not split its glass noise in two);
/// 3. pen marks are rejected: saturated pixels with a hue between `penHues` (blue and green
///    ink; H&E is pink to purple) and near-black pixels (V < `darkValue`: ink, dust, folds);
/// 4. a closing then an opening with a 3 × 3 square remove speckle and bridge one-pixel gaps;
/// 5. holes (background components that do not touch the border) smaller than `maxHoleArea`
///    are filled;
/// 6. 8-connected components smaller than `minPieceArea` are dropped; the rest are the
///    **tissue pieces**, numbered 1, 2, ... left to right by their bounding box (then top to bottom).
public struct TissueOptions: Sendable, Equatable {
    /// Micrometres per pixel of the mask (a coarse view: 8 µm ≈ 1.25× magnification).
    public var mpp: Double = 8
    public var minSaturation: Double = 0.07
    /// Pixels darker than this (0–255 value) are not tissue (ink, folds, dust).
    public var darkValue: Int = 40
    /// Hue range in degrees treated as pen ink when saturated (blue, green).
    public var penHues: ClosedRange<Double> = 90...260
    public var penSaturation: Double = 0.25
    /// Smallest tissue piece, in square micrometres (0.05 mm² by default).
    public var minPieceArea: Double = 50_000
    /// Largest hole filled, in square micrometres.
    public var maxHoleArea: Double = 20_000
    /// Ink counts as a pen mark (for `penFraction`) in connected patches of at least this many
    /// square micrometres (0.02 mm²): a marker's stroke, not a saturated blue nucleus.
    public var minPenArea: Double = 20_000

    public init() {}
}

/// A tissue mask at `mpp` micrometres per pixel, with its pieces.
public struct TissueMask: Sendable {
    public let width: Int
    public let height: Int
    /// Level-0 pixels per mask pixel.
    public let downsample: Double
    /// 0 = background, k ≥ 1 = tissue piece k.
    public let labels: [Int32]
    public let pieces: [Piece]
    /// The saturation threshold used (Otsu's, or the floor).
    public let threshold: Double
    /// Share of the view's pixels that are pen marks (saturated blue or green ink in patches of
    /// at least `minPenArea`): shown to the reader as a warning, since ink next to tissue can
    /// still reach a tile's border.
    public var penFraction: Double = 0

    public struct Piece: Sendable, Equatable {
        public let id: Int
        /// Bounding box in level-0 pixels.
        public let x: Int, y: Int, width: Int, height: Int
        /// Area in mask pixels.
        public let pixels: Int
    }

    /// Share of mask pixels that are tissue.
    public var tissueFraction: Double { Double(labels.filter { $0 > 0 }.count) / Double(max(1, labels.count)) }

    /// The tissue share and the majority piece (0: none) of a level-0 rectangle.
    public func coverage(x: Int, y: Int, width w: Int, height h: Int) -> (fraction: Double, piece: Int) {
        let x0 = max(0, Int((Double(x) / downsample).rounded(.down))), y0 = max(0, Int((Double(y) / downsample).rounded(.down)))
        let x1 = min(width, max(x0 + 1, Int((Double(x + w) / downsample).rounded(.up))))
        let y1 = min(height, max(y0 + 1, Int((Double(y + h) / downsample).rounded(.up))))
        guard x1 > x0, y1 > y0 else { return (0, 0) }
        var counts: [Int32: Int] = [:]
        var tissue = 0
        for r in y0..<y1 {
            for c in x0..<x1 where labels[r * width + c] > 0 {
                tissue += 1
                counts[labels[r * width + c], default: 0] += 1
            }
        }
        let piece = counts.max { ($0.value, -$0.key) < ($1.value, -$1.key) }.map { Int($0.key) } ?? 0
        return (Double(tissue) / Double((x1 - x0) * (y1 - y0)), piece)
    }

    /// The mask as a gray image (tissue white), for the report and `candela slide`.
    public var image: Image {
        Image(width: width, height: height, channels: 1, pixels: labels.map { $0 > 0 ? 255 : 0 })
    }

    /// Detects tissue on `view`, an RGB image of the slide at `downsample` level-0 pixels per
    /// pixel; `mpp0` converts the areas (nil: level-0 pixels are taken as 1 µm).
    public static func detect(_ view: Image, downsample: Double, mpp0: Double?, options: TissueOptions = TissueOptions()) -> TissueMask {
        let rgb = view.rgb()
        let (w, h) = (rgb.width, rgb.height)
        var saturation = [Double](repeating: 0, count: w * h)
        var excluded = [Bool](repeating: false, count: w * h)
        var ink = [Bool](repeating: false, count: w * h)
        for i in 0..<(w * h) {
            let r = Double(rgb.pixels[i * 3]), g = Double(rgb.pixels[i * 3 + 1]), b = Double(rgb.pixels[i * 3 + 2])
            let mx = max(r, g, b), mn = min(r, g, b)
            let s = mx > 0 ? (mx - mn) / mx : 0
            saturation[i] = s
            if mx < Double(options.darkValue) { excluded[i] = true; continue }
            if s >= options.penSaturation, mx > mn {
                var hue: Double
                if mx == r { hue = 60 * ((g - b) / (mx - mn)) } else if mx == g { hue = 60 * ((b - r) / (mx - mn) + 2) } else { hue = 60 * ((r - g) / (mx - mn) + 4) }
                if hue < 0 { hue += 360 }
                if options.penHues.contains(hue) { excluded[i] = true; ink[i] = true }
            }
        }
        let threshold = max(options.minSaturation, otsu(saturation))
        var mask = (0..<(w * h)).map { !excluded[$0] && saturation[$0] > threshold }
        mask = erode(dilate(mask, w, h), w, h) // closing
        mask = dilate(erode(mask, w, h), w, h) // opening
        let pixelArea = pow(downsample * (mpp0 ?? 1), 2) // µm² per mask pixel
        // Fill small holes: background components not touching the border.
        let (background, backgroundCount) = components(mask.map { !$0 }, w, h)
        var touches = [Bool](repeating: false, count: backgroundCount + 1)
        var sizes = [Int](repeating: 0, count: backgroundCount + 1)
        for r in 0..<h {
            for c in 0..<w {
                let l = Int(background[r * w + c])
                guard l > 0 else { continue }
                sizes[l] += 1
                if r == 0 || c == 0 || r == h - 1 || c == w - 1 { touches[l] = true }
            }
        }
        for i in 0..<(w * h) {
            let l = Int(background[i])
            if l > 0, !touches[l], Double(sizes[l]) * pixelArea <= options.maxHoleArea { mask[i] = true }
        }
        // Pieces: components large enough, renumbered in reading order.
        let (labels, count) = components(mask, w, h)
        var boxes = [(x0: Int, y0: Int, x1: Int, y1: Int, n: Int)](repeating: (Int.max, Int.max, -1, -1, 0), count: count + 1)
        for r in 0..<h {
            for c in 0..<w {
                let l = Int(labels[r * w + c])
                guard l > 0 else { continue }
                boxes[l] = (min(boxes[l].x0, c), min(boxes[l].y0, r), max(boxes[l].x1, c), max(boxes[l].y1, r), boxes[l].n + 1)
            }
        }
        let kept = (1...max(1, count)).filter { count > 0 && Double(boxes[$0].n) * pixelArea >= options.minPieceArea }
            .sorted { (boxes[$0].x0, boxes[$0].y0) < (boxes[$1].x0, boxes[$1].y0) }
        var renumber = [Int32](repeating: 0, count: count + 1)
        for (k, l) in kept.enumerated() { renumber[l] = Int32(k + 1) }
        let final = labels.map { renumber[Int($0)] }
        let pieces = kept.enumerated().map { k, l in
            let b = boxes[l]
            return Piece(id: k + 1, x: Int(Double(b.x0) * downsample), y: Int(Double(b.y0) * downsample),
                         width: Int(Double(b.x1 - b.x0 + 1) * downsample), height: Int(Double(b.y1 - b.y0 + 1) * downsample), pixels: b.n)
        }
        var result = TissueMask(width: w, height: h, downsample: downsample, labels: final, pieces: pieces, threshold: threshold)
        // Pen marks: ink in patches of at least `minPenArea`.
        let (inkLabels, inkCount) = components(ink, w, h)
        var inkSizes = [Int](repeating: 0, count: inkCount + 1)
        for l in inkLabels where l > 0 { inkSizes[Int(l)] += 1 }
        let pen = inkSizes.dropFirst().filter { Double($0) * pixelArea >= options.minPenArea }.reduce(0, +)
        result.penFraction = Double(pen) / Double(max(1, w * h))
        return result
    }

    /// Otsu's threshold of values in [0, 1] (256 bins): the cut maximizing between-class variance.
    static func otsu(_ values: [Double]) -> Double {
        var histogram = [Double](repeating: 0, count: 256)
        for v in values { histogram[min(255, max(0, Int(v * 255)))] += 1 }
        let total = Double(values.count)
        let sum = histogram.enumerated().reduce(0) { $0 + Double($1.offset) * $1.element }
        var (weightBelow, sumBelow, best, cut) = (0.0, 0.0, -1.0, 0)
        for t in 0..<256 {
            weightBelow += histogram[t]
            guard weightBelow > 0, weightBelow < total else { continue }
            sumBelow += Double(t) * histogram[t]
            let meanBelow = sumBelow / weightBelow, meanAbove = (sum - sumBelow) / (total - weightBelow)
            let between = weightBelow * (total - weightBelow) * pow(meanBelow - meanAbove, 2)
            if between > best { (best, cut) = (between, t) }
        }
        return (Double(cut) + 0.5) / 255
    }

    static func dilate(_ m: [Bool], _ w: Int, _ h: Int) -> [Bool] { morph(m, w, h, any: true) }
    static func erode(_ m: [Bool], _ w: Int, _ h: Int) -> [Bool] { morph(m, w, h, any: false) }

    /// 3 × 3 square dilation (any neighbour set) or erosion (all neighbours set; outside counts as set).
    static func morph(_ m: [Bool], _ w: Int, _ h: Int, any: Bool) -> [Bool] {
        var out = m
        for r in 0..<h {
            for c in 0..<w {
                var hit = !any
                for dr in -1...1 {
                    for dc in -1...1 {
                        let (rr, cc) = (r + dr, c + dc)
                        guard rr >= 0, cc >= 0, rr < h, cc < w else { continue }
                        if any ? m[rr * w + cc] : !m[rr * w + cc] { hit = any }
                    }
                }
                out[r * w + c] = hit
            }
        }
        return out
    }

    /// 8-connected components of the set pixels (labels 1...count), by an explicit stack.
    public static func components(_ m: [Bool], _ w: Int, _ h: Int) -> ([Int32], Int) {
        var labels = [Int32](repeating: 0, count: w * h)
        var count: Int32 = 0
        var stack: [Int] = []
        for start in 0..<(w * h) where m[start] && labels[start] == 0 {
            count += 1
            labels[start] = count
            stack.append(start)
            while let p = stack.popLast() {
                let (r, c) = (p / w, p % w)
                for dr in -1...1 {
                    for dc in -1...1 {
                        let (rr, cc) = (r + dr, c + dc)
                        guard rr >= 0, cc >= 0, rr < h, cc < w else { continue }
                        let q = rr * w + cc
                        if m[q] && labels[q] == 0 { labels[q] = count; stack.append(q) }
                    }
                }
            }
        }
        return (labels, Int(count))
    }
}
