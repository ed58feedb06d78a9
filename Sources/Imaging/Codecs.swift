import CJPEG
import CPNG
import CTIFF
import Foundation
import Tensors

/// PNG, JPEG and TIFF decoding; PNG and JPEG encoding. The only file that calls libpng and
/// libjpeg, and libtiff's reader (Slides/PyramidWriter writes TIFF).
///
/// PNG goes through libpng's simplified API (png_image), which handles 8/16-bit, gray, RGB,
/// RGBA and palette files and returns errors instead of longjmp-ing. JPEG goes through a small
/// C shim (Sources/CJPEG) that traps libjpeg's longjmp errors.
public enum Codecs {
    /// What a decoder returns: luma, RGB (transparency composited onto white), or RGBA
    /// (straight alpha; opaque formats get alpha 255).
    public enum Layout: Sendable { case gray, rgb, rgba }

    /// Decodes a PNG, JPEG or TIFF file (chosen by its signature, not its extension).
    public static func decode(path: String, as layout: Layout = .rgb) throws -> Image {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImagingError("\(path): cannot read file")
        }
        do {
            return try decode(data, as: layout)
        } catch let e as ImagingError {
            throw ImagingError("\(path): \(e.description)")
        }
    }

    /// Decodes PNG, JPEG or TIFF bytes.
    public static func decode(_ data: Data, as layout: Layout = .rgb) throws -> Image {
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try decodePNG(bytes, layout) }
        if bytes.starts(with: [0xFF, 0xD8]) { return convert(try decodeJPEG(bytes), to: layout) }
        // TIFF ("II*\0", "MM\0*") and BigTIFF ("II+\0", "MM\0+").
        if bytes.count >= 4, (bytes[0] == 0x49 && bytes[1] == 0x49 && (bytes[2] == 0x2A || bytes[2] == 0x2B) && bytes[3] == 0)
            || (bytes[0] == 0x4D && bytes[1] == 0x4D && bytes[2] == 0 && (bytes[3] == 0x2A || bytes[3] == 0x2B)) {
            return convert(try decodeTIFF(bytes), to: layout)
        }
        if bytes.isEmpty { throw ImagingError("empty file") }
        throw ImagingError("not a PNG, JPEG or TIFF file")
    }

    /// The first image of a TIFF or BigTIFF, through libtiff (Sources/CTIFF/shim.c).
    static func decodeTIFF(_ bytes: [UInt8]) throws -> Image {
        var w: Int32 = 0, h: Int32 = 0, pages: Int32 = 0
        var out: UnsafeMutablePointer<UInt8>?
        var err = [CChar](repeating: 0, count: 256)
        let rc = bytes.withUnsafeBufferPointer { p in
            candela_tiff_decode_rgb(p.baseAddress, p.count, Limits.maxImageBytes(channels: 4), &w, &h, &pages, &out, &err, err.count)
        }
        if rc == -2 {
            let pyramid = pages > 1 ? "; a pyramidal slide (\(pages) images) belongs in a dataset of kind: slides (docs/slides.md)" : ""
            throw ImagingError("TIFF of \(w) x \(h) pixels (\(Limits.describe(Int(w) * Int(h) * 4)) decoded) is over the limit of "
                               + "\(Limits.maxImagePixels) pixels and \(Limits.describe(Limits.maxBytes)) (--max-memory)\(pyramid)")
        }
        guard rc == 0, let out else {
            let text = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw ImagingError("corrupt or unsupported TIFF: \(text)")
        }
        defer { candela_tiff_free(out) }
        return Image(width: Int(w), height: Int(h), channels: 3, pixels: Array(UnsafeBufferPointer(start: out, count: Int(w) * Int(h) * 3)))
    }

    // PNG_FORMAT_* values from png.h (flag macros Swift does not import).
    private static let formatGray: UInt32 = 0
    private static let formatRGB: UInt32 = 2
    private static let formatRGBA: UInt32 = 3
    private static let flag16BitSRGB: UInt32 = 4

    static func decodePNG(_ bytes: [UInt8], _ layout: Layout) throws -> Image {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let ok = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard ok != 0 else { throw ImagingError("invalid PNG: \(message(image))") }
        // 16-bit files without gamma information are scaled like 8-bit ones (v/257), as PIL
        // and OpenCV do, instead of being taken as linear light.
        image.flags |= flag16BitSRGB
        let channels = layout == .rgb ? 3 : layout == .rgba ? 4 : 1
        image.format = layout == .rgb ? formatRGB : layout == .rgba ? formatRGBA : formatGray
        let (w, h) = (Int(image.width), Int(image.height))
        guard w > 0, h > 0 else { throw ImagingError("PNG has unusable size \(w)x\(h)") }
        // The header's size is checked before anything is allocated or decoded: a small file can
        // declare 2^31 x 2^31 pixels.
        guard w * h <= Limits.maxImageBytes(channels: channels) / channels else {
            throw ImagingError("PNG of \(w) x \(h) pixels (\(Limits.describe(w * h * channels)) decoded) is over the limit of "
                               + "\(Limits.maxImagePixels) pixels and \(Limits.describe(Limits.maxBytes)) (--max-memory)")
        }
        var pixels = [UInt8](repeating: 0, count: w * h * channels)
        // Transparent pixels are composited onto white, the colour of an empty slide.
        var white = png_color(red: 255, green: 255, blue: 255)
        let done = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, &white, $0.baseAddress, 0, nil) }
        guard done != 0 else { throw ImagingError("corrupt or truncated PNG: \(message(image))") }
        return Image(width: w, height: h, channels: channels, pixels: pixels)
    }

    private static func message(_ image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func decodeJPEG(_ bytes: [UInt8]) throws -> Image {
        var w: Int32 = 0, h: Int32 = 0
        var out: UnsafeMutablePointer<UInt8>?
        var err = [CChar](repeating: 0, count: 256)
        let rc = bytes.withUnsafeBufferPointer { p in
            candela_jpeg_decode_rgb(p.baseAddress, p.count, Limits.maxImageBytes(channels: 3), &w, &h, &out, &err, err.count)
        }
        guard rc == 0, let out else {
            let text = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw ImagingError(text.hasPrefix("JPEG of ") ? text : "corrupt or truncated JPEG: \(text)")
        }
        defer { candela_jpeg_free(out) }
        let n = Int(w) * Int(h) * 3
        return Image(width: Int(w), height: Int(h), channels: 3, pixels: Array(UnsafeBufferPointer(start: out, count: n)))
    }

    /// An RGB image in `layout`.
    static func convert(_ rgb: Image, to layout: Layout) -> Image {
        switch layout {
        case .rgb: return rgb
        case .gray: return grayscale(rgb)
        case .rgba:
            var p = [UInt8](repeating: 255, count: rgb.width * rgb.height * 4)
            for i in 0..<(rgb.width * rgb.height) { for k in 0..<3 { p[4 * i + k] = rgb.pixels[3 * i + k] } }
            return Image(width: rgb.width, height: rgb.height, channels: 4, pixels: p)
        }
    }

    /// ITU-R BT.601 luma, as libjpeg and PIL convert RGB to gray.
    static func grayscale(_ rgb: Image) -> Image {
        var p = [UInt8](repeating: 0, count: rgb.width * rgb.height)
        for i in 0..<p.count {
            let r = Float(rgb.pixels[3 * i]), g = Float(rgb.pixels[3 * i + 1]), b = Float(rgb.pixels[3 * i + 2])
            p[i] = UInt8(min(255, max(0, (0.299 * r + 0.587 * g + 0.114 * b).rounded())))
        }
        return Image(width: rgb.width, height: rgb.height, channels: 1, pixels: p)
    }

    /// Encodes an 8-bit gray, RGB or RGBA (straight alpha) image as PNG.
    public static func encodePNG(_ img: Image) throws -> Data {
        func header() -> png_image {
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            image.width = UInt32(img.width)
            image.height = UInt32(img.height)
            image.format = img.channels == 4 ? formatRGBA : img.channels == 3 ? formatRGB : formatGray
            // zlib's fast level: images are written by the thousand, and the best level costs
            // 3-4x the time for ~10% smaller files.
            image.flags = UInt32(PNG_IMAGE_FLAG_FAST)
            return image
        }
        var image = header()
        // One pass into a buffer larger than any PNG of these pixels (raw rows + filter bytes +
        // zlib's worst-case overhead + chunks); a second sized pass only if that ever fails.
        var size = img.pixels.count + img.height + img.pixels.count / 100 + 4096
        var out = [UInt8](repeating: 0, count: size)
        var written = out.withUnsafeMutableBytes { dst in
            img.pixels.withUnsafeBytes { png_image_write_to_memory(&image, dst.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        if written == 0 {
            image = header()
            size = 0
            let sized = img.pixels.withUnsafeBytes { png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }
            guard sized != 0 else { throw ImagingError("cannot encode PNG: \(message(image))") }
            out = [UInt8](repeating: 0, count: size)
            written = out.withUnsafeMutableBytes { dst in
                img.pixels.withUnsafeBytes { png_image_write_to_memory(&image, dst.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
            }
        }
        guard written != 0 else { throw ImagingError("cannot encode PNG: \(message(image))") }
        return Data(out.prefix(size))
    }

    /// Encodes an RGB image as JPEG (tests and thumbnails).
    public static func encodeJPEG(_ img: Image, quality: Int = 90, progressive: Bool = false) throws -> Data {
        let rgb = img.rgb()
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = rgb.pixels.withUnsafeBufferPointer { p in
            candela_jpeg_encode_rgb(p.baseAddress, Int32(rgb.width), Int32(rgb.height), Int32(quality),
                                    progressive ? 1 : 0, &out, &length, &err, err.count)
        }
        guard rc == 0, let out else { throw ImagingError("cannot encode JPEG") }
        defer { candela_jpeg_free(out) }
        return Data(UnsafeBufferPointer(start: out, count: length))
    }

    /// Writes a PNG file.
    public static func writePNG(_ img: Image, to path: String) throws {
        do {
            try encodePNG(img).write(to: URL(fileURLWithPath: path))
        } catch let e as ImagingError {
            throw ImagingError("\(path): \(e.description)")
        } catch {
            throw ImagingError("\(path): cannot write (\(error.localizedDescription))")
        }
    }
}
