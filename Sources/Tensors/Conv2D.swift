import CKernels
import Dispatch
import Foundation

/// 2-D convolution (cross-correlation, as ONNX `Conv` and PyTorch `conv2d`).
///
/// Two kernels: `referenceForward`, the clear one (one `im2col` per image and group, one GEMM),
/// and `forward`, which on CPUs with AVX2 or AVX-512 runs the implicit GEMM of CKernels
/// (weights packed once, im2col panels packed straight from the image, bias and activation in
/// the kernel's store) or a direct depthwise loop, spread over `BLAS.threadCount` threads.
/// The fast kernels are tested against the reference.
public struct Conv2DGeometry: Sendable, Equatable {
    public var kernel: (h: Int, w: Int)
    public var strides: (h: Int, w: Int)
    /// Zero padding: top, left, bottom, right.
    public var pads: (top: Int, left: Int, bottom: Int, right: Int)
    public var dilations: (h: Int, w: Int)
    public var group: Int

    public init(kernel: (Int, Int), strides: (Int, Int) = (1, 1),
                pads: (Int, Int, Int, Int) = (0, 0, 0, 0),
                dilations: (Int, Int) = (1, 1), group: Int = 1) {
        self.kernel = (kernel.0, kernel.1)
        self.strides = (strides.0, strides.1)
        self.pads = (pads.0, pads.1, pads.2, pads.3)
        self.dilations = (dilations.0, dilations.1)
        self.group = group
    }

    /// This geometry as the C kernels take it, for an input of `channels` × `h` × `w` (one group)
    /// and an output of `oh` × `ow`.
    func kernelGeometry(channels: Int, h: Int, w: Int, oh: Int, ow: Int) -> ck_conv_geometry {
        ck_conv_geometry(c: Int32(channels), h: Int32(h), w: Int32(w), kh: Int32(kernel.h), kw: Int32(kernel.w),
                         sh: Int32(strides.h), sw: Int32(strides.w), pt: Int32(pads.top), pl: Int32(pads.left),
                         dh: Int32(dilations.h), dw: Int32(dilations.w), oh: Int32(oh), ow: Int32(ow))
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.kernel == b.kernel && a.strides == b.strides && a.pads == b.pads
            && a.dilations == b.dilations && a.group == b.group
    }

    /// Output spatial size for an input of `h`×`w`.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int) {
        let eh = dilations.h * (kernel.h - 1) + 1
        let ew = dilations.w * (kernel.w - 1) + 1
        return ((h + pads.top + pads.bottom - eh) / strides.h + 1,
                (w + pads.left + pads.right - ew) / strides.w + 1)
    }
}

/// An activation applied to a convolution's output as it is stored (ReLU and clip fused at load
/// time, SiLU by inference passes).
public enum ConvActivation: Sendable, Equatable {
    case relu
    case clip(Float, Float)
    /// v · sigmoid(v) (SiLU, EfficientNet's Swish): fused by inference passes only
    /// (`SiLUFusion`), since its backward needs the value before it.
    case silu

    /// Applies the activation to every element (the reference path; `level` the C kernels'
    /// for SiLU). NaN becomes 0 under ReLU.
    func apply(_ y: inout Tensor, level: Int32) {
        y.data.withUnsafeMutableBufferPointer { p in
            switch self {
            case .relu: for i in p.indices where !(p[i] > 0) { p[i] = 0 }
            case .clip(let lo, let hi): for i in p.indices { p[i] = Swift.min(hi, Swift.max(lo, p[i])) }
            case .silu: ck_silu(level, p.baseAddress, p.baseAddress, p.count)
            }
        }
    }

    var code: (act: Int32, lo: Float, hi: Float) {
        switch self {
        case .relu: return (Int32(CK_ACT_RELU), 0, 0)
        case .clip(let lo, let hi): return (Int32(CK_ACT_CLIP), lo, hi)
        case .silu: return (Int32(CK_ACT_SILU), 0, 0)
        }
    }
}


