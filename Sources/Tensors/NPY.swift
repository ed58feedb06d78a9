import Foundation

/// Reading and writing NumPy `.npy` files (format versions 1.0-3.0).
///
/// Candela writes float32 C-order arrays. It reads little-endian float32, float64, int64 and
/// int32 arrays in C order, converting to Float32; anything else is an error naming the file.
public enum NPY {
    /// Reads a `.npy` file into a tensor.
    public static func read(_ path: String) throws -> Tensor { try readTyped(path).tensor }

    /// Reads a `.npy` file into a tensor, with the file's dtype (`descr`, e.g. "<f4", "|i1").
    public static func readTyped(_ path: String) throws -> (tensor: Tensor, dtype: String) {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw TensorError("\(path): cannot read file")
        }
        do {
            return try decodeTyped(bytes)
        } catch let e as TensorError {
            throw TensorError("\(path): \(e.description)")
        }
    }

    /// Whether a dtype (`descr`) is a floating-point one.
    public static func isFloat(_ dtype: String) -> Bool { ["<f4", "|f4", "<f8", "<f2"].contains(dtype) }

    /// Parses the bytes of a `.npy` file.
    public static func decode(_ bytes: Data) throws -> Tensor { try decodeTyped(bytes).tensor }

    /// Parses the bytes of a `.npy` file; also returns its dtype.
    public static func decodeTyped(_ bytes: Data) throws -> (tensor: Tensor, dtype: String) {
        let b = [UInt8](bytes)
        guard b.count >= 10, b[0] == 0x93, Array(b[1...5]) == Array("NUMPY".utf8) else {
            throw TensorError("not a .npy file (bad magic)")
        }
        let major = b[6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(b[8]) | Int(b[9]) << 8
            headerStart = 10
        } else if major == 2 || major == 3 {
            guard b.count >= 12 else { throw TensorError("truncated .npy header") }
            headerLength = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            headerStart = 12
        } else {
            throw TensorError("unsupported .npy version \(major)")
        }
        guard b.count >= headerStart + headerLength else { throw TensorError("truncated .npy header") }
        let header = String(decoding: b[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let descr = try quoted(try field("descr", in: header))
        let fortran = try field("fortran_order", in: header)
        let shapeText = try field("shape", in: header)
        if fortran.hasPrefix("True") {
            throw TensorError("Fortran-order arrays are not supported; save with np.ascontiguousarray")
        }
        let shape = try parseShape(shapeText)
        guard shape.allSatisfy({ $0 >= 0 }), let n = shape.checkedElementCount, n <= Int.max / 16 else {
            throw TensorError("shape \(shape) has a negative extent or too many elements")
        }
        guard 4 * n <= Limits.maxBytes else {
            throw TensorError("shape \(shape) needs \(Limits.describe(4 * n)) as float32, over the memory ceiling of "
                              + "\(Limits.describe(Limits.maxBytes)) (--max-memory)")
        }
        let body = headerStart + headerLength
        // Little-endian (or byte-sized) element types, all converted to Float32.
        let width: Int
        switch descr {
        case "<f4", "|f4", "<f8", "<i8", "<u8", "<i4", "<u4": width = descr.hasSuffix("8") ? 8 : 4
        case "<f2", "<i2", "<u2": width = 2
        case "|b1", "|u1", "|i1": width = 1
        default: throw TensorError("unsupported dtype '\(descr)'; expected float32 ('<f4')")
        }
        guard b.count - body >= n * width else {
            throw TensorError("truncated data: shape \(shape) needs \(n * width) bytes, file has \(b.count - body)")
        }
        var out = [Float](repeating: 0, count: n)
        b.withUnsafeBytes { raw in
            let p = raw.baseAddress!.advanced(by: body)
            func load<T>(_ type: T.Type, _ convert: (T) -> Float) {
                for i in 0..<n { out[i] = convert(p.loadUnaligned(fromByteOffset: i * width, as: T.self)) }
            }
            switch descr {
            case "<f8": load(Double.self) { Float($0) }
            case "<i8": load(Int64.self) { Float($0) }
            case "<u8": load(UInt64.self) { Float($0) }
            case "<i4": load(Int32.self) { Float($0) }
            case "<u4": load(UInt32.self) { Float($0) }
            case "<f2": load(UInt16.self) { Float(Float16(bitPattern: $0)) }
            case "<i2": load(Int16.self) { Float($0) }
            case "<u2": load(UInt16.self) { Float($0) }
            case "|b1", "|u1": load(UInt8.self) { Float($0) }
            case "|i1": load(Int8.self) { Float($0) }
            default: load(Float.self) { $0 }
            }
        }
        return (Tensor(shape: shape, data: out), descr)
    }

    /// Serialises a tensor as a float32 C-order `.npy` (format 1.0).
    public static func encode(_ t: Tensor) -> Data {
        let shapeText: String
        switch t.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(t.shape[0]),)"
        default: shapeText = "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so that the data starts on a 64-byte boundary, ending with a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let len = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(len & 0xff), UInt8(len >> 8)])
        d.append(contentsOf: Array(header.utf8))
        t.data.withUnsafeBytes { d.append(contentsOf: $0) }
        return d
    }

    /// Writes a tensor to `path` as float32 `.npy`.
    public static func write(_ t: Tensor, to path: String) throws {
        do {
            try encode(t).write(to: URL(fileURLWithPath: path))
        } catch {
            throw TensorError("\(path): cannot write (\(error.localizedDescription))")
        }
    }

    private static func field(_ key: String, in header: String) throws -> String {
        guard let r = header.range(of: "'\(key)':") else {
            throw TensorError("malformed .npy header: no '\(key)'")
        }
        return header[r.upperBound...].trimmingCharacters(in: .whitespaces)
    }

    /// The text between the first pair of single quotes.
    private static func quoted(_ text: String) throws -> String {
        let parts = text.split(separator: "'", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { throw TensorError("malformed .npy header: bad descr") }
        return String(parts[1])
    }

    private static func parseShape(_ text: String) throws -> [Int] {
        guard let open = text.firstIndex(of: "("), let close = text.firstIndex(of: ")") else {
            throw TensorError("malformed .npy shape")
        }
        let inner = text[text.index(after: open)..<close]
        return try inner.split(separator: ",").compactMap { part -> Int? in
            let s = part.trimmingCharacters(in: .whitespaces)
            if s.isEmpty { return nil }
            guard let v = Int(s), v >= 0 else { throw TensorError("malformed .npy shape '\(text)'") }
            return v
        }
    }
}
