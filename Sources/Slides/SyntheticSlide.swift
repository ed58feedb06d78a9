import Foundation
import Imaging

/// A procedural H&E-like slide for the tests and the demo's slide audit: white glass, pink
/// tissue pieces (ellipses with wavy borders) with pale-lavender nuclei, dark purple "damaged
/// cell" lesions at known places, optionally a blue pen line. The look follows
/// tools/make_demo_dataset.py (the demo model's training data) at 0.25 µm per pixel, so that
/// tiles at 0.5 µm per pixel resemble the 64-pixel demo images.
///
/// Every pixel is a pure function of its level-0 position and the seed, so any region of any
/// level renders on its own (`PyramidWriter` writes a 100,000-pixel slide one tile at a time).
public struct SyntheticSlide: Sendable {
    public struct Ellipse: Sendable, Equatable {
        public var cx: Double, cy: Double, rx: Double, ry: Double
        public init(cx: Double, cy: Double, rx: Double, ry: Double) { (self.cx, self.cy, self.rx, self.ry) = (cx, cy, rx, ry) }
        public func contains(_ x: Double, _ y: Double, wobble: Double = 0) -> Bool {
            let dx = (x - cx) / rx, dy = (y - cy) / ry
            return dx * dx + dy * dy <= (1 + wobble) * (1 + wobble)
        }
    }

    public let width: Int
    public let height: Int
    public let pieces: [Ellipse]
    /// Lesions (circles: rx = ry), level-0 pixels.
    public let lesions: [Ellipse]
    /// A pen stroke from (x0, y0) to (x1, y1), level-0 pixels, 12 px wide.
    public let pen: (x0: Double, y0: Double, x1: Double, y1: Double)?
    public let seed: UInt64
    /// A level-0 rectangle (x0, y0, x1, y1) rendered out of focus, as a scanner's focus failure.
    public let blur: (x0: Double, y0: Double, x1: Double, y1: Double)?
    public static let mpp = 0.25
    /// The out-of-focus region is interpolated (bilinear) between colours this many level-0
    /// pixels apart: detail finer than that is gone, as under a defocused objective.
    static let blurStep = 8.0

    public init(width: Int, height: Int, pieces: [Ellipse], lesions: [Ellipse],
                pen: (x0: Double, y0: Double, x1: Double, y1: Double)? = nil, seed: UInt64 = 1,
                blur: (x0: Double, y0: Double, x1: Double, y1: Double)? = nil) {
        self.blur = blur
        self.width = width
        self.height = height
        self.pieces = pieces
        self.lesions = lesions
        self.pen = pen
        self.seed = seed
    }

    /// A slide of `width` × `height` with `pieceCount` tissue pieces side by side and
    /// `lesionsPerPiece` lesions in each odd-numbered piece (pieces 1, 3, ... are abnormal).
    /// A piece fills 76 % of its slot's width and 72 % of the height, or is `pieceSize` (its full
    /// extent in level-0 pixels: small cores on much glass, as on a biopsy slide).
    public static func layout(width: Int, height: Int, pieceCount: Int, lesionsPerPiece: Int,
                              pieceSize: (width: Double, height: Double)? = nil, seed: UInt64 = 1) -> SyntheticSlide {
        var rng = SplitMix(seed)
        var pieces: [Ellipse] = [], lesions: [Ellipse] = []
        let slot = Double(width) / Double(pieceCount)
        let (rx, ry) = pieceSize.map { ($0.width / 2, $0.height / 2) } ?? (slot * 0.38, Double(height) * 0.36)
        for k in 0..<pieceCount {
            let piece = Ellipse(cx: slot * (Double(k) + 0.5), cy: Double(height) / 2, rx: rx, ry: ry)
            pieces.append(piece)
            guard k % 2 == 0 else { continue }
            for _ in 0..<lesionsPerPiece {
                let a = rng.unit() * 2 * Double.pi, r = sqrt(rng.unit()) * 0.6
                lesions.append(Ellipse(cx: piece.cx + cos(a) * r * piece.rx, cy: piece.cy + sin(a) * r * piece.ry,
                                       rx: 14 + rng.unit() * 10, ry: 0))
            }
        }
        lesions = lesions.map { Ellipse(cx: $0.cx, cy: $0.cy, rx: $0.rx, ry: $0.rx) }
        return SyntheticSlide(width: width, height: height, pieces: pieces, lesions: lesions, seed: seed)
    }

