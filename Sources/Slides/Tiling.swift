import Foundation
import Imaging

/// How a slide is cut into model tiles (docs/slides.md, "Tiling").
public struct TilingOptions: Sendable, Equatable {
    /// Micrometres per pixel of the tiles the model sees; nil: level 0 as it is.
    public var mpp: Double?
    /// Tile side in pixels at `mpp` (the model's input size).
    public var tile: Int
    /// Pixels (at `mpp`) shared by neighbouring tiles.
    public var overlap: Int = 0
    /// Smallest share of a tile's footprint that must be tissue.
    public var minTissue: Double = 0.5
    public var tissue = TissueOptions()

    public init(mpp: Double?, tile: Int, overlap: Int = 0, minTissue: Double = 0.5) {
        self.mpp = mpp
        self.tile = tile
        self.overlap = overlap
        self.minTissue = minTissue
    }
}

/// One tile: a level-0 rectangle, the level it is read from, and the tissue under it.
public struct SlideTile: Sendable, Equatable, Hashable {
    /// Level-0 rectangle.
    public let x: Int, y: Int, width: Int, height: Int
    /// The pyramid level read, and the region's size there (resampled to `size` × `size`).
    public let level: Int
    public let levelWidth: Int, levelHeight: Int
    /// Side of the tile handed to the model.
    public let size: Int
    /// Share of the footprint that is tissue, and the tissue piece it belongs to (0: none).
    public let tissue: Double
    public let piece: Int

    public init(x: Int, y: Int, width: Int, height: Int, level: Int, levelWidth: Int, levelHeight: Int, size: Int,
                tissue: Double, piece: Int) {
        (self.x, self.y, self.width, self.height) = (x, y, width, height)
        (self.level, self.levelWidth, self.levelHeight, self.size) = (level, levelWidth, levelHeight, size)
        (self.tissue, self.piece) = (tissue, piece)
    }
}

/// A slide cut into tiles: the tissue mask and the tiles inside tissue, in reading order.
public struct TileGrid: Sendable {
    public let tiles: [SlideTile]
    public let mask: TissueMask
    /// The low-resolution view the mask was computed on (`mask.downsample` level-0 pixels a pixel).
    public let view: Image
    /// Level-0 pixels per tile pixel (target mpp / level-0 mpp).
    public let scale: Double
    /// Tiles the grid had before the tissue filter.
    public let candidates: Int

    /// Cuts `slide`: a low-resolution view for the tissue mask, then a grid of level-0 stride
    /// (tile − overlap) · scale over the whole slide; a tile is kept when it lies fully inside
    /// the slide and its tissue share is at least `minTissue`.
    public init(slide: Slide, options: TilingOptions) throws {
        guard options.tile >= 8, options.tile <= 4096 else { throw SlideError("\(slide.path): tile must be 8...4096 pixels, got \(options.tile)") }
        guard options.overlap >= 0, options.overlap < options.tile else {
            throw SlideError("\(slide.path): overlap must be 0...\(options.tile - 1) pixels, got \(options.overlap)")
        }
        let mpp0 = slide.mpp.map { ($0.x + $0.y) / 2 }
        var scale = 1.0
        if let target = options.mpp {
            guard let mpp0 else {
                throw SlideError("\(slide.path): the slide does not state its resolution (no openslide.mpp-x); tile it by level instead of mpp")
            }
            scale = target / mpp0
        }
        // The tissue view: `tissue.mpp` µm per pixel, and never over 4,096 pixels a side (a slide
        // without mpp is taken at 1 µm per pixel, which for a large slide would be huge).
        let viewDownsample = max(1, options.tissue.mpp / (mpp0 ?? 1), Double(max(slide.width, slide.height)) / 4096)
        let view = try SlideView.read(slide, downsample: viewDownsample)
        let mask = TissueMask.detect(view.image, downsample: view.downsample, mpp0: mpp0, options: options.tissue)
        let extent = Int((Double(options.tile) * scale).rounded())
        let stride = max(1, Int((Double(options.tile - options.overlap) * scale).rounded()))
        let level = slide.level(forDownsample: scale)
        let ds = slide.levels[level].downsample
        let side = max(1, Int((Double(extent) / ds).rounded()))
        var tiles: [SlideTile] = []
        var candidates = 0
        var y = 0
        while y + extent <= slide.height {
            var x = 0
            while x + extent <= slide.width {
                candidates += 1
                let (fraction, piece) = mask.coverage(x: x, y: y, width: extent, height: extent)
                if fraction >= options.minTissue {
                    tiles.append(SlideTile(x: x, y: y, width: extent, height: extent, level: level, levelWidth: side,
                                           levelHeight: side, size: options.tile, tissue: fraction, piece: piece))
                }
                x += stride
            }
            y += stride
        }
        self.tiles = tiles
        self.mask = mask
        self.view = view.image
        self.scale = scale
        self.candidates = candidates
    }

