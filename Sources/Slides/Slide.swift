import COpenSlide
import Foundation
import Imaging

/// An error about a slide, naming the file and, where it comes from OpenSlide, its message.
public struct SlideError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A whole-slide image opened with OpenSlide: a pyramid of levels, level 0 the full resolution.
///
/// Coordinates are level-0 pixels unless a name says otherwise. OpenSlide handles may be read
/// from several threads at once (its documented guarantee), so one `Slide` serves every worker.
public final class Slide: @unchecked Sendable {
    public let path: String
    private let handle: OpaquePointer

    /// One level of the pyramid.
    public struct Level: Sendable, Equatable {
        public let width: Int
        public let height: Int
        /// Level-0 pixels per pixel of this level.
        public let downsample: Double
    }

    public let levels: [Level]
    /// Micrometres per level-0 pixel (`openslide.mpp-x`, `openslide.mpp-y`), when the file says.
    public let mpp: (x: Double, y: Double)?
    /// The scanner's objective (`openslide.objective-power`), when the file says.
    public let objectivePower: Double?
    /// OpenSlide's vendor name ("aperio", "generic-tiff", ...).
    public let vendor: String
    /// `openslide.quickhash-1`: a hash of the slide's lowest level and its properties.
    public let quickHash: String
    /// Names of the associated images (label, macro, thumbnail, ...).
    public let associatedImages: [String]

    public var width: Int { levels[0].width }
    public var height: Int { levels[0].height }

    /// Opens `path`. A file OpenSlide does not recognise, cannot open or finds damaged is an
    /// error naming the file and OpenSlide's message.
    public init(path: String) throws {
        guard FileManager.default.isReadableFile(atPath: path) else { throw SlideError("\(path): cannot read slide") }
        guard let handle = openslide_open(path) else {
            throw SlideError("\(path): not a slide OpenSlide can read (unknown format; OpenSlide 3.4 reads Aperio .svs, "
                             + "Hamamatsu .ndpi/.vms, Leica .scn, MIRAX .mrxs, Philips TIFF, Sakura .svslide, Ventana .bif, "
                             + "and tiled pyramidal TIFF)")
        }
        if let message = openslide_get_error(handle) {
            let text = String(cString: message)
            openslide_close(handle)
            throw SlideError("\(path): OpenSlide cannot open the slide: \(text)")
        }
        self.path = path
        self.handle = handle
        var levels: [Level] = []
        for i in 0..<openslide_get_level_count(handle) {
            var w: Int64 = 0, h: Int64 = 0
            openslide_get_level_dimensions(handle, i, &w, &h)
            levels.append(Level(width: Int(w), height: Int(h), downsample: openslide_get_level_downsample(handle, i)))
        }
        guard let first = levels.first, first.width > 0, first.height > 0 else {
            openslide_close(handle)
            throw SlideError("\(path): the slide has no readable level")
        }
        self.levels = levels
        func property(_ name: String) -> String? {
            openslide_get_property_value(handle, name).map { String(cString: $0) }
        }
        if let x = property("openslide.mpp-x").flatMap(Double.init), let y = property("openslide.mpp-y").flatMap(Double.init), x > 0, y > 0 {
            mpp = (x, y)
        } else {
            mpp = nil
        }
        objectivePower = property("openslide.objective-power").flatMap(Double.init)
        vendor = property("openslide.vendor") ?? "unknown"
        quickHash = property("openslide.quickhash-1") ?? ""
        var names: [String] = []
        if var p = openslide_get_associated_image_names(handle) {
            while let name = p.pointee {
                names.append(String(cString: name))
                p += 1
            }
        }
        associatedImages = names
    }

    deinit { openslide_close(handle) }

    /// A property of the slide (OpenSlide's names: `openslide.*`, `aperio.*`, `tiff.*`, ...).
    public func property(_ name: String) -> String? {
        openslide_get_property_value(handle, name).map { String(cString: $0) }
    }

    /// The region whose top-left corner is level-0 pixel (`x`, `y`), `width` × `height` pixels of
    /// `level`, as 8-bit RGB. Transparent pixels (outside the scanned area) become white, the
    /// colour of glass, as in QuPath and openslide-python's `convert('RGB')` after compositing.
    public func read(x: Int, y: Int, level: Int, width: Int, height: Int) throws -> Image {
        guard levels.indices.contains(level) else { throw SlideError("\(path): no level \(level) (the slide has \(levels.count))") }
        guard width > 0, height > 0, width <= 1 << 14, height <= 1 << 14 else {
            throw SlideError("\(path): region \(width)×\(height) is out of range (1...16384 pixels a side)")
        }
        var argb = [UInt32](repeating: 0, count: width * height)
        openslide_read_region(handle, &argb, Int64(x), Int64(y), Int32(level), Int64(width), Int64(height))
        if let message = openslide_get_error(handle) {
            throw SlideError("\(path): OpenSlide cannot read the region at (\(x), \(y)) level \(level): \(String(cString: message))")
        }
        return Slide.rgb(argb, width: width, height: height)
    }

    /// An associated image (label, macro, thumbnail) as RGB.
    public func associatedImage(_ name: String) throws -> Image {
        guard associatedImages.contains(name) else {
            throw SlideError("\(path): no associated image '\(name)'; it has: \(associatedImages.joined(separator: ", "))")
        }
        var w: Int64 = 0, h: Int64 = 0
        openslide_get_associated_image_dimensions(handle, name, &w, &h)
        guard w > 0, h > 0, w * h <= 1 << 28 else { throw SlideError("\(path): associated image '\(name)' has size \(w)×\(h)") }
        var argb = [UInt32](repeating: 0, count: Int(w * h))
        openslide_read_associated_image(handle, name, &argb)
        if let message = openslide_get_error(handle) {
            throw SlideError("\(path): OpenSlide cannot read associated image '\(name)': \(String(cString: message))")
        }
        return Slide.rgb(argb, width: Int(w), height: Int(h))
    }

    /// The level to read for a wanted downsample: the coarsest level at least as fine as asked
    /// (so that the region is resampled down, never up), as `openslide_get_best_level_for_downsample`.
    public func level(forDownsample downsample: Double) -> Int {
        var best = 0
        for (i, l) in levels.enumerated() where l.downsample <= downsample * (1 + 1e-6) { best = i }
        return best
    }

    /// OpenSlide's premultiplied ARGB composited over white, as RGB bytes.
    static func rgb(_ argb: [UInt32], width: Int, height: Int) -> Image {
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        for i in 0..<(width * height) {
            let p = argb[i]
            let a = Int(p >> 24)
            if a == 0 { continue }
            let r = Int((p >> 16) & 0xff), g = Int((p >> 8) & 0xff), b = Int(p & 0xff)
            // Premultiplied: colour + (1 − α)·white.
            let white = 255 - a
            pixels[i * 3] = UInt8(min(255, r + white))
            pixels[i * 3 + 1] = UInt8(min(255, g + white))
            pixels[i * 3 + 2] = UInt8(min(255, b + white))
        }
        return Image(width: width, height: height, channels: 3, pixels: pixels)
    }
}