public enum Conv2D {
    /// y = act(conv(x, w) + b), by the fastest kernel this CPU has.
    ///
    /// - Parameters:
    ///   - x: (N,C,H,W)
    ///   - w: (M,C/group,kh,kw)
    ///   - b: (M) or nil
    ///   - activation: applied to the output (fused into the store on the fast path)
    ///   - cache: where to keep the packed weights between calls (nil: pack for this call only)
    ///   - residual: (N,M,OH,OW) or nil: added before the activation, y = act(conv(x, w) + b + residual)
    ///     (a residual connection fused into the store: its buffer becomes y's when nothing else
    ///     holds it, and the separate Add and ReLU passes over memory disappear)
    ///   - inference: no pass decides anything on y's exact values (an inference pass's
    ///     activations, an input gradient), so Winograd may take its F(4×4, 3×3) tile
    ///     (`winogradTile`)
    ///   - kernels: the path and variants to run (the reference kernel on the OpenBLAS path)
    /// - Returns: y: (N,M,OH,OW)
    public static func forward(x: Tensor, w: Tensor, b: Tensor?, geometry g: Conv2DGeometry,
                               activation: ConvActivation? = nil, cache: PackedWeightsCache? = nil,
                               residual: consuming Tensor? = nil, inference: Bool = false,
                               kernels: KernelOptions) throws -> Tensor {
        let (n, c, h, wd, m, cg, oh, ow) = try checkedShapes(x: x, w: w, geometry: g)
        if let r = residual, r.shape != [n, m, oh, ow] {
            throw TensorError("Conv: residual of shape \(r.shape) does not match the output [\(n), \(m), \(oh), \(ow)]")
        }
        let level = kernels.level
        let mg = m / g.group, plane = oh * ow
        let depthwise = cg == 1 && mg == 1
        guard level > 0, residual == nil || !depthwise else {
            // The reference, and the depthwise kernel (which has no residual store): add, then activate.
            var y = try level > 0 ? forward(x: x, w: w, b: b, geometry: g, cache: cache, inference: inference, kernels: kernels)
                                  : referenceForward(x: x, w: w, b: b, geometry: g, kernels: kernels)
            if let r = residual { y = Elementwise.add(y, r) }
            activation?.apply(&y, level: level)
            return y
        }
        let geometry = g.kernelGeometry(channels: cg, h: h, w: wd, oh: oh, ow: ow)
        let (act, lo, hi) = activation?.code ?? (Int32(CK_ACT_NONE), 0, 0)
        let adding = residual != nil
        var y = residual.take() ?? Tensor(uninitializedShape: [n, m, oh, ow])
        let winograd = kernels.winograd && level >= 1 && winogradShaped(g, channels: c) && n * winogradTiles(oh: oh, ow: ow, tile: 2) >= 16
            && n * c * h * wd < Int(Int32.max) && n * m * plane < Int(Int32.max)
        let tile = winograd ? winogradTile(n: n, oh: oh, ow: ow, kernels: kernels, inference: inference) : 2
        let tiles = winogradTiles(oh: oh, ow: ow, tile: tile)
        // Small planes of a 1×1 convolution do not fill a vector of pixels, and a stem's im2col
        // panels are costly to pack: those run with output channels along the vector (`channelMajor`).
        let channels = !winograd && !depthwise && channelMajor(g, channels: c, plane: plane, kernels: kernels)
        let form: PackedConvWeights.Form = winograd ? (tile == 4 ? .winograd4 : .winograd) : channels ? .channelPanels : .gemm
        let packed = depthwise ? nil : (cache?.packing(w, group: g.group, level: level, form: form)
                                        ?? PackedConvWeights(w: w, group: g.group, level: level, form: form))
        if !depthwise && packed == nil { throw TensorError("Conv: could not pack weights \(w.shape)") }
        // One thread for small convolutions, and inside another parallel region (a chunk of
        // `Model.forward`'s batch), where the parts would only run one after the other. A
        // depthwise layer does little arithmetic per byte it reads, so it splits from 2^16
        // multiply-adds (tools/bench/README.md, "Figures behind the kernels").
        let flops = n * m * plane * cg * g.kernel.h * g.kernel.w
        let threads = flops < (depthwise ? 1 << 16 : 1 << 18) || Parallel.isNested ? 1 : BLAS.threadCount
        let biasData = b?.data ?? []
        // One status slot per task: a kernel that could not get its scratch memory says so, and the
        // convolution then runs on the reference kernel (or fails, with a fused residual: below).
        var failed = false
        x.data.withUnsafeBufferPointer { xp in
            w.data.withUnsafeBufferPointer { wp in
                biasData.withUnsafeBufferPointer { bp in
                    y.data.withUnsafeMutableBufferPointer { yp in
                        let ptrs = ConvPointers(x: xp.baseAddress!, w: wp.baseAddress!, y: yp.baseAddress!,
                                                bias: b == nil ? nil : bp.baseAddress, geometry: geometry)
                        failed = run(ptrs, depthwise: depthwise, packed: packed, threads: threads, adding: adding,
                                     n: n, c: c, h: h, wd: wd, m: m, mg: mg, cg: cg, plane: plane, tiles: tiles,
                                     level: level, rowBandsFrom: kernels.rowBandsFrom ?? Int.max, g: g, act: act, lo: lo, hi: hi)
                    }
                }
            }
        }
        if failed {
            // A task without its scratch memory wrote nothing, but other tasks may have written
            // their parts of y. Without a residual the reference recomputes all of y. With one,
            // y no longer holds the residual everywhere, so the call fails (out of memory)
            // rather than add the residual twice where a task succeeded.
            if adding { throw TensorError("Conv: a kernel could not get its scratch memory (out of memory) with a fused residual") }
            var reference = try referenceForward(x: x, w: w, b: b, geometry: g, kernels: kernels)
            activation?.apply(&reference, level: level)
            return reference
        }
        return y
    }

