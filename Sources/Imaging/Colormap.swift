/// Colormaps as 256-entry RGB lookup tables.
///
/// - `viridis` (default): perceptually uniform and readable with the common forms of colour
///   blindness. Built by linear interpolation between matplotlib's viridis at 9 evenly spaced
///   stops (the values d3 and matplotlib publish); within a few levels of the full table.
/// - `turbo`: Google's improved rainbow, from its published polynomial approximation
///   (Mikhailov, 2019).
/// - `jet`: MATLAB's classic piecewise-linear rainbow; not colour-blind safe, kept for
///   familiarity with older reports.
public enum Colormap: String, Sendable, CaseIterable, Codable {
    case viridis, turbo, jet

    /// 256 RGB triples.
    public var table: [(UInt8, UInt8, UInt8)] {
        switch self {
        case .viridis: return Colormap.viridisTable
        case .turbo: return Colormap.turboTable
        case .jet: return Colormap.jetTable
        }
    }

    /// Colour of a value in [0, 1] (clamped).
    public func color(_ v: Float) -> (UInt8, UInt8, UInt8) {
        let i = Int((min(1, max(0, v.isNaN ? 0 : v)) * 255).rounded())
        return table[i]
    }

    static func byte(_ x: Double) -> UInt8 { UInt8(max(0, min(255, (x * 255).rounded()))) }

    static let viridisStops: [(Double, Double, Double)] = [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ]

    static let viridisTable: [(UInt8, UInt8, UInt8)] = (0..<256).map { i in
        let t = Double(i) / 255 * Double(viridisStops.count - 1)
        let k = min(Int(t), viridisStops.count - 2)
        let f = t - Double(k)
        let a = viridisStops[k], b = viridisStops[k + 1]
        return (byte((a.0 + (b.0 - a.0) * f) / 255), byte((a.1 + (b.1 - a.1) * f) / 255), byte((a.2 + (b.2 - a.2) * f) / 255))
    }

    static let turboTable: [(UInt8, UInt8, UInt8)] = (0..<256).map { i in
        let x = Double(i) / 255
        let v = [1, x, x * x, x * x * x, x * x * x * x, x * x * x * x * x]
        func poly(_ c: [Double]) -> Double { zip(c, v).reduce(0) { $0 + $1.0 * $1.1 } }
        let r = poly([0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943])
        let g = poly([0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604])
        let b = poly([0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973])
        return (byte(r), byte(g), byte(b))
    }

    static let jetTable: [(UInt8, UInt8, UInt8)] = (0..<256).map { i in
        let x = Double(i) / 255
        func ramp(_ center: Double) -> Double { min(1, max(0, 1.5 - abs(4 * x - center))) }
        return (byte(ramp(3)), byte(ramp(2)), byte(ramp(1)))
    }
}
