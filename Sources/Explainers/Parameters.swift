import Foundation

/// Typed reading of `key=value` method parameters, with errors that name the method and key.
struct Parameters {
    let method: String
    let values: [String: String]

    func string(_ key: String) -> String? { values[key] }

    func int(_ key: String, default d: Int, min lo: Int = 1) throws -> Int {
        guard let text = values[key] else { return d }
        guard let v = Int(text), v >= lo else { throw ExplainerError("\(method): \(key) must be an integer ≥ \(lo), got '\(text)'") }
        return v
    }

    func float(_ key: String, default d: Float, range: ClosedRange<Float> = -Float.greatestFiniteMagnitude...Float.greatestFiniteMagnitude) throws -> Float {
        guard let text = values[key] else { return d }
        guard let v = Float(text), v.isFinite, range.contains(v) else {
            throw ExplainerError("\(method): \(key) must be a number in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return v
    }

    func ints(_ key: String, count: Int, default d: [Int]) throws -> [Int] {
        guard let text = values[key] else { return d }
        let v = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == count, v.allSatisfy({ $0 >= 1 }) else {
            throw ExplainerError("\(method): \(key) must be \(count) comma-separated positive integers, got '\(text)'")
        }
        return v
    }

    func choice(_ key: String, default d: String, among options: [String]) throws -> String {
        guard let v = values[key] else { return d }
        guard options.contains(v) else {
            throw ExplainerError("\(method): \(key) must be one of \(options.joined(separator: ", ")), got '\(v)'")
        }
        return v
    }
}

/// SplitMix64: the seeded generator behind every stochastic method (`seed` makes runs repeatable).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal sample (Box–Muller).
    mutating func gaussian() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self), u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