    /// Splits one convolution into tasks on `threads` threads and runs the chosen kernel on each;
    /// returns whether any task failed (a kernel without scratch memory).
    private static func run(_ ptrs: ConvPointers, depthwise: Bool, packed: PackedConvWeights?, threads: Int, adding: Bool,
                            n: Int, c: Int, h: Int, wd: Int, m: Int, mg: Int, cg: Int, plane: Int, tiles: Int,
                            level: Int32, rowBandsFrom: Int, g: Conv2DGeometry, act: Int32, lo: Float, hi: Float) -> Bool {
        if depthwise && n == 1 && threads > 1 && Int(ptrs.geometry.oh) >= rowBandsFrom {
            // Each thread a band of output rows (`rowBand`), its channels in runs.
            let pieces = piecesOfShare(repeatingPreparation: false, parts: threads)
            let oh = Int(ptrs.geometry.oh)
            Parallel.shares(threads, pieces: pieces) { part, piece in
                let rows = rowBand(part, of: threads, rows: oh)
                let channels = Parallel.items(ofPiece: piece, of: pieces, part: 0, of: 1, items: m)
                let (c0, c1) = (channels.lowerBound, channels.upperBound)
                guard c0 < c1 else { return }
                var gp = ptrs.geometry
                ck_depthwise_rows(level, &gp, ptrs.x + c0 * h * wd, h * wd, ptrs.w + c0 * g.kernel.h * g.kernel.w,
                                  ptrs.bias.map { $0 + c0 }, Int32(c1 - c0), Int32(rows.lowerBound), Int32(rows.upperBound),
                                  act, lo, hi, ptrs.y + c0 * plane)
            }
            return false
        }
        if depthwise && n == 1 {
            // Each thread its share of the channels (`share`, one channel a block), in runs
            // (`Parallel.shares`).
            let pieces = piecesOfShare(repeatingPreparation: false, parts: threads)
            Parallel.shares(threads, pieces: pieces) { part, piece in
                guard let (channels, _) = share(part, of: threads, blocks: m, cross: 1).piece(piece, of: pieces) else { return }
                let (c0, c1) = (channels.lowerBound, channels.upperBound)
                var gp = ptrs.geometry
                ck_depthwise(level, &gp, ptrs.x + c0 * h * wd, ptrs.w + c0 * g.kernel.h * g.kernel.w,
                             ptrs.bias.map { $0 + c0 }, Int32(c1 - c0), act, lo, hi, ptrs.y + c0 * plane)
            }
            return false
        }
        if depthwise {
            // Tasks: blocks of channels of one image, two per thread.
            let blocks = Swift.max(1, Swift.min(m, 2 * threads / Swift.max(1, Swift.min(n, 2 * threads))))
            Parallel.run(threads, items: n * blocks) { task in
                let (i, block) = (task / blocks, task % blocks)
                let (c0, c1) = (m * block / blocks, m * (block + 1) / blocks)
                guard c0 < c1 else { return }
                var gp = ptrs.geometry
                ck_depthwise(level, &gp, ptrs.x + (i * m + c0) * h * wd, ptrs.w + c0 * g.kernel.h * g.kernel.w,
                             ptrs.bias.map { $0 + c0 }, Int32(c1 - c0), act, lo, hi, ptrs.y + (i * m + c0) * plane)
            }
            return false
        }
        guard let packed else { return true }
        let status = StatusSlots(count: Swift.max(threads, n * g.group * threads))
        defer { status.deallocate() }
        if packed.form == .channelPanels && !isPointwise(g) {
            // Each image split by bands of output rows.
            let oh = Int(ptrs.geometry.oh)
            let splits = n % threads == 0 ? 1 : Swift.min(threads, oh)
            if n == 1 && splits > 1 {
                // One image: each thread its band in runs of rows (`Parallel.shares`), the first
                // done takes the other's last runs (with fixed halves, MobileNetV2's stem waited
                // 16 % of its time for the slower thread).
                let pieces = piecesOfShare(repeatingPreparation: false, parts: splits)
                Parallel.shares(splits, pieces: pieces) { part, piece in
                    let rows = Parallel.items(ofPiece: piece, of: pieces, part: part, of: splits, items: oh)
                    let (r0, r1) = (rows.lowerBound, rows.upperBound)
                    guard r0 < r1 else { return }
                    var gp = ptrs.geometry
                    status.slots[part] |= ck_conv_channels(level, packed.storage, Int32(m), 0, Int32(m), &gp, ptrs.x,
                                                           Int32(r0), Int32(r1), ptrs.bias, adding ? 1 : 0, act, lo, hi, ptrs.y)
                }
                return status.anyFailed
            }
            Parallel.run(threads, items: n * splits) { task in
                let (i, part) = (task / splits, task % splits)
                let (r0, r1) = (oh * part / splits, oh * (part + 1) / splits)
                guard r0 < r1 else { return }
                var gp = ptrs.geometry
                status.slots[task] = ck_conv_channels(level, packed.storage, Int32(m), 0, Int32(m), &gp, ptrs.x + i * c * h * wd,
                                                      Int32(r0), Int32(r1), ptrs.bias, adding ? 1 : 0, act, lo, hi, ptrs.y + i * m * plane)
            }
            return status.anyFailed
        }
        if packed.form == .channelPanels {
            // Each image split by 8-pixel tiles or by 32-channel panels (`splitsPixels`), the
            // tiles left over shared out by the other axis (`share`).
            let splits = n % threads == 0 ? 1 : threads
            let (panels, pixelTiles) = ((m + 31) / 32, (plane + 7) / 8)
            let byPixels = splitsPixels(pixelTiles: busiest(blocks: pixelTiles, cross: panels, parts: splits),
                                        channelTiles: busiest(blocks: panels, cross: pixelTiles, parts: splits), reduces: projects(m: m, c: c, plane: plane), onTies: false)
            let (blocks, cross) = byPixels ? (pixelTiles, panels) : (panels, pixelTiles)
            @Sendable func call(_ i: Int, _ tiles: (blocks: Range<Int>, cross: Range<Int>), _ slot: Int) {
                let (pixels, channels) = byPixels ? (tiles.blocks, tiles.cross) : (tiles.cross, tiles.blocks)
                let (c0, c1) = (channels.lowerBound * 32, Swift.min(m, channels.upperBound * 32))
                let (p0, p1) = (pixels.lowerBound * 8, Swift.min(plane, pixels.upperBound * 8))
                status.slots[slot] |= ck_conv1x1_channels(level, packed.storage, Int32(m), Int32(c), Int32(c0), Int32(c1),
                                                          ptrs.x + i * c * plane, Int32(plane), Int32(p0), Int32(p1), ptrs.bias,
                                                          adding ? 1 : 0, act, lo, hi, ptrs.y + i * m * plane)
            }
            runShares(units: n, splits: splits, threads: threads, blocks: blocks, cross: cross,
                      pieces: piecesOfShare(repeatingPreparation: false, parts: splits), call)
            return status.anyFailed
        }
        if packed.form == .winograd || packed.form == .winograd4 {
            // The batch's tiles in one range, split across the threads in blocks of 32 when there are
            // enough (the blocks left over split by output channels, `share`), else by output channels
            // (every thread then transforms every tile). F(4×4) has a quarter the tiles, so a block
            // for each thread is enough: resnet18's 28 × 28 plane (49 tiles) splits by tiles.
            let total = n * tiles, tile: Int32 = packed.form == .winograd4 ? 4 : 2
            let (tBlocks, rTiles) = ((total + 31) / 32, (m + 7) / 8)
            let byTiles = packed.form == .winograd4 ? tBlocks >= threads : total >= 64 * threads
            let pieces = piecesOfShare(repeatingPreparation: !byTiles, parts: threads)
            Parallel.shares(threads, pieces: pieces) { part, piece in
                guard let (blocks, cross) = share(part, of: threads, blocks: byTiles ? tBlocks : rTiles,
                                                  cross: byTiles ? rTiles : 1).piece(piece, of: pieces) else { return }
                let (tileBlocks, rows) = byTiles ? (blocks, cross) : (0..<tBlocks, blocks)
                let (t0, t1) = (tileBlocks.lowerBound * 32, Swift.min(total, tileBlocks.upperBound * 32))
                let (r0, r1) = (rows.lowerBound * 8, Swift.min(m, rows.upperBound * 8))
                var gp = ptrs.geometry
                status.slots[part] |= ck_winograd(level, tile, packed.storage, Int32(m), Int32(r0), Int32(r1), &gp, ptrs.x,
                                                  Int32(n), Int32(t0), Int32(t1), ptrs.bias, adding ? 1 : 0, act, lo, hi, ptrs.y)
            }
            return status.anyFailed
        }
        // Tasks: whole (image, group) units when the threads can share them evenly; otherwise each
        // unit split in parts, by columns (pixels) when the plane is wide, else by rows (output
        // channels, at tile-height multiples). A 1×1 convolution reads its input in place (no
        // packing to repeat per part), so it weighs the two splits by the micro-tiles of the
        // busiest thread (`splitsPixels`). Blocks left over after an even split are shared out
        // by the other axis (`share`): a 14×14 plane is 7 column panels, 3 on each thread and
        // half the rows of the seventh.
        let units = n * g.group
        let tileRows = Int(ck_tile_rows(level))
        let splits = units % threads == 0 ? 1 : threads
        let (panels, rowTiles) = ((plane + 31) / 32, (mg + tileRows - 1) / tileRows)
        let byColumns = isPointwise(g)
            ? splitsPixels(pixelTiles: busiest(blocks: panels, cross: rowTiles, parts: splits),
                           channelTiles: busiest(blocks: rowTiles, cross: panels, parts: splits), reduces: projects(m: mg, c: cg, plane: plane), onTies: true)
            : plane >= 64 * splits
        let (blocks, cross) = byColumns ? (panels, rowTiles) : (rowTiles, panels)
        @Sendable func call(_ unit: Int, _ tiles: (blocks: Range<Int>, cross: Range<Int>), _ slot: Int) {
            let (i, gi) = (unit / g.group, unit % g.group)
            let (columns, rows) = byColumns ? (tiles.blocks, tiles.cross) : (tiles.cross, tiles.blocks)
            // Column ranges aligned to 32 so that only the last tile of an image is partial.
            let (c0, c1) = (columns.lowerBound * 32, Swift.min(plane, columns.upperBound * 32))
            let (r0, r1) = (rows.lowerBound * tileRows, Swift.min(mg, rows.upperBound * tileRows))
            var gp = ptrs.geometry
            status.slots[slot] |= ck_conv(level, packed.storage + gi * packed.groupStride, Int32(mg), Int32(r0), Int32(r1), &gp,
                                          ptrs.x + (i * c + gi * cg) * h * wd, Int32(c0), Int32(c1), ptrs.bias.map { $0 + gi * mg },
                                          adding ? 1 : 0, act, lo, hi, ptrs.y + (i * m + gi * mg) * plane, Int32(plane))
        }
        runShares(units: units, splits: splits, threads: threads, blocks: blocks, cross: cross,
                  pieces: piecesOfShare(repeatingPreparation: !byColumns && !isPointwise(g), parts: splits), call)
        return status.anyFailed
    }