    /// The region at level-0 (x, y) of `w` × `h` pixels of a level with `downsample`; each pixel
    /// is the colour at its centre. Only the pieces, lesions and pen stroke that can reach the
    /// region are looked at (`Nearby`), so glass costs one noise lookup per pixel.
    public func render(x: Int, y: Int, width w: Int, height h: Int, downsample: Int) -> Image {
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        let d = Double(downsample)
        let margin = blur == nil ? 0 : SyntheticSlide.blurStep
        let near = nearby(x0: Double(x) - margin, y0: Double(y) - margin, x1: Double(x) + Double(w) * d + margin,
                          y1: Double(y) + Double(h) * d + margin)
        for r in 0..<h {
            for c in 0..<w {
                let (px, py) = (Double(x) + (Double(c) + 0.5) * d, Double(y) + (Double(r) + 0.5) * d)
                let (cr, cg, cb) = focused(px, py, near)
                let i = (r * w + c) * 3
                pixels[i] = UInt8(max(0, min(255, cr.rounded()))); pixels[i + 1] = UInt8(max(0, min(255, cg.rounded())))
                pixels[i + 2] = UInt8(max(0, min(255, cb.rounded())))
            }
        }
        return Image(width: w, height: h, channels: 3, pixels: pixels)
    }

    /// What can colour a level-0 rectangle: the pieces whose wobbled outline (at most 4 % beyond
    /// the ellipse) reaches it, the lesions whose rim (radius + 4) reaches it, and whether the pen
    /// stroke (6 px from its axis) does.
    struct Nearby {
        var pieces: [Ellipse]
        var lesions: [Ellipse]
        var pen: Bool
    }

    func nearby(x0: Double, y0: Double, x1: Double, y1: Double) -> Nearby {
        func meets(_ cx: Double, _ cy: Double, _ rx: Double, _ ry: Double) -> Bool {
            cx + rx >= x0 && cx - rx <= x1 && cy + ry >= y0 && cy - ry <= y1
        }
        var penNear = false
        if let pen {
            penNear = meets((pen.x0 + pen.x1) / 2, (pen.y0 + pen.y1) / 2, abs(pen.x1 - pen.x0) / 2 + 7, abs(pen.y1 - pen.y0) / 2 + 7)
        }
        return Nearby(pieces: pieces.filter { meets($0.cx, $0.cy, $0.rx * 1.05, $0.ry * 1.05) },
                      lesions: lesions.filter { meets($0.cx, $0.cy, $0.rx + 5, $0.rx + 5) }, pen: penNear)
    }

    /// Is level-0 point (x, y) inside a lesion?
    public func inLesion(_ x: Double, _ y: Double) -> Bool { lesions.contains { $0.contains(x, y) } }

    /// The colour at (x, y) as the scanner saw it: inside the `blur` rectangle, interpolated
    /// between the colours of a `blurStep` lattice around the point.
    func focused(_ x: Double, _ y: Double, _ near: Nearby) -> (Double, Double, Double) {
        guard let b = blur, x >= b.x0, x < b.x1, y >= b.y0, y < b.y1 else { return colour(x, y, near) }
        let step = SyntheticSlide.blurStep
        let (gx, gy) = ((x / step).rounded(.down) * step, (y / step).rounded(.down) * step)
        let (fx, fy) = ((x - gx) / step, (y - gy) / step)
        let (a, bb) = (colour(gx, gy, near), colour(gx + step, gy, near))
        let (c, d) = (colour(gx, gy + step, near), colour(gx + step, gy + step, near))
        return blend(blend(a, bb, fx), blend(c, d, fx), fy)
    }

    /// The colour at level-0 point (x, y).
    func colour(_ x: Double, _ y: Double) -> (Double, Double, Double) {
        colour(x, y, Nearby(pieces: pieces, lesions: lesions, pen: pen != nil))
    }