    /// The tile's pixels at `tile.size` × `tile.size`: the region read at its level, then
    /// resampled (box average when shrinking, bilinear otherwise).
    public static func read(_ tile: SlideTile, from slide: Slide) throws -> Image {
        let region = try slide.read(x: tile.x, y: tile.y, level: tile.level, width: tile.levelWidth, height: tile.levelHeight)
        if region.width == tile.size && region.height == tile.size { return region }
        return Resample.toSize(region, width: tile.size, height: tile.size)
    }
}

/// A low-resolution RGB view of a whole slide, read in strips at the coarsest level that is fine
/// enough, and box-averaged down: memory holds one strip and the view, whatever the slide size.
public struct SlideView {
    public let image: Image
    /// Level-0 pixels per view pixel (exact for each axis up to rounding of the size).
    public let downsample: Double

    public static func read(_ slide: Slide, downsample: Double) throws -> SlideView {
        let level = slide.level(forDownsample: downsample)
        let l = slide.levels[level]
        let factor = downsample / l.downsample // level pixels per view pixel, ≥ 1
        let (w, h) = (max(1, Int(Double(l.width) / factor)), max(1, Int(Double(l.height) / factor)))
        // Float sums are exact here: at most 255 · (level pixels per view pixel)² < 2^24.
        var sums = [Float](repeating: 0, count: w * h * 3)
        var counts = [Float](repeating: 0, count: w * h)
        let strip = max(1, min(l.height, (1 << 22) / max(1, min(l.width, 8192))))
        var row = 0
        while row < l.height {
            let rows = min(strip, l.height - row)
            var column = 0
            while column < l.width {
                let columns = min(8192, l.width - column)
                let part = try slide.read(x: Int(Double(column) * l.downsample), y: Int(Double(row) * l.downsample), level: level,
                                          width: columns, height: rows)
                for r in 0..<rows {
                    let vr = min(h - 1, Int(Double(row + r) / factor))
                    for c in 0..<columns {
                        let vc = min(w - 1, Int(Double(column + c) / factor))
                        let s = (r * columns + c) * 3, d = vr * w + vc
                        sums[d * 3] += Float(part.pixels[s]); sums[d * 3 + 1] += Float(part.pixels[s + 1]); sums[d * 3 + 2] += Float(part.pixels[s + 2])
                        counts[d] += 1
                    }
                }
                column += columns
            }
            row += rows
        }
        var pixels = [UInt8](repeating: 255, count: w * h * 3)
        for i in 0..<(w * h) where counts[i] > 0 {
            for k in 0..<3 { pixels[i * 3 + k] = UInt8(min(255, (sums[i * 3 + k] / counts[i]).rounded())) }
        }
        return SlideView(image: Image(width: w, height: h, channels: 3, pixels: pixels),
                         downsample: Double(slide.width) / Double(w))
    }
}

/// Resampling of tiles to the model's size.
public enum Resample {
    /// Box average when shrinking (each output pixel the mean of the source pixels whose centres
    /// fall in it, as OpenCV's INTER_AREA for integer factors), bilinear with half-pixel centres
    /// when enlarging.
    public static func toSize(_ image: Image, width: Int, height: Int) -> Image {
        let rgb = image.rgb()
        if rgb.width >= width && rgb.height >= height {
            var sums = [Double](repeating: 0, count: width * height * 3)
            var counts = [Double](repeating: 0, count: width * height)
            let fx = Double(rgb.width) / Double(width), fy = Double(rgb.height) / Double(height)
            for r in 0..<rgb.height {
                let vr = min(height - 1, Int((Double(r) + 0.5) / fy))
                for c in 0..<rgb.width {
                    let vc = min(width - 1, Int((Double(c) + 0.5) / fx))
                    let s = (r * rgb.width + c) * 3, d = vr * width + vc
                    for k in 0..<3 { sums[d * 3 + k] += Double(rgb.pixels[s + k]) }
                    counts[d] += 1
                }
            }
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            for i in 0..<(width * height) where counts[i] > 0 {
                for k in 0..<3 { pixels[i * 3 + k] = UInt8(min(255, (sums[i * 3 + k] / counts[i]).rounded())) }
            }
            return Image(width: width, height: height, channels: 3, pixels: pixels)
        }
        let resized = Resize.bilinear(rgb.planarFloats(), channels: 3, height: rgb.height, width: rgb.width, toHeight: height, toWidth: width)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for c in 0..<3 { for i in 0..<(width * height) { pixels[i * 3 + c] = UInt8(min(255, max(0, resized[c * width * height + i].rounded()))) } }
        return Image(width: width, height: height, channels: 3, pixels: pixels)
    }
}
