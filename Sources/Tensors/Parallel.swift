import CKernels
import Foundation

/// Fork-join over the kernels' spinning thread pool (`ck_parallel_for`, threads.c).
///
/// The pool runs one job at a time. A call made from inside a task (or while another thread's
/// job runs) runs its items on the calling thread, so a region nested in another is serial:
/// `Model.forward` relies on that when it gives each thread whole images and every operator
/// inside runs single-threaded.
public enum Parallel {
    /// Runs `body` for items 0..<items on `threads` threads, each taking a contiguous share;
    /// returns when all are done.
    public static func run(_ threads: Int, items: Int, _ body: @Sendable (Int) -> Void) {
        let parts = Swift.min(threads, items)
        if parts <= 1 {
            for i in 0..<items { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var job = Job(items: items, parts: parts, body: body)
            withUnsafeMutablePointer(to: &job) { pointer in
                _ = ck_parallel_for(Int32(parts), Int32(parts), { context, t in
                    let job = context!.assumingMemoryBound(to: Job.self).pointee
                    let t = Int(t)
                    for i in (job.items * t / job.parts)..<(job.items * (t + 1) / job.parts) { job.body(i) }
                }, pointer)
            }
        }
    }

    /// Whether this thread runs a task of the pool, so that a parallel region opened here would
    /// run on it alone.
    public static var isNested: Bool { ck_parallel_nested() != 0 }

    /// Runs body(part, piece) for every part in 0..<parts and piece in 0..<pieces: part t on
    /// thread t (the caller is thread 0), its pieces in order, so a thread keeps to the data it
    /// worked on in the layer before; a thread done with its own part takes the other parts'
    /// unclaimed pieces, last first (`ck_parallel_shares`). A thread the host deschedules in the
    /// middle of its part then costs the other one piece, not the rest of the part. Nested
    /// regions run serially, as in `run`.
    public static func shares(_ parts: Int, pieces: Int, _ body: @Sendable (Int, Int) -> Void) {
        guard parts > 1 else {
            for part in 0..<Swift.max(parts, 0) { for piece in 0..<pieces { body(part, piece) } }
            return
        }
        withoutActuallyEscaping(body) { body in
            var job = SharesJob(body: body)
            withUnsafeMutablePointer(to: &job) { pointer in
                _ = ck_parallel_shares(Int32(parts), Int32(pieces), { context, part, piece in
                    context!.assumingMemoryBound(to: SharesJob.self).pointee.body(Int(part), Int(piece))
                }, pointer)
            }
        }
    }

    /// The items of run `piece` (of `pieces`) in part `part` (of `parts`) when `items` items are
    /// split into contiguous parts and each part into runs, for `shares`: the part's share of
    /// the items, cut at multiples of `multiple` from its start; the last run takes the rest,
    /// and a run may be empty.
    public static func items(ofPiece piece: Int, of pieces: Int, part: Int, of parts: Int, items: Int,
                             multiple: Int = 1) -> Range<Int> {
        let (first, end) = (items * part / parts, items * (part + 1) / parts)
        func cut(_ i: Int) -> Int { i >= pieces ? end : first + (end - first) * i / pieces / multiple * multiple }
        return cut(piece)..<cut(piece + 1)
    }

    /// body(0) ..< body(count - 1) on up to `threads` threads, each taking the next index when
    /// it is done (a thread that drew a short item takes more); the results in index order.
    /// Throws the error of the lowest failing index, after every item has run.
    public static func map<T>(_ threads: Int, count: Int, _ body: @Sendable (Int) throws -> T) throws -> [T] {
        let queue = Queue<T>(count: count)
        run(Swift.min(threads, count), items: Swift.min(threads, count)) { _ in
            while let i = queue.next() { queue.set(i, Result { try body(i) }) }
        }
        return try queue.values()
    }

    /// `map`'s items handed out one at a time, and their results.
    private final class Queue<T>: @unchecked Sendable {
        private let lock = NSLock()
        private var taken = 0
        private var slots: [Result<T, Error>?]

        init(count: Int) { slots = Array(repeating: nil, count: count) }

        func next() -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard taken < slots.count else { return nil }
            taken += 1
            return taken - 1
        }

        func set(_ i: Int, _ result: Result<T, Error>) {
            lock.lock()
            slots[i] = result
            lock.unlock()
        }

        func values() throws -> [T] {
            lock.lock()
            defer { lock.unlock() }
            return try slots.map { try $0!.get() }
        }
    }

    /// What each piece of a `shares` job reads.
    private struct SharesJob {
        let body: (Int, Int) -> Void
    }

    /// What each task reads: its share of the items and the body.
    private struct Job {
        let items: Int
        let parts: Int
        let body: (Int) -> Void
    }
}
