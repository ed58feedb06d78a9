import Foundation

/// A wall-clock limit for the work running on the current thread (`candela run --item-timeout`).
///
/// A thread cannot be stopped from outside, so the limit is cooperative: the runner sets a
/// deadline on the worker thread before an item and clears it after; the engine checks it
/// (`check`) at the start of every forward and backward pass, and every explainer is a series
/// of passes. An item past its deadline therefore stops at its next pass with an error that
/// becomes its failure row, and the worker takes the next item: one item cannot hold a night's
/// run. The overrun is at most one pass (a pass itself is not interrupted).
public enum Deadline {
    private static let key = "candela.deadline"

    /// Runs `body` with a deadline `seconds` from now on this thread (none when nil).
    public static func with<T>(seconds: Double?, label: String, _ body: () throws -> T) rethrows -> T {
        guard let seconds else { return try body() }
        let dictionary = Thread.current.threadDictionary
        let saved = dictionary[key]
        dictionary[key] = Limit(end: Date().addingTimeInterval(seconds), seconds: seconds, label: label)
        defer { dictionary[key] = saved }
        return try body()
    }

    /// Throws when this thread's deadline has passed.
    public static func check() throws {
        guard let limit = Thread.current.threadDictionary[key] as? Limit else { return }
        if Date() > limit.end {
            throw TensorError("\(limit.label): stopped after \(String(format: "%g", limit.seconds)) s (--item-timeout)")
        }
    }

    private final class Limit: NSObject {
        let end: Date
        let seconds: Double
        let label: String
        init(end: Date, seconds: Double, label: String) {
            self.end = end
            self.seconds = seconds
            self.label = label
        }
    }
}