    /// Runs call(unit, tiles, slot) over `units` (image, group) units, each split in `splits`
    /// parts of a `blocks` × `cross` grid by `share`. One unit goes on `Parallel.shares`, each
    /// part in `pieces` runs (slot = part); several go on `Parallel.run`, a task per unit and
    /// part with its whole share (slot = task).
    private static func runShares(units: Int, splits: Int, threads: Int, blocks: Int, cross: Int, pieces: Int,
                                  _ call: @Sendable (Int, (blocks: Range<Int>, cross: Range<Int>), Int) -> Void) {
        if units == 1 {
            Parallel.shares(splits, pieces: pieces) { part, piece in
                if let tiles = share(part, of: splits, blocks: blocks, cross: cross).piece(piece, of: pieces) { call(0, tiles, part) }
            }
        } else {
            Parallel.run(threads, items: units * splits) { task in
                for tiles in share(task % splits, of: splits, blocks: blocks, cross: cross).all { call(task / splits, tiles, task) }
            }
        }
    }

    /// Runs of work per thread in a batch-1 convolution (`Parallel.shares`): each thread's share
    /// is cut into runs, and a thread done with its own takes the other's last runs. On this VM
    /// the host sometimes deschedules one vCPU for milliseconds; with each layer split in two
    /// halves, the other thread waited that long, where it now finishes the stalled thread's runs.
    ///
    /// Four runs: three of whole blocks, then the blocks left over. Two (the share, then the
    /// rest) where each run would prepare the whole input again: Winograd split by output
    /// channels transforms every tile in each run, and the implicit GEMM split by output
    /// channels packs every column panel in each (resnet18's 14 × 14 and 7 × 7 layers: 1.03
    /// slower with four). The 1×1 kernels read their input in place and the depthwise kernel
    /// splits channels, so they take four either way (MobileNetV2: 0.93 against two). A single
    /// part is one run (and the empty rest).
    static func piecesOfShare(repeatingPreparation: Bool, parts: Int) -> Int { repeatingPreparation || parts == 1 ? 2 : 4 }

