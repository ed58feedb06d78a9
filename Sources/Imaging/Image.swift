/// A decoded 8-bit image, interleaved (row-major, `channels` bytes per pixel): 1 = gray, 3 = RGB,
/// 4 = RGBA with straight alpha (report layers only; decoders give 1 or 3).
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3 || channels == 4, "channels must be 1, 3 or 4")
        precondition(pixels.count == width * height * channels)
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// Planar float copy (C,H,W) with values in [0, 255].
    public func planarFloats() -> [Float] {
        let plane = width * height
        var out = [Float](repeating: 0, count: plane * channels)
        for i in 0..<plane {
            for c in 0..<channels { out[c * plane + i] = Float(pixels[i * channels + c]) }
        }
        return out
    }

    /// The same image with three channels (gray replicated, alpha dropped).
    public func rgb() -> Image {
        if channels == 3 { return self }
        var p = [UInt8](repeating: 0, count: width * height * 3)
        if channels == 4 {
            for i in 0..<(width * height) { p[3 * i] = pixels[4 * i]; p[3 * i + 1] = pixels[4 * i + 1]; p[3 * i + 2] = pixels[4 * i + 2] }
            return Image(width: width, height: height, channels: 3, pixels: p)
        }
        for i in 0..<(width * height) { p[3 * i] = pixels[i]; p[3 * i + 1] = pixels[i]; p[3 * i + 2] = pixels[i] }
        return Image(width: width, height: height, channels: 3, pixels: p)
    }
}

/// An image that could not be read or written, naming the file.
public struct ImagingError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
