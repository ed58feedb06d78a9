import Foundation
import Tensors

/// A seeded mutation fuzzer for file readers (the ONNX loader, the `.npy` reader, the manifest
/// parser): each case is a valid seed file with a few random edits — bit flips, bytes set to
/// boundary values (0x00, 0x7F, 0x80, 0xFF), little-endian varints and integers made huge,
/// slices deleted, duplicated or truncated — so that most cases get past the format's magic and
/// exercise the checks behind it. Reproducible: the same seed gives the same cases.
public struct Mutator {
    var rng: SeededGenerator

    public init(seed: UInt64) { rng = SeededGenerator(seed: seed) }

    /// One mutated copy of `bytes` (1 to 4 edits).
    public mutating func mutate(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        for _ in 0..<Int.random(in: 1...4, using: &rng) where !b.isEmpty {
            let at = Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: b[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            case 1: b[at] = [0x00, 0x7F, 0x80, 0xFF][Int.random(in: 0..<4, using: &rng)]
            case 2: // a run of 0xFF: huge varints, lengths and dimensions
                for i in at..<min(b.count, at + Int.random(in: 2...9, using: &rng)) { b[i] = 0xFF }
            case 3: b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...64, using: &rng)))
            case 4: b.insert(contentsOf: b[at..<min(b.count, at + Int.random(in: 1...64, using: &rng))], at: at)
            case 5: b.removeSubrange(at..<b.count) // truncated
            default: // an ASCII digit run made long (text formats: shapes, numbers)
                b.insert(contentsOf: Array(repeating: UInt8(ascii: "9"), count: Int.random(in: 1...20, using: &rng)), at: at)
            }
        }
        return b
    }
}
