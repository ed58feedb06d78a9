import Foundation

/// Process-wide resource ceilings, checked before allocating what a file or a parameter asks
/// for (docs/limits.md).
public enum Limits {
    /// Physical memory in bytes (sysconf), or 8 GiB when unknown.
    public static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : 8 << 30
    }()

    private final class Box: @unchecked Sendable { var maxBytes = Limits.physicalMemory / 2 }
    private static let box = Box()

    /// The largest single buffer a file or parameter may make Candela allocate: half the
    /// physical memory unless `--max-memory` says otherwise.
    public static var maxBytes: Int {
        get { box.maxBytes }
        set { box.maxBytes = max(1 << 20, newValue) }
    }

    /// The most pixels a PNG, JPEG or TIFF may decode to: Pillow's decompression-bomb error threshold
    /// (2 × 89,478,485 pixels, about 13,400 × 13,400). Whole slides are read tile by tile, not
    /// decoded whole; a larger tile image is an error that names its size.
    public static let maxImagePixels = 178_956_970

    /// The bytes an image of `channels` bytes per pixel may decode to: the pixel limit and the
    /// memory ceiling, whichever is lower.
    public static func maxImageBytes(channels: Int) -> Int { min(maxImagePixels * channels, maxBytes) }

    /// Parses a size: bytes, or a number with K, M, G or T (powers of 1024), or a percentage of
    /// physical memory ("50%").
    public static func parseSize(_ text: String) throws -> Int {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        if t.hasSuffix("%"), let p = Double(t.dropLast()), p > 0, p <= 100 {
            return Int(Double(physicalMemory) * p / 100)
        }
        let units: [Character: Double] = ["K": 1024, "M": 1024 * 1024, "G": 1024 * 1024 * 1024, "T": 1024 * 1024 * 1024 * 1024]
        var number = Substring(t)
        var scale = 1.0
        if let last = t.last, let u = units[last] { scale = u; number = t.dropLast() }
        if number.hasSuffix("I") || number.hasSuffix("B") { number = number.dropLast() }
        guard let v = Double(number), v > 0, (v * scale).isFinite, v * scale < Double(Int.max) else {
            throw TensorError("'\(text)' is not a size (bytes, or a number with K, M, G, T, or a percentage of memory like 50%)")
        }
        return Int(v * scale)
    }

    /// "1.5 GiB", "12 MiB", "300 bytes".
    public static func describe(_ bytes: Int) -> String {
        let b = Double(bytes)
        if b >= Double(1 << 30) { return String(format: "%.1f GiB", b / Double(1 << 30)) }
        if b >= Double(1 << 20) { return String(format: "%.0f MiB", b / Double(1 << 20)) }
        return "\(bytes) bytes"
    }

    /// Throws naming `what` when a float32 tensor of `shape` cannot be made: a negative extent,
    /// an element count that overflows, or more bytes than the memory ceiling. Call it before
    /// allocating a tensor whose shape comes from a file, a graph's values or a parameter.
    public static func checkShape(_ shape: [Int], _ what: @autoclosure () -> String) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError("\(what()): shape \(shape) has a negative extent") }
        let count = shape.checkedElementCount.flatMap { $0 <= Int.max / 4 ? $0 : nil }
        guard let count, 4 * count <= maxBytes else {
            let size = count.map { describe(4 * $0) } ?? "more than 2^63 bytes"
            throw TensorError("\(what()): shape \(shape) needs \(size), over the memory ceiling of \(describe(maxBytes)) (--max-memory)")
        }
    }
}
