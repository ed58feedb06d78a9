import CKernels
import Foundation

extension Conv2D {
    /// A 1×1 expansion and the depthwise convolution after it (a MobileNet inverted-residual
    /// block's first two layers), computed a few channels at a time:
    /// y = dwAct(depthwise(act(pointwise(x, w) + b), dw) + dwBias).
    ///
    /// Layer after layer, the expansion writes a tensor six times as deep as its input (4.8 MB
    /// for MobileNetV2's 112 × 112 block) and the depthwise layer reads it back from memory.
    /// Here each task expands `pointwiseDepthwiseChunk` channels into its thread's scratch and
    /// filters them from there (`ck_pointwise_depthwise`); the wide tensor never exists whole,
    /// and the depthwise layer reads only what its own core wrote. The threads split channels,
    /// or on one image's tall planes bands of output rows (`KernelOptions.rowBandsFrom`), each band expanding
    /// the input rows its windows read. Every output is the same kernel call's sum as layer
    /// after layer: the same bits.
    ///
    /// On the OpenBLAS path, or for shapes it does not take, it runs the two layers.
    ///
    /// - Parameters:
    ///   - x: (N,C,H,W)
    ///   - w: (M,C,1,1), b: (M) or nil, geometry g: 1×1, stride 1, no padding, one group
    ///   - dw: (M,1,kh,kw), dwBias: (M) or nil, dwGeometry: group M
    /// - Returns: y: (N,M,OH,OW)
    public static func forwardPointwiseDepthwise(x: Tensor, w: Tensor, b: Tensor?, geometry g: Conv2DGeometry,
                                                 activation: ConvActivation?, cache: PackedWeightsCache?,
                                                 dw: Tensor, dwBias: Tensor?, dwGeometry dg: Conv2DGeometry,
                                                 dwActivation: ConvActivation?, kernels: KernelOptions) throws -> Tensor {
        let (n, c, h, wd, m, _, _, _) = try checkedShapes(x: x, w: w, geometry: g)
        // The two layers one after the other (the fallback).
        func layers() throws -> Tensor {
            let t = try forward(x: x, w: w, b: b, geometry: g, activation: activation, cache: cache, kernels: kernels)
            return try forward(x: t, w: dw, b: dwBias, geometry: dg, activation: dwActivation, kernels: kernels)
        }
        let level = kernels.level
        let takes = level >= 1 && isPointwise(g) && g.group == 1 && dg.group == m
            && dw.rank == 4 && dw.shape[0] == m && dw.shape[1] == 1 && dw.shape[2] == dg.kernel.h && dw.shape[3] == dg.kernel.w
            && (dwBias?.count ?? m) == m
        guard takes else { return try layers() }
        let (oh, ow) = dg.outputSize(h: h, w: wd)
        guard oh > 0, ow > 0 else { throw TensorError("Conv: output would be empty for input \([n, m, h, wd])") }
        let plane = h * wd
        let panels = channelMajor(g, channels: c, plane: plane, kernels: kernels)
        let form: PackedConvWeights.Form = panels ? .channelPanels : .gemm
        guard let packed = cache?.packing(w, group: 1, level: level, form: form)
                ?? PackedConvWeights(w: w, group: 1, level: level, form: form) else {
            throw TensorError("Conv: could not pack weights \(w.shape)")
        }
        // One thread for small layers (as `forward`), and inside another parallel region.
        let flops = n * m * (plane * c + oh * ow * dg.kernel.h * dg.kernel.w)
        let threads = flops < 1 << 18 || Parallel.isNested ? 1 : BLAS.threadCount
        // One image on several threads with tall planes: each thread a band of output rows of
        // every channel (`rowBand`), else each thread its channels over the whole plane.
        let bands = n == 1 && threads > 1 && oh >= kernels.rowBandsFrom ?? Int.max ? threads : 1
        let bandInputRows = Swift.min(h, (oh / bands) * dg.strides.h + dg.kernel.h)
        let chunk = pointwiseDepthwiseChunk(channels: m, plane: bandInputRows * wd, align: panels ? 32 : Int(ck_tile_rows(level)),
                                            tasksWanted: bands > 1 ? 4 : 4 * threads, images: bands > 1 ? 1 : n,
                                            parts: bands > 1 ? 1 : threads)
        let chunks = (m + chunk - 1) / chunk
        let pg = g.kernelGeometry(channels: c, h: h, w: wd, oh: h, ow: wd)
        let dgk = dg.kernelGeometry(channels: 1, h: h, w: wd, oh: oh, ow: ow)
        let (act, lo, hi) = activation?.code ?? (Int32(CK_ACT_NONE), 0, 0)
        let (dact, dlo, dhi) = dwActivation?.code ?? (Int32(CK_ACT_NONE), 0, 0)
        var y = Tensor(uninitializedShape: [n, m, oh, ow])
        let tasks = n * chunks * bands
        let status = StatusSlots(count: tasks)
        defer { status.deallocate() }
        let (bias, dwb) = (b?.data ?? [], dwBias?.data ?? [])
        x.data.withUnsafeBufferPointer { xp in
            dw.data.withUnsafeBufferPointer { dwp in
                bias.withUnsafeBufferPointer { bp in
                    dwb.withUnsafeBufferPointer { dbp in
                        y.data.withUnsafeMutableBufferPointer { yp in
                            let p = FusedPointers(x: xp.baseAddress!, dw: dwp.baseAddress!, y: yp.baseAddress!,
                                                  bias: b == nil ? nil : bp.baseAddress, dwBias: dwBias == nil ? nil : dbp.baseAddress,
                                                  packed: packed.storage)
                            // Tasks (image, band, chunk of channels): each thread takes a
                            // contiguous run of them in order (with bands, its band's chunks),
                            // and one done with its own takes the other's last tasks
                            // (`Parallel.shares`) rather than waiting for it.
                            let perPart = (tasks + threads - 1) / threads
                            Parallel.shares(threads, pieces: perPart) { part, piece in
                                let task = part * perPart + piece
                                guard task < tasks else { return }
                                let (i, band, k) = (task / (chunks * bands), task / chunks % bands, task % chunks)
                                let (c0, c1) = (k * chunk, Swift.min(m, (k + 1) * chunk))
                                let rows = rowBand(band, of: bands, rows: oh)
                                var (pgc, dgc) = (pg, dgk)
                                status.slots[task] = ck_pointwise_depthwise(
                                    level, panels ? 1 : 0, p.packed, Int32(m), Int32(c), Int32(c0), Int32(c1),
                                    Int32(rows.lowerBound), Int32(rows.upperBound), &pgc,
                                    p.x + i * c * plane, p.bias, act, lo, hi, &dgc, p.dw, p.dwBias, dact, dlo, dhi,
                                    p.y + i * m * oh * ow)
                            }
                        }
                    }
                }
            }
        }
        // A task without scratch memory (or kernel): the two layers, which overwrite all of y.
        if status.anyFailed { return try layers() }
        return y
    }

