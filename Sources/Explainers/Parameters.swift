import Foundation

/// Typed reading of `key=value` method parameters, with errors that name the method and key.
struct Parameters {
    let method: String
    let values: [String: String]

    func string(_ key: String) -> String? { values[key] }

    /// An integer parameter in [lo, hi]; the error names the method, the key and the range.
    /// The default upper bound keeps every count far from overflow (docs/limits.md).
    func int(_ key: String, default d: Int, min lo: Int = 1, max hi: Int = 1_000_000) throws -> Int {
        guard let text = values[key] else { return d }
        guard let v = Int(text), v >= lo, v <= hi else {
            throw ExplainerError("\(method): \(key) must be an integer from \(lo) to \(hi), got '\(text)'")
        }
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
