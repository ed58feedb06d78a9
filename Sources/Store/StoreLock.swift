import Foundation

/// The writer's lock of a store: one process writes a store at a time.
///
/// `candela run` and `merge` hold an exclusive `flock` on `<store>.lock` (a file Candela makes
/// beside the store and leaves there; it holds the writer's process id) from before they open
/// the store until they exit. A second writer is refused at once with the first one's pid,
/// instead of interleaving its run with the other's. The kernel drops the lock when the process
/// ends, however it ends (kill -9 included), so a crash never leaves a stale lock.
public final class StoreLock: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    /// Takes the lock of the store at `store`; throws "store in use by pid N" when another
    /// process holds it.
    public init(store: String) throws {
        path = store + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StoreError("\(path): cannot create the store's lock file (\(String(cString: strerror(errno))))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, 31, 0)
            close(fd)
            let holder = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw StoreError("\(store): store in use by pid \(holder) (another candela run or merge writes it; \(path))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