    /// Band `band` of `bands` of a plane's `rows` output rows: equal shares, each starting at a
    /// multiple of `CK_DEPTHWISE_BAND_MULTIPLE` (so that every output keeps its bits); the last
    /// ends at `rows`.
    static func rowBand(_ band: Int, of bands: Int, rows: Int) -> Range<Int> {
        let multiple = Int(CK_DEPTHWISE_BAND_MULTIPLE)
        func cut(_ i: Int) -> Int { i >= bands ? rows : rows * i / bands / multiple * multiple }
        return cut(band)..<cut(band + 1)
    }

    /// Channels per task of `forwardPointwiseDepthwise`: a multiple of `align` (the expansion
    /// kernel's tile of output channels), as many as keep a chunk of the expanded tensor within
    /// 8,192 floats (32 KB: it stays in L1/L2 until the depthwise kernel reads it), at least
    /// `align`, and small enough that there are `tasksWanted` tasks where the channels allow it
    /// (so two threads end together). Of those sizes down to `align`, the one that gives the
    /// busiest of `parts` threads the fewest channels: MobileNetV2's 960-channel 7 × 7 blocks cut
    /// in chunks of 128 made 7.5 tasks, 512 channels on one thread and 448 on the other; chunks
    /// of 96 make 10, 480 on each (figures in tools/bench/README.md, "Figures behind the
    /// kernels").
    static func pointwiseDepthwiseChunk(channels m: Int, plane: Int, align: Int, tasksWanted: Int,
                                        images: Int = 1, parts: Int = 1) -> Int {
        var chunk = Swift.max(align, 8192 / Swift.max(1, plane) / align * align)
        while chunk > align && (m + chunk - 1) / chunk < tasksWanted { chunk -= align }
        // Of the chunks from there down to `align`, the one whose busiest part has the fewest
        // channels (the largest of those that tie).
        var (best, least) = (chunk, Int.max)
        for c in stride(from: chunk, through: align, by: -align) {
            let load = busiestChannels(channels: m, chunk: c, images: images, parts: parts)
            if load < least { (best, least) = (c, load) }
        }
        return best
    }

    /// Channels of the busiest part when `images` × ⌈m / chunk⌉ tasks (image, chunk) are cut into
    /// `parts` contiguous runs of ⌈tasks / parts⌉, as `forwardPointwiseDepthwise` deals them.
    static func busiestChannels(channels m: Int, chunk: Int, images: Int, parts: Int) -> Int {
        let chunks = (m + chunk - 1) / chunk, tasks = images * chunks, perPart = (tasks + parts - 1) / parts
        var busiest = 0
        for part in 0..<parts {
            var load = 0
            for task in (part * perPart)..<Swift.min(tasks, (part + 1) * perPart) {
                let k = task % chunks
                load += Swift.min(m, (k + 1) * chunk) - k * chunk
            }
            busiest = Swift.max(busiest, load)
        }
        return busiest
    }

    /// The buffers of one fused call, shared by its tasks (disjoint writes).
    private struct FusedPointers: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let dw: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
        let bias: UnsafePointer<Float>?
        let dwBias: UnsafePointer<Float>?
        let packed: UnsafeMutablePointer<Float>
    }
}
