import ArgumentParser
import Engine
import Explainers
import Foundation
import Imaging
import Tensors

/// Feature-visualization galleries: activation maximization for the first channels of a layer,
/// and the first convolution's filters drawn as images.
struct Visualize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draws what a layer's channels respond to (activation maximization) as a PNG gallery.",
        discussion: """
            --layer first (default) is the first convolution's output; --layer deep the default CAM layer; --layer logits \
            the class scores (one tile per class); or any tensor name (candela inspect lists them). --filters also writes \
            the first convolution's weights, one RGB tile per filter. Method parameters (steps, lr, l2, tv, jitter, clip, \
            seed) as in 'candela explain --method activation-max --set ...'.
            """)

    @Option(help: "ONNX model.") var model: String
    @Option(help: "first, deep, logits, or a tensor name.") var layer: String = "first"
    @Option(help: "How many channels (the first N).") var channels: Int = 16
    @Option(help: "Input size WIDTH,HEIGHT when the model does not declare one.") var size: String?
    @Option(name: .customLong("set"), help: "activation-max parameter key=value (repeatable).") var settings: [String] = []
    @Option(help: "Gallery PNG to write.") var out: String
    @Option(help: "Also write the first convolution's filters as a PNG gallery here.") var filters: String?

    @OptionGroup var kernelFlags: KernelFlags

    func run() throws {
        try guarded {
            let kernels = try kernelFlags.kernels()
            guard channels >= 1 else { throw ValidationError("--channels must be at least 1") }
            let m = try Model(path: model, kernels: kernels)
            let hw = try modelInputSize(m, override: size)
            let inputChannels = m.graph.inputs.first?.shape.dropFirst().first.flatMap { $0 } ?? 3
            let firstConv = m.graph.parameterizedLayers.first { $0.opType == "Conv" }
            let tensor: String
            switch layer {
            case "first":
                guard let c = firstConv else { throw EngineError("\(model): the model has no convolution") }
                tensor = c.outputs[0]
            case "deep":
                guard let l = m.graph.defaultCAMLayer else { throw EngineError("\(model): no default CAM layer; pass --layer TENSOR") }
                tensor = l
            case "logits": tensor = m.graph.outputs[0]
            default: tensor = layer
            }
            let probe = try m.run([m.inputName: Tensor(shape: [1, inputChannels, hw.0, hw.1])], taps: [tensor]).value(tensor)
            let available = probe.rank >= 2 ? probe.shape[1] : 1
            let count = min(channels, available)
            var params = try parseSettings(settings)
            if tensor != m.graph.outputs[0] { params["layer"] = tensor }
            var tiles: [Image] = []
            for k in 0..<count {
                var p = params
                p["channel"] = "\(k)"
                let explainer = try ExplainerRegistry.make(method: "activation-max", parameters: p)
                let x = try explainer.explain(ExplanationRequest(model: m, input: Tensor(shape: [1, inputChannels, hw.0, hw.1]), target: k)).raw
                tiles.append(Visualize.render(x))
            }
            try Codecs.writePNG(Visualize.grid(tiles, scale: max(1, 96 / max(hw.0, hw.1))), to: out)
            print("\(out): \(count) of \(available) channels of \(tensor)")
            if let filters {
                guard let conv = firstConv, let w = m.graph.initializers[conv.inputs[1]], w.rank == 4 else {
                    throw EngineError("\(model): no first convolution with constant weights")
                }
                let (o, c, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
                let weightTiles = (0..<o).map { f in
                    Visualize.render(Tensor(shape: [c, kh, kw], data: Array(w.data[(f * c * kh * kw)..<((f + 1) * c * kh * kw)])))
                }
                try Codecs.writePNG(Visualize.grid(weightTiles, scale: max(1, 48 / max(kh, kw))), to: filters)
                print("\(filters): \(o) filters of \(conv.name) (\(c)×\(kh)×\(kw))")
            }
        }
    }

    /// A (C,H,W) tensor as an image: RGB from the first three channels (gray for one), min-max
    /// scaled over all channels together so colours keep their balance.
    static func render(_ t: Tensor) -> Image {
        let (c, h, w) = (t.shape[0], t.shape[1], t.shape[2])
        let lo = t.data.min() ?? 0, hi = t.data.max() ?? 1
        let span = hi > lo ? hi - lo : 1
        var pixels = [UInt8](repeating: 0, count: h * w * 3)
        for i in 0..<(h * w) {
            for ch in 0..<3 {
                let v = t.data[min(ch, c - 1) * h * w + i]
                pixels[i * 3 + ch] = UInt8((255 * (v - lo) / span).rounded())
            }
        }
        return Image(width: w, height: h, channels: 3, pixels: pixels)
    }

    /// Tiles in rows of up to 8, each enlarged `scale` times (nearest neighbour), 2-pixel white gaps.
    static func grid(_ tiles: [Image], scale: Int) -> Image {
        let (tw, th) = (tiles[0].width * scale, tiles[0].height * scale)
        let columns = min(8, tiles.count), rows = (tiles.count + columns - 1) / columns
        let (gw, gh) = (columns * (tw + 2) + 2, rows * (th + 2) + 2)
        var pixels = [UInt8](repeating: 255, count: gw * gh * 3)
        for (n, tile) in tiles.enumerated() {
            let (ox, oy) = (2 + (n % columns) * (tw + 2), 2 + (n / columns) * (th + 2))
            for y in 0..<th {
                for x in 0..<tw {
                    let s = ((y / scale) * tile.width + x / scale) * 3, d = ((oy + y) * gw + ox + x) * 3
                    pixels[d] = tile.pixels[s]
                    pixels[d + 1] = tile.pixels[s + 1]
                    pixels[d + 2] = tile.pixels[s + 2]
                }
            }
        }
        return Image(width: gw, height: gh, channels: 3, pixels: pixels)
    }
}

/// The (height, width) to feed a model: `--size WIDTH,HEIGHT` when given, else the ONNX input's
/// declared size, else 64×64.
func modelInputSize(_ m: Model, override size: String?) throws -> (Int, Int) {
    if let size {
        let v = size.split(separator: ",").compactMap { Int($0) }
        guard v.count == 2, v.allSatisfy({ $0 > 0 }) else { throw ValidationError("--size expects WIDTH,HEIGHT, got '\(size)'") }
        return (v[1], v[0])
    }
    if let s = m.graph.inputs.first?.shape, s.count == 4, let h = s[2], let w = s[3] { return (h, w) }
    return (64, 64)
}
