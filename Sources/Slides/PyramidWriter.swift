import CTIFF
import Foundation
import Imaging

/// Writes a tiled pyramidal TIFF in the layout of an Aperio SVS, which OpenSlide reads with its
/// "aperio" driver: one tiled directory per level (level 0 first, each next level half the
/// size, down to `minimumSide`), RGB, JPEG or Deflate compressed; level 0's ImageDescription
/// starts "Aperio Image Library" and carries `MPP` and `AppMag`, which is where OpenSlide 3.4
/// takes `openslide.mpp-x/y` and `openslide.objective-power` from (its generic-TIFF driver
/// reports no resolution). The TIFF resolution tags are written too, in pixels per centimetre.
///
/// Pixels come from `render(x, y, width, height, downsample)`: the region at level-0 pixel
/// (x, y) of `width` × `height` pixels of a level with that downsample. Every level is rendered
/// from the closure (not from the level above), a row of tiles at a time, the row's tiles
/// concurrently (so `render` must be safe to call from several threads): a 100,000-pixel slide
/// is written with one row of tiles in memory. Used for the synthetic slides of the tests and
/// the demo.
public struct PyramidWriter: Sendable {
    public enum Compression: Sendable { case jpeg(quality: Int), deflate }

    public var tileSize = 256
    public var compression: Compression = .jpeg(quality: 85)
    public var minimumSide = 512
    /// Micrometres per level-0 pixel (written as XResolution/YResolution in pixels per cm).
    public var mpp: Double

    public init(mpp: Double, tileSize: Int = 256, compression: Compression = .jpeg(quality: 85), minimumSide: Int = 512) {
        self.mpp = mpp
        self.tileSize = tileSize
        self.compression = compression
        self.minimumSide = minimumSide
    }

    /// Writes the pyramid of a `width` × `height` level 0 to `path`; returns each level's size.
    @discardableResult
    public func write(to path: String, width: Int, height: Int,
                      render: @escaping @Sendable (_ x: Int, _ y: Int, _ width: Int, _ height: Int, _ downsample: Int) throws -> Image) throws -> [(Int, Int)] {
        guard let tiff = TIFFOpen(path, width * height > 1 << 30 ? "w8" : "w") else { throw SlideError("\(path): cannot create TIFF") }
        defer { TIFFClose(tiff) }
        var sizes: [(Int, Int)] = []
        var downsample = 1
        while true {
            let (w, h) = ((width + downsample - 1) / downsample, (height + downsample - 1) / downsample)
            sizes.append((w, h))
            try writeLevel(tiff, path: path, width: w, height: h, downsample: downsample, render: render)
            if max(w, h) <= minimumSide { break }
            downsample *= 2
        }
        return sizes
    }

    private func writeLevel(_ tiff: OpaquePointer, path: String, width: Int, height: Int, downsample: Int,
                            render: @escaping @Sendable (Int, Int, Int, Int, Int) throws -> Image) throws {
        func set(_ tag: Int32, _ value: UInt32) { _ = withVaList([value]) { TIFFVSetField(tiff, UInt32(tag), $0) } }
        func setDouble(_ tag: Int32, _ value: Double) { _ = withVaList([value]) { TIFFVSetField(tiff, UInt32(tag), $0) } }
        set(TIFFTAG_IMAGEWIDTH, UInt32(width))
        set(TIFFTAG_IMAGELENGTH, UInt32(height))
        set(TIFFTAG_BITSPERSAMPLE, 8)
        set(TIFFTAG_SAMPLESPERPIXEL, 3)
        set(TIFFTAG_PLANARCONFIG, UInt32(PLANARCONFIG_CONTIG))
        set(TIFFTAG_PHOTOMETRIC, UInt32(PHOTOMETRIC_RGB))
        set(TIFFTAG_TILEWIDTH, UInt32(tileSize))
        set(TIFFTAG_TILELENGTH, UInt32(tileSize))
        set(TIFFTAG_RESOLUTIONUNIT, UInt32(RESUNIT_CENTIMETER))
        setDouble(TIFFTAG_XRESOLUTION, 10_000 / (mpp * Double(downsample)))
        setDouble(TIFFTAG_YRESOLUTION, 10_000 / (mpp * Double(downsample)))
        switch compression {
        case .jpeg(let quality):
            set(TIFFTAG_COMPRESSION, UInt32(COMPRESSION_JPEG))
            set(TIFFTAG_JPEGQUALITY, UInt32(quality))
        case .deflate:
            set(TIFFTAG_COMPRESSION, UInt32(COMPRESSION_ADOBE_DEFLATE))
        }
        if downsample > 1 {
            set(TIFFTAG_SUBFILETYPE, UInt32(FILETYPE_REDUCEDIMAGE))
        } else {
            let description = "Aperio Image Library (Candela synthetic slide)\r\n\(width)x\(height) (\(tileSize)x\(tileSize)) "
                + "|AppMag = \(Int((10 / mpp).rounded()))|MPP = \(mpp)"
            _ = description.withCString { text in withVaList([text]) { TIFFVSetField(tiff, UInt32(TIFFTAG_IMAGEDESCRIPTION), $0) } }
        }
        // A row of tiles is rendered on every core, then compressed and written in order.
        var buffer = [UInt8](repeating: 255, count: tileSize * tileSize * 3)
        let columns = Array(stride(from: 0, to: width, by: tileSize))
        for ty in stride(from: 0, to: height, by: tileSize) {
            let h = min(tileSize, height - ty)
            let row = RenderedRow(count: columns.count)
            DispatchQueue.concurrentPerform(iterations: columns.count) { k in
                let w = min(tileSize, width - columns[k])
                row.set(k, Result { try render(columns[k] * downsample, ty * downsample, w, h, downsample).rgb() })
            }
            for (k, tx) in columns.enumerated() {
                let w = min(tileSize, width - tx)
                let image = try row.take(k)
                guard image.width == w, image.height == h else {
                    throw SlideError("\(path): the renderer gave \(image.width)×\(image.height) pixels for a \(w)×\(h) tile")
                }
                // Edge tiles are padded to the full tile with white.
                if w < tileSize || h < tileSize { for i in 0..<buffer.count { buffer[i] = 255 } }
                image.pixels.withUnsafeBufferPointer { src in
                    buffer.withUnsafeMutableBufferPointer { dst in
                        for r in 0..<h {
                            for i in 0..<(w * 3) { dst[r * tileSize * 3 + i] = src[r * w * 3 + i] }
                        }
                    }
                }
                let written = buffer.withUnsafeMutableBytes { raw in
                    TIFFWriteTile(tiff, raw.baseAddress, UInt32(tx), UInt32(ty), 0, 0)
                }
                guard written >= 0 else { throw SlideError("\(path): libtiff could not write the tile at (\(tx), \(ty))") }
            }
        }
        guard TIFFWriteDirectory(tiff) == 1 else { throw SlideError("\(path): libtiff could not write a level directory") }
    }
}

/// The tiles of one row, filled by concurrent renderers (each slot written once, under a lock).
private final class RenderedRow: @unchecked Sendable {
    private var slots: [Result<Image, Error>?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ k: Int, _ result: Result<Image, Error>) { lock.lock(); slots[k] = result; lock.unlock() }
    func take(_ k: Int) throws -> Image {
        lock.lock(); defer { lock.unlock() }
        let result = slots[k]!
        slots[k] = nil
        return try result.get()
    }
}