    /// One thread's share of a grid of micro-tiles split along its blocks: whole blocks across
    /// the other axis (`cross`), then a slice of `cross` in the blocks an even split leaves over.
    struct Share {
        var whole: (blocks: Range<Int>, cross: Range<Int>)?
        var rest: (blocks: Range<Int>, cross: Range<Int>)?

        /// Both, as non-empty ranges.
        var all: [(blocks: Range<Int>, cross: Range<Int>)] { [whole, rest].compactMap { $0 } }

        /// Run k of `pieces` (≥ 2): the whole blocks cut into pieces − 1 runs, then the rest;
        /// nil for an empty one.
        func piece(_ k: Int, of pieces: Int) -> (blocks: Range<Int>, cross: Range<Int>)? {
            // (With one piece, that piece would be the rest alone and the whole blocks never run.)
            precondition(pieces >= 2, "a share is cut into at least two runs")
            if k == pieces - 1 { return rest }
            guard let whole else { return nil }
            let (b, runs) = (whole.blocks, pieces - 1)
            let r = (b.lowerBound + b.count * k / runs)..<(b.lowerBound + b.count * (k + 1) / runs)
            return r.isEmpty ? nil : (r, whole.cross)
        }
    }

    /// Part `part` of `parts` of a grid of `blocks` × `cross` micro-tiles, the work split along
    /// `blocks`: whole blocks [part·q, (part+1)·q) across all of `cross` (q = blocks / parts),
    /// then its slice of `cross` in each of the blocks left over.
    ///
    /// Splitting whole blocks only, resnet18's 28 × 28 Winograd layers (7 blocks of 32 tiles)
    /// went 4 blocks to one thread and 3 to the other, and the other thread waited a quarter of
    /// the layer for it; here each takes 3 blocks and half the output channels of the seventh.
    /// (Every output is still one kernel call's sum: the split changes no bit.)
    static func share(_ part: Int, of parts: Int, blocks: Int, cross: Int) -> Share {
        let q = blocks / parts
        let slice = cross * part / parts..<cross * (part + 1) / parts
        return Share(whole: q > 0 && cross > 0 ? (part * q..<(part + 1) * q, 0..<cross) : nil,
                     rest: blocks > q * parts && !slice.isEmpty ? (q * parts..<blocks, slice) : nil)
    }