    /// The colour at (x, y), looking only at what `near` lists.
    func colour(_ x: Double, _ y: Double, _ near: Nearby) -> (Double, Double, Double) {
        if near.pen, let pen {
            let (vx, vy) = (pen.x1 - pen.x0, pen.y1 - pen.y0)
            let t = max(0, min(1, ((x - pen.x0) * vx + (y - pen.y0) * vy) / (vx * vx + vy * vy)))
            let (dx, dy) = (x - pen.x0 - t * vx, y - pen.y0 - t * vy)
            if dx * dx + dy * dy < 36 { return (40, 70, 190) }
        }
        let inside = near.pieces.contains { p in
            // The wobble is at most ±4 %: only the band between 0.96 and 1.04 radii needs it.
            let (dx, dy) = ((x - p.cx) / p.rx, (y - p.cy) / p.ry)
            let r2 = dx * dx + dy * dy
            if r2 > 1.09 { return false }
            if r2 < 0.91 { return true }
            return p.contains(x, y, wobble: 0.04 * sin(8 * atan2(y - p.cy, x - p.cx) + atan2(y, x)))
        }
        let grain = noise(x / 3, y / 3, 7) * 3
        guard inside else { return (243 + grain, 243 + grain, 245 + grain) }
        // Eosin base with low-frequency variation (deep and light pink).
        let t = noise(x / 90, y / 90, 1) * 0.6 + noise(x / 30, y / 30, 2) * 0.4
        var c = (235.0, 170.0, 200.0)
        if t > 0 { c = blend(c, (218, 128, 178), min(1, t) * 0.9) } else { c = blend(c, (246, 205, 222), min(1, -t) * 0.7) }
        // Nuclei: at most one per 40-pixel cell.
        let (cellX, cellY) = ((x / 40).rounded(.down), (y / 40).rounded(.down))
        let h = hash(Int(cellX), Int(cellY), 3)
        if h & 0xff < 150 {
            let nx = cellX * 40 + 8 + Double((h >> 8) & 0x17), ny = cellY * 40 + 8 + Double((h >> 16) & 0x17)
            let radius = 4 + Double((h >> 24) & 3)
            let dist = sqrt((x - nx) * (x - nx) + (y - ny) * (y - ny))
            c = blend(c, (180, 140, 205), max(0, min(1, (radius - dist) / 2 + 0.5)) * 0.8)
        }
        for lesion in near.lesions {
            guard abs(x - lesion.cx) < lesion.rx + 4, abs(y - lesion.cy) < lesion.rx + 4 else { continue }
            let dist = sqrt((x - lesion.cx) * (x - lesion.cx) + (y - lesion.cy) * (y - lesion.cy))
            guard dist < lesion.rx + 4 else { continue }
            let tex = noise(x / 6, y / 6, 5)
            let rim = max(0, 1 - abs(lesion.rx - dist) / 5)
            let dark = (80 + tex * 28, 30 + tex * 18, 110 + tex * 30)
            c = blend(c, (dark.0 * (1 - 0.25 * rim), dark.1 * (1 - 0.25 * rim), dark.2 * (1 - 0.25 * rim)),
                      max(0, min(1, (lesion.rx - dist) / 4 + 0.5)) * 0.95)
        }
        return (c.0 + grain, c.1 + grain, c.2 + grain)
    }

    func blend(_ a: (Double, Double, Double), _ b: (Double, Double, Double), _ t: Double) -> (Double, Double, Double) {
        (a.0 * (1 - t) + b.0 * t, a.1 * (1 - t) + b.1 * t, a.2 * (1 - t) + b.2 * t)
    }

    /// Value noise in [−1, 1]: bilinear between hashed lattice values.
    func noise(_ x: Double, _ y: Double, _ octave: UInt64) -> Double {
        let (x0, y0) = (x.rounded(.down), y.rounded(.down))
        let (fx, fy) = (x - x0, y - y0)
        func v(_ i: Double, _ j: Double) -> Double { Double(hash(Int(i), Int(j), octave) & 0xffff) / 32767.5 - 1 }
        let top = v(x0, y0) * (1 - fx) + v(x0 + 1, y0) * fx
        let bottom = v(x0, y0 + 1) * (1 - fx) + v(x0 + 1, y0 + 1) * fx
        return top * (1 - fy) + bottom * fy
    }

    func hash(_ i: Int, _ j: Int, _ salt: UInt64) -> UInt64 {
        var z = seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(bitPattern: Int64(i)) &* 0xBF58_476D_1CE4_E5B9
            ^ UInt64(bitPattern: Int64(j)) &* 0x94D0_49BB_1331_11EB ^ salt &* 0xD6E8_FEB8_6659_FD93
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A GeoJSON FeatureCollection of the lesions as polygons (32-gons) in level-0 pixels, with
    /// QuPath's `classification` ("Tumor"), as QuPath exports annotations.
    public var lesionGeoJSON: String {
        let features = lesions.map { l -> String in
            let ring = (0...32).map { k -> String in
                let a = Double(k % 32) / 32 * 2 * Double.pi
                return String(format: "[%.1f, %.1f]", l.cx + cos(a) * l.rx, l.cy + sin(a) * l.ry)
            }
            return """
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[\(ring.joined(separator: ", "))]]}, \
            "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}}}
            """
        }
        return "{\"type\": \"FeatureCollection\", \"features\": [\n\(features.joined(separator: ",\n"))\n]}\n"
    }
}

/// SplitMix64 (Steele et al. 2014): a small seeded generator for layouts.
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
