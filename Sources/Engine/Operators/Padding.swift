/// Resolves ONNX `auto_pad` and `pads` into explicit (top, left, bottom, right) padding.
///
/// SAME_UPPER puts the odd extra pixel at the end, SAME_LOWER at the beginning (ONNX spec).
func resolvePads(autoPad: String, pads: [Int]?, input: (h: Int, w: Int), kernel: (h: Int, w: Int),
                 strides: (h: Int, w: Int), dilations: (h: Int, w: Int)) throws -> (Int, Int, Int, Int) {
    let p = try resolvePadsND(autoPad: autoPad, pads: pads, input: [input.h, input.w], kernel: [kernel.h, kernel.w],
                              strides: [strides.h, strides.w], dilations: [dilations.h, dilations.w])
    return (p[0], p[1], p[2], p[3])
}

/// Reads a pair (h, w) from a 2-entry attribute list, with a default.
func pair(_ values: [Int]?, default d: Int, _ name: String) throws -> (Int, Int) {
    guard let v = values else { return (d, d) }
    guard v.count == 2 else { throw EngineError("\(name) must have 2 entries for a 2-D operator, got \(v)") }
    return (v[0], v[1])
}

/// N-d form of `resolvePads`: begin pads for each spatial axis, then end pads (ONNX order).
func resolvePadsND(autoPad: String, pads: [Int]?, input: [Int], kernel: [Int], strides: [Int], dilations: [Int]) throws -> [Int] {
    let k = kernel.count
    switch autoPad {
    case "NOTSET", "":
        guard let p = pads else { return Array(repeating: 0, count: 2 * k) }
        guard p.count == 2 * k else { throw EngineError("pads must have \(2 * k) entries, got \(p)") }
        return p
    case "VALID":
        return Array(repeating: 0, count: 2 * k)
    case "SAME_UPPER", "SAME_LOWER":
        var begin = [Int](), end = [Int]()
        for i in 0..<k {
            let out = (input[i] + strides[i] - 1) / strides[i]
            let total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - input[i])
            let small = total / 2, large = total - total / 2
            begin.append(autoPad == "SAME_UPPER" ? small : large)
            end.append(autoPad == "SAME_UPPER" ? large : small)
        }
        return begin + end
    default:
        throw EngineError("unknown auto_pad '\(autoPad)'")
    }
}