    /// Micro-tiles of the busiest part under `share`.
    static func busiest(blocks: Int, cross: Int, parts: Int) -> Int {
        blocks / parts * cross + (blocks % parts) * ((cross + parts - 1) / parts)
    }

    /// Zero-initialized status codes of a kernel's parallel tasks (each task writes its own slot).
    final class StatusSlots: @unchecked Sendable {
        let slots: UnsafeMutablePointer<Int32>
        let count: Int
        init(count: Int) {
            self.count = count
            slots = .allocate(capacity: count)
            slots.initialize(repeating: 0, count: count)
        }
        var anyFailed: Bool { (0..<count).contains { slots[$0] != 0 } }
        func deallocate() { slots.deallocate() }
    }

    /// Whether the parts of a 1×1 convolution split its pixels rather than its output channels,
    /// given the micro-tiles the busiest thread gets either way.
    ///
    /// Split by output channels, every thread reads the whole input; split by pixels, each reads
    /// its share. That counts when the input is the larger side, in a projection to fewer
    /// channels (MobileNetV2's): the depthwise layer before it is split by channels, so half of
    /// the input was just written by the other core, and fetching it from there costs as much as
    /// the arithmetic (tools/bench/README.md, "Figures behind the kernels"). So a projection
    /// (`reduces`, see `projects`) splits pixels unless that gives the busiest thread more
    /// than 20 % more tiles; any other takes the split with fewer tiles, `onTies` deciding ties.
    /// (The split never changes a sum: each output adds the same products in the same order.)
    static func splitsPixels(pixelTiles: Int, channelTiles: Int, reduces: Bool, onTies: Bool) -> Bool {
        if reduces { return pixelTiles * 5 <= channelTiles * 6 }
        return pixelTiles < channelTiles || (onTies && pixelTiles == channelTiles)
    }

