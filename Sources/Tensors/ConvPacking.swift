import CKernels
import Dispatch
import Foundation

/// A convolution's weights packed for one of the fast kernels, one block per group, made once
/// and reused by every call with the same weight tensor (see `PackedWeightsCache`).
public final class PackedConvWeights: @unchecked Sendable {
    /// Which kernel a packing is for.
    enum Form: Sendable {
        /// The implicit GEMM (`ck_conv`): MR-row panels of W per depth block.
        case gemm
        /// Winograd's F(2×2, 3×3) (`ck_winograd`): the 16 transformed filter matrices.
        case winograd
        /// Winograd's F(4×4, 3×3) (`ck_winograd`): the 36 transformed filter matrices.
        case winograd4
        /// Output channels along the vector (`ck_conv1x1_channels`, `ck_conv_channels`): Wᵀ in
        /// 32-channel panels.
        case channelPanels
    }

    /// The kernel level (`KernelOptions.level`) the packing is for.
    let level: Int32
    let form: Form
    /// The weights it was packed from: kept alive, so that the storage address identifies them.
    let source: [Float]
    let groupStride: Int
    let storage: UnsafeMutablePointer<Float>

    /// - Parameter w: (M,C/group,kh,kw)
    init?(w: Tensor, group: Int, level: Int32, form: Form = .gemm) {
        let m = w.shape[0] / group, k = w.count / w.shape[0]
        switch form {
        case .winograd, .winograd4:
            // (M,C,3,3), one group, AVX-512 or AVX2.
            guard group == 1, level >= 1, w.rank == 4, w.shape[2] == 3, w.shape[3] == 3 else { return nil }
            let c = w.shape[1], tile: Int32 = form == .winograd4 ? 4 : 2
            let count = ck_winograd_weights_count(level, tile, Int32(m), Int32(c))
            let storage = PackedConvWeights.allocate(count)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Int((tile + 2) * (tile + 2)) * m * c)
            defer { scratch.deallocate() }
            w.data.withUnsafeBufferPointer { wp in
                ck_winograd_pack_weights(level, tile, Int32(m), Int32(c), wp.baseAddress!, storage, scratch)
            }
            self.storage = storage
            self.groupStride = count
        case .channelPanels:
            // One group, AVX-512 or AVX2 (32-channel panels on both).
            guard group == 1, level >= 1 else { return nil }
            let count = ck_channel_panels_count(Int32(m), Int32(k))
            let storage = PackedConvWeights.allocate(count)
            w.data.withUnsafeBufferPointer { wp in ck_pack_channel_panels(Int32(m), Int32(k), wp.baseAddress!, storage) }
            self.storage = storage
            self.groupStride = count
        case .gemm:
            let per = ck_packed_weights_count(level, Int32(m), Int32(k))
            guard per > 0 else { return nil }
            let storage = PackedConvWeights.allocate(per * group)
            w.data.withUnsafeBufferPointer { wp in
                for gi in 0..<group {
                    ck_pack_weights(level, Int32(m), Int32(k), wp.baseAddress! + gi * m * k, storage + gi * per)
                }
            }
            self.groupStride = per
            self.storage = storage
        }
        self.level = level
        self.form = form
        self.source = w.data
    }

    deinit { UnsafeMutableRawPointer(storage).deallocate() }

    /// Room for `count` floats starting on a cache line: the kernels load the packed weights 16
    /// at a time, and a load across two lines costs two (the allocator's storage started 32
    /// bytes into a line).
    static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: Swift.max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }

    /// Whether this packing was made from exactly `w`'s storage for `level` and `form`.
    func matches(_ w: Tensor, level: Int32, form: Form) -> Bool {
        level == self.level && form == self.form && Self.sameStorage(source, w.data)
    }

    /// Whether two arrays share one buffer (not merely equal elements).
    static func sameStorage(_ a: [Float], _ b: [Float]) -> Bool {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in pa.baseAddress == pb.baseAddress && pa.count == pb.count } }
    }
}

/// The weight-derived data one convolution operator keeps between calls (an operator holds
/// one): packings of its weight tensors for the GEMM kernel, and tensors derived from its weights
/// (the flipped transpose the backward pass convolves with, LRP's W⁺ and W⁻). The weights of a
/// loaded model never change, so each is made on the first call only. An entry is found by the
/// identity of the weight storage it came from (kept alive by the entry, so never reused for
/// other data); a changed tensor has new storage (copy on write) and gets a new entry. At most
/// `capacity` packings and twice as many derived tensors are kept, oldest dropped first.
/// Thread-safe.
public final class PackedWeightsCache: @unchecked Sendable {
    private let lock = NSLock()
    private var packings: [PackedConvWeights] = []
    private var derivedTensors: [(kind: String, source: [Float], value: Tensor)] = []
    let capacity = 8

    public init() {}

    func packing(_ w: Tensor, group: Int, level: Int32, form: PackedConvWeights.Form = .gemm) -> PackedConvWeights? {
        lock.lock()
        defer { lock.unlock() }
        if let p = packings.first(where: { $0.matches(w, level: level, form: form) }) { return p }
        guard let p = PackedConvWeights(w: w, group: group, level: level, form: form) else { return nil }
        if packings.count >= capacity { packings.removeFirst() }
        packings.append(p)
        return p
    }

    /// The forms of the packings held, oldest first (for tests).
    var forms: [PackedConvWeights.Form] {
        lock.lock()
        defer { lock.unlock() }
        return packings.map(\.form)
    }

    /// `make(w)`, computed once per weight tensor and `kind` ("transposed", "lrp:positive", ...).
    public func derived(_ kind: String, from w: Tensor, _ make: (Tensor) -> Tensor) -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        if let d = derivedTensors.first(where: { $0.kind == kind && PackedConvWeights.sameStorage($0.source, w.data) }) {
            return d.value
        }
        let value = make(w)
        if derivedTensors.count >= 2 * capacity { derivedTensors.removeFirst() }
        derivedTensors.append((kind, w.data, value))
        return value
    }
}
