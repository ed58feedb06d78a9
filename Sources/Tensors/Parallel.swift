import CKernels

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

    /// What each task reads: its share of the items and the body.
    private struct Job {
        let items: Int
        let parts: Int
        let body: (Int) -> Void
    }
}