    /// Whether a 1×1 convolution of C → M channels on a plane of P pixels is a projection that
    /// `splitsPixels` should favour splitting by pixels: fewer output channels than input
    /// ones, and weights (M·C floats) under 1.5 times the input (C·P). Split by pixels, each
    /// thread reads all the weights and half the input (a quarter from the other core); by
    /// channels, half the weights and all the input (half from the other core). MobileNetV2's
    /// 7 × 7 projections (960 → 160: 614 KB of weights, 188 KB of input) read the weights
    /// twice split by pixels, so they split by channels.
    static func projects(m: Int, c: Int, plane: Int) -> Bool {
        c > m && 2 * m < 3 * plane
    }

    /// Tests only: while `on`, every kernel's scratch allocation fails (`ck_fail_scratch_for_tests`).
    static func failScratchForTests(_ on: Bool) { ck_fail_scratch_for_tests(on ? 1 : 0) }

    /// The conditions for Winograd that do not depend on the input's size: a 3×3 kernel at stride
    /// and dilation 1, one group, at least 16 input channels. (`forward` also needs 16 tiles in
    /// the batch and a path that runs Winograd.)
    public static func winogradShaped(_ g: Conv2DGeometry, channels c: Int) -> Bool {
        g.group == 1 && g.kernel == (3, 3) && g.strides == (1, 1) && g.dilations == (1, 1) && c >= 16
    }

    /// Output tiles of `tile` × `tile` pixels on an oh × ow plane.
    static func winogradTiles(oh: Int, ow: Int, tile: Int) -> Int {
        ((oh + tile - 1) / tile) * ((ow + tile - 1) / tile)
    }

    /// Winograd's output tile for a batch of n images with oh × ow outputs: the forced one
    /// (`--kernel-set winograd-tile=`); F(2×2, 3×3) for the activations of a pass a gradient
    /// pass reads (not `inference`); else the one with fewer products in the transformed domain,
    /// counting the idle lanes of the last panel (16 tiles on AVX2, 32 on AVX-512): F(4×4, 3×3)
    /// takes 36 per tile, F(2×2, 3×3) 16 per tile of a quarter the pixels. resnet18's 56², 28²
    /// and 14² planes take F(4×4, 3×3); one 7 × 7 plane (4 tiles of 4 × 4, 16 of 2 × 2) takes
    /// F(2×2, 3×3).
    ///
    /// Why not for a gradient pass's activations: F(4×4)'s rounding (entries up to 8 in its
    /// transforms) turns a constant plane, such as every layer sees at a zero baseline, into one
    /// that varies in its last bits, which breaks the exact ties of max pooling there, and the
    /// gradient then takes another element of the window than the reference libraries do
    /// (docs/engine.md). A convolution whose output no such operator depends on runs as in an
    /// inference pass even there (`Model.selectionFree`). The backward's own convolutions
    /// (`backwardInput`) decide nothing: ReLU masks and max-pooling winners come from the
    /// forward's activations, so an input gradient moves by F(4×4)'s rounding only, and takes
    /// the tile with fewer products.
    static func winogradTile(n: Int, oh: Int, ow: Int, kernels: KernelOptions, inference: Bool) -> Int {
        if let forced = kernels.winogradTile { return forced }
        guard inference else { return 2 }
        let lanes = kernels.level == 2 ? 32 : 16
        func products(_ tile: Int) -> Int {
            let tiles = n * winogradTiles(oh: oh, ow: ow, tile: tile)
            return (tile + 2) * (tile + 2) * ((tiles + lanes - 1) / lanes) * lanes
        }
        return products(4) < products(2) ? 4 : 2
    }

