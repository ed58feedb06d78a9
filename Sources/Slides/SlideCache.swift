import Foundation

/// Slides and annotation files opened once and shared by threads (OpenSlide handles may be read
/// from several threads at once). A file that cannot be opened fails once; later asks get the
/// same error without trying again.
public final class SlideCache: @unchecked Sendable {
    private let lock = NSLock()
    private var slides: [String: Result<Slide, Error>] = [:]
    private var annotationFiles: [String: Result<Annotations, Error>] = [:]

    /// A cache holding `opened` already.
    public init(_ opened: [Slide] = []) {
        for s in opened { slides[s.path] = .success(s) }
    }

    public func slide(_ path: String) throws -> Slide { try cached(&slides, path) { try Slide(path: $0) } }

    public func annotations(_ path: String) throws -> Annotations { try cached(&annotationFiles, path) { try Annotations(path: $0) } }

    /// The entry of `table` for `path`, made with `open` the first time (its error kept too).
    private func cached<T>(_ table: inout [String: Result<T, Error>], _ path: String, _ open: (String) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if let known = table[path] { return try known.get() }
        let made = Result { try open(path) }
        table[path] = made
        return try made.get()
    }
}
