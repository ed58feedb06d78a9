/// Resolves ONNX `auto_pad` and `pads` into explicit (top, left, bottom, right) padding.
///
/// SAME_UPPER puts the odd extra pixel at the end, SAME_LOWER at the beginning (ONNX spec).
func resolvePads(autoPad: String, pads: [Int]?, input: (h: Int, w: Int), kernel: (h: Int, w: Int),
                 strides: (h: Int, w: Int), dilations: (h: Int, w: Int)) throws -> (Int, Int, Int, Int) {
    switch autoPad {
    case "NOTSET", "":
        guard let p = pads else { return (0, 0, 0, 0) }
        guard p.count == 4 else { throw EngineError("pads must have 4 entries for a 2-D operator, got \(p)") }
        return (p[0], p[1], p[2], p[3])
    case "VALID":
        return (0, 0, 0, 0)
    case "SAME_UPPER", "SAME_LOWER":
        func total(_ size: Int, _ k: Int, _ s: Int, _ d: Int) -> Int {
            let out = (size + s - 1) / s
            return max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        }
        let th = total(input.h, kernel.h, strides.h, dilations.h)
        let tw = total(input.w, kernel.w, strides.w, dilations.w)
        if autoPad == "SAME_UPPER" {
            return (th / 2, tw / 2, th - th / 2, tw - tw / 2)
        }
        return (th - th / 2, tw - tw / 2, th / 2, tw / 2)
    default:
        throw EngineError("unknown auto_pad '\(autoPad)'")
    }
}

/// Reads a pair (h, w) from a 2-entry attribute list, with a default.
func pair(_ values: [Int]?, default d: Int, _ name: String) throws -> (Int, Int) {
    guard let v = values else { return (d, d) }
    guard v.count == 2 else { throw EngineError("\(name) must have 2 entries for a 2-D operator, got \(v)") }
    return (v[0], v[1])
}