    /// The extents of a convolution, after checking that the weights fit the input and that the
    /// output is not empty: x (N,C,H,W), w (M,C/group,kh,kw) -> (N, C, H, W, M, C/group, OH, OW).
    static func checkedShapes(x: Tensor, w: Tensor, geometry g: Conv2DGeometry) throws
        -> (n: Int, c: Int, h: Int, w: Int, m: Int, cg: Int, oh: Int, ow: Int) {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let m = w.shape[0], cg = w.shape[1]
        guard c == cg * g.group, m % g.group == 0 else {
            throw TensorError("Conv: input has \(c) channels but weight \(w.shape) with group \(g.group) expects \(cg * g.group)")
        }
        let (oh, ow) = g.outputSize(h: h, w: wd)
        guard oh > 0, ow > 0 else { throw TensorError("Conv: output would be empty for input \(x.shape)") }
        return (n, c, h, wd, m, cg, oh, ow)
    }

    /// The buffers of one convolution, shared by the threads that split it (disjoint writes).
    private struct ConvPointers: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let w: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
        let bias: UnsafePointer<Float>?
        let geometry: ck_conv_geometry
    }

    /// Whether a convolution of `channels` input channels (one group) with an output plane of
    /// `plane` pixels runs with output channels along the vector (`ck_conv1x1_channels`,
    /// `ck_conv_channels`): a tile of 8 output pixels by 32 channels (AVX-512) or 6 by 16 (AVX2),
    /// stored transposed.
    ///
    /// - AVX2: 1×1 on planes of at most 256 pixels with at least 16 channels. The implicit
    ///   GEMM's AVX2 tiles are 16 pixels wide and read the input in place as on AVX-512: on
    ///   14 × 14 planes the two kernels are level, on 7 × 7 (49 of 64 lanes) this one is faster,
    ///   on 28 × 28 and wider the GEMM (figures in tools/bench/README.md, "MobileNetV2 on the
    ///   AVX2 path").
    /// - AVX-512: 1×1 on planes of at most 256 pixels with at least 64 channels. The implicit GEMM's tiles
    ///   are 32 pixels wide: a 7×7 plane fills 49 of their 64 lanes, and 49 of 56 here. The
    ///   transposed store does not pay back on shallow layers.
    /// - Up to 4 input channels (an RGB stem), both paths: the implicit GEMM would pack a short,
    ///   very wide im2col matrix, here a zero-padded copy of the input rows is read in place
    ///   (figures in tools/bench/README.md, "Figures behind the kernels").
    static func channelMajor(_ g: Conv2DGeometry, channels: Int, plane: Int, kernels: KernelOptions) -> Bool {
        let level = kernels.level
        guard kernels.channelMajor, g.group == 1, level >= 1 else { return false }
        // (ck_conv_channels takes up to 1024 taps, 4 channels of a 16×16 kernel.)
        return isPointwise(g) ? plane <= 256 && channels >= (level == 1 ? 16 : 64) : channels <= 4 && channels * g.kernel.h * g.kernel.w <= 1024
    }

    /// 1×1 kernel, stride 1, no padding: the input plane already is the im2col matrix.
    static func isPointwise(_ g: Conv2DGeometry) -> Bool {
        g.kernel == (1, 1) && g.strides == (1, 1) && g.pads == (0, 0, 0, 0)
    }
}
