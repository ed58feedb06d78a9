import ArgumentParser
import Engine
import Explainers
import Foundation
import Imaging
import Tensors

/// Options that say how to preprocess an image input for a bare ONNX file.
struct PreprocessingOptions: ParsableArguments {
    @Option(help: "Model input size WIDTH,HEIGHT for image inputs (default: the ONNX input's declared size).") var size: String?
    @Option(help: "Per-channel mean after scaling, e.g. 0.485,0.456,0.406.") var mean: String = "0,0,0"
    @Option(help: "Per-channel std after scaling, e.g. 0.229,0.224,0.225.") var std: String = "1,1,1"
    @Option(help: "Pixel scale applied before mean/std.") var scale: Float = 1.0 / 255.0
    @Flag(help: "Feed channels in BGR order.") var bgr = false

    func preprocessing(for model: Model) throws -> Preprocessing {
        var w = 0, h = 0
        if let size {
            let v = size.split(separator: ",").compactMap { Int($0) }
            guard v.count == 2, v[0] > 0, v[1] > 0 else { throw ValidationError("--size expects WIDTH,HEIGHT, got '\(size)'") }
            (w, h) = (v[0], v[1])
        } else if let shape = model.graph.inputs.first?.shape, shape.count == 4, let sh = shape[2], let sw = shape[3] {
            (w, h) = (sw, sh)
        } else {
            throw ValidationError("\(model.path): the input has no fixed spatial size; pass --size WIDTH,HEIGHT")
        }
        return Preprocessing(width: w, height: h, scale: scale, mean: try parseFloats(mean, count: 3, option: "--mean"),
                             std: try parseFloats(std, count: 3, option: "--std"), channelOrder: bgr ? .bgr : .rgb)
    }
}

/// Throws naming the file when `x` holds NaN or ±Inf: a model given them returns numbers that
/// mean nothing (a confident probability of NaN-poisoned logits).
func checkFinite(_ x: Tensor, _ path: String) throws {
    let bad = x.data.filter { !$0.isFinite }.count
    if bad > 0 { throw TensorError("\(path): \(bad) of \(x.count) values are NaN or infinite; the input must be finite") }
}

/// Reads `--input`: a float32 NCHW `.npy` used as is, or an image through the preprocessing.
func loadInput(_ path: String, model: Model, options: PreprocessingOptions) throws -> (x: Tensor, image: Image?, rgb: [Float]?) {
    if path.lowercased().hasSuffix(".npy") {
        let (x, dtype) = try NPY.readTyped(path)
        guard NPY.isFloat(dtype) else {
            throw TensorError("\(path): dtype '\(dtype)' is not floating point; the input must be the model's preprocessed "
                              + "(1,C,H,W) float32 tensor (give an image file to have Candela preprocess it)")
        }
        guard x.rank == 4, x.shape[0] == 1 else {
            throw TensorError("\(path): expected a (1,C,H,W) float32 array, got shape \(x.shape)")
        }
        try checkFinite(x, path)
        if let declared = model.graph.inputs.first?.shape, declared.count == 4 {
            for axis in 1..<4 {
                if let d = declared[axis], d != x.shape[axis] {
                    throw TensorError("\(path): shape \(x.shape) does not fit the model input [\(declared.map { $0.map(String.init) ?? "N" }.joined(separator: ","))]")
                }
            }
        }
        return (x, nil, nil)
    }
    let image = try Codecs.decode(path: path)
    let p = try options.preprocessing(for: model)
    return (p.apply(image), image, p.resizedRGB(image))
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explains one input with one method and writes the raw attribution, heatmap and overlay.",
        discussion: """
            Examples:
              candela explain --model models/demo.onnx --method gradcam \\
                --input datasets/demo/images/slide_001.png --size 64,64 \\
                --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25 --overlay cam.png
              candela explain --model resnet18.onnx --input x.npy \\
                --method integratedgradients --set steps=64 --out ig.npy
            """)

    @Option(help: "ONNX model.") var model: String
    @Option(help: "Image (PNG, JPEG or TIFF) or float32 NCHW .npy.") var input: String
    @Option(help: "Method: \(ExplainerRegistry.methods.joined(separator: ", ")).") var method: String
    @Option(help: "Class index to explain (default: the top-1 class).") var target: Int?
    @Option(help: "Layer tensor for CAM methods (default: last rank-4 tensor before global pooling).") var layer: String?
    @Option(name: .customLong("set"), help: "Method parameter key=value (repeatable).") var settings: [String] = []
    @Option(help: "Write the raw attribution (.npy).") var out: String?
    @Option(help: "Write the [0,1] heatmap at input resolution (.npy).") var heatmap: String?
    @Option(help: "Write a PNG of the heatmap over the input (clipped at its 99.5th percentile; opacity grows with relevance; signed methods in red for the class and blue against it).") var overlay: String?
    @Option(help: "Colormap for --overlay: \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")).") var colormap: String = "viridis"
    @OptionGroup var preprocessing: PreprocessingOptions

    @OptionGroup var kernelFlags: KernelFlags

    func run() throws {
        try guarded {
            let kernels = try kernelFlags.kernels()
            guard let cmap = Colormap(rawValue: colormap) else {
                throw ValidationError("unknown colormap '\(colormap)'; choose \(Colormap.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var params = try parseSettings(settings)
            if let layer { params["layer"] = layer }
            let explainer = try ExplainerRegistry.make(method: method, parameters: params)
            let m = try Model(path: model, kernels: kernels)
            let (x, image, rgb) = try loadInput(input, model: m, options: preprocessing)
            let pass = try m.run([m.inputName: x], taps: try explainer.taps(for: m))
            let scores = pass.outputs[0]
            guard scores.rank == 2 else { throw ExplainerError("\(model): first output has shape \(scores.shape), expected class scores (N,K)") }
            let probs = softmax(scores.data)
            let top = probs.indices.max { probs[$0] < probs[$1] }!
            let t = target ?? top
            guard t >= 0 && t < scores.shape[1] else {
                throw ExplainerError("--target \(t) is out of range: the model has \(scores.shape[1]) classes (0...\(scores.shape[1] - 1))")
            }
            let attribution = try explainer.explain(ExplanationRequest(model: m, input: x, target: t, pass: pass, image: rgb))
            let (h, w) = (x.shape[2], x.shape[3])
            let map = attribution.heatmap(height: h, width: w)
            if let out { try NPY.write(attribution.raw, to: out) }
            if let heatmap { try NPY.write(Tensor(shape: [h, w], data: map.values), to: heatmap) }
            if let overlay {
                let base = image ?? grayPreview(x)
                // The report's rendering: clipped at the 99.5th percentile, opacity growing with relevance;
                // a signed method in red (for the class) and blue (against).
                if let signed = attribution.signedMap(height: h, width: w) {
                    try Codecs.writePNG(Overlay.signedRelevance(image: base, map: signed, width: w, height: h).image, to: overlay)
                } else {
                    try Codecs.writePNG(Overlay.relevance(image: base, heatmap: map.values, width: w, height: h, colormap: cmap).image, to: overlay)
                }
            }
            print("method \(method), target \(t) (p = \(String(format: "%.4f", probs[t]))), top-1 \(top), raw shape \(attribution.raw.shape)")
            if !attribution.diagnostics.isEmpty {
                // A stochastic method's own measure of its result (docs/methods.md, "Stability").
                print(attribution.diagnostics.sorted { $0.key < $1.key }
                    .map { "\($0.key) \($0.key == "samples" ? "\(Int($0.value))" : String(format: "%.3f", $0.value))" }
                    .joined(separator: ", "))
            }
        }
    }

    /// A displayable gray image of a (1,C,H,W) input, min-max scaled.
    func grayPreview(_ x: Tensor) -> Image {
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        var mean = [Float](repeating: 0, count: h * w)
        for ch in 0..<c { for i in 0..<(h * w) { mean[i] += x.data[ch * h * w + i] / Float(c) } }
        let n = Heatmap.normalized(mean)
        return Image(width: w, height: h, channels: 1, pixels: n.map { UInt8(($0 * 255).rounded()) })
    }
}

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Runs a model on .npy inputs and writes its outputs as .npy.")

    @Option(help: "ONNX model.") var model: String
    @Option(help: ArgumentHelp("X.npy for the first graph input, or NAME=X.npy (repeatable; split at the last '=', so names may hold '/' or '=').",
                               valueName: "input")) var input: [String]
    @Option(help: "Write the first output here.") var out: String?
    @Option(help: "Write every output as DIR/<output name>.npy.") var outDir: String?

    @OptionGroup var kernelFlags: KernelFlags

    /// The graph input and file one `--input` names: NAME=FILE split at the last '=' when NAME is
    /// one of `inputs` (tf2onnx and optimum name inputs `input_1/0` or `x:0`); otherwise the whole
    /// text as a file for the first input when such a file exists; otherwise an error naming the
    /// unknown input, every name quoted.
    static func feed(_ spec: String, inputs: [String], model: String) throws -> (name: String, file: String) {
        if let eq = spec.lastIndex(of: "=") {
            let name = String(spec[..<eq])
            if inputs.contains(name) { return (name, String(spec[spec.index(after: eq)...])) }
            if !FileManager.default.fileExists(atPath: spec) {
                throw EngineError("\(model): the model has no input named '\(name)'; its inputs: "
                                  + inputs.map { "'\($0)'" }.joined(separator: ", "))
            }
        }
        guard let first = inputs.first else { throw EngineError("\(model): the model has no graph input") }
        return (first, spec)
    }

    func run() throws {
        try guarded {
            let kernels = try kernelFlags.kernels()
            let m = try Model(path: model, kernels: kernels)
            var feeds: [String: Tensor] = [:]
            for spec in input {
                let (name, file) = try Infer.feed(spec, inputs: m.graph.inputs.map(\.name), model: model)
                guard feeds[name] == nil else { throw ValidationError("--input: graph input '\(name)' is given twice") }
                let x = try NPY.read(file)
                try checkFinite(x, file)
                feeds[name] = x
            }
            let pass = try m.run(feeds, keepAll: false) // an inference pass: fused steps, freed tensors
            if let out { try NPY.write(pass.outputs[0], to: out) }
            if let outDir {
                try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
                for (name, value) in zip(m.graph.outputs, pass.outputs) {
                    try NPY.write(value, to: "\(outDir)/\(name.replacingOccurrences(of: "/", with: "_")).npy")
                }
            }
            for (name, value) in zip(m.graph.outputs, pass.outputs) { print("\(name): \(value.shape)") }
        }
    }
}

/// `inspect --json`'s description of how a model treats its batch extent.
func batchJSON(_ batch: Model.Batch) -> [String: Any] {
    switch batch {
    case .free: return ["kind": "free"]
    case .replanned(let declared, let reshapes): return ["kind": "replanned", "declared": declared, "reshapes": reshapes]
    case .fixed(let declared, let reason): return ["kind": "fixed", "declared": declared, "reason": reason]
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lists a model's inputs, outputs, operators, parameters, FLOPs and default CAM layer.",
        discussion: "Shapes and FLOPs come from one batch-1 forward pass of zeros at the declared input size (or --size). "
            + "An unsupported operator is an error at load time naming the operator, node and opset.")

    @Argument(help: "ONNX model.") var model: String
    @Option(help: "Input size WIDTH,HEIGHT when the model does not declare one.") var size: String?
    @Flag(help: "List every node with its output shape, parameters and FLOPs.") var nodes = false
    @Flag(help: "Print JSON.") var json = false

    @OptionGroup var kernelFlags: KernelFlags

    func run() throws {
        try guarded {
            let kernels = try kernelFlags.kernels()
            let m = try Model(path: model, kernels: kernels)
            var ops: [String: Int] = [:]
            for n in m.graph.nodes { ops[n.opType, default: 0] += 1 }
            let inputs = m.graph.inputs.map { "\($0.name) [\($0.shape.map { $0.map(String.init) ?? "N" }.joined(separator: ","))]" }
            let (h, w) = try modelInputSize(m, override: size)
            let channels = m.graph.inputs.first?.shape.dropFirst().first.flatMap { $0 } ?? 3
            try Limits.checkShape([1, channels, h, w], "\(model): the input at batch 1")
            let profile = try m.profile(input: Tensor(shape: [1, channels, h, w]))
            let parameters = m.graph.initializers.values.reduce(0) { $0 + $1.count }
            let flops = 2 * profile.reduce(0) { $0 + $1.macs }
            if json {
                let object: [String: Any] = [
                    "inputs": inputs, "outputs": m.graph.outputs, "operators": ops, "nodes": m.graph.nodes.count,
                    "default_cam_layer": m.graph.defaultCAMLayer ?? NSNull(), "parameters": parameters,
                    "input_size": [w, h], "flops": flops,
                    "batch": batchJSON(m.batch),
                    "kernel": kernels.path.rawValue, "kernel_options": kernels.description,
                    "kernel_paths": KernelOptions.supportedPaths.map(\.rawValue), "cpu": CPU.model, "cpu_flags": CPU.vectorFlags,
                    "optimized_nodes": m.optimizedGraph.nodes.count, "inference_fusions": m.inferenceFusions,
                    "node_profiles": profile.map { ["name": $0.name, "op": $0.opType, "output_shapes": $0.outputShapes,
                                                    "parameters": $0.parameters, "flops": 2 * $0.macs] as [String: Any] },
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("inputs: \(inputs.joined(separator: ", "))")
            print("outputs: \(m.graph.outputs.joined(separator: ", "))")
            print("nodes: \(m.graph.nodes.count) (\(ops.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
            print("parameters: \(parameters)")
            print(String(format: "FLOPs at batch 1, %dx%d: %.4g G (%ld multiply-accumulates)", w, h, Double(flops) / 1e9, flops / 2))
            print("default CAM layer: \(m.graph.defaultCAMLayer ?? "none")")
            switch m.batch {
            case .free: break
            case .replanned(let declared, let reshapes):
                print("batch: fixed at \(declared) in the file; re-planned free (\(reshapes) Reshape targets), checked against the file's graph")
            case .fixed(let declared, let reason):
                print("batch: fixed at \(declared) in the file; only that batch runs (re-planning failed: \(reason))")
            }
            print("kernels: \(kernels) (this CPU runs \(KernelOptions.supportedPaths.map(\.rawValue).joined(separator: ", ")); \(CPU.summary))")
            let f = m.inferenceFusions
            print("optimized graph: \(m.optimizedGraph.nodes.count) nodes; fused in inference passes: residual Add \(f["residual_add"]!), "
                  + "expansion + depthwise \(f["expansion_depthwise"]!), SiLU \(f["silu"]!), BatchNormalization + Relu \(f["batchnorm_relu"]!)")
            if nodes {
                for p in profile {
                    let shapes = p.outputShapes.map { "[\($0.map(String.init).joined(separator: ","))]" }.joined(separator: " ")
                    print("  \(p.name.isEmpty ? "(unnamed)" : p.name)  \(p.opType)  -> \(shapes)"
                          + (p.parameters > 0 ? "  params \(p.parameters)" : "") + (p.macs > 0 ? "  FLOPs \(2 * p.macs)" : ""))
                }
            }
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measures forward passes (or whole explanations) per second, in process, after a warm-up.")

    @Option(help: "ONNX model.") var model: String
    @Option(help: "Batch size.") var batch: Int = 1
    @Option(help: "Threads per forward pass (Candela's kernels; OpenBLAS when it does the products).") var threads: Int = 2
    @Option(help: "Time whole explanations with this method instead of forward passes.") var method: String?
    @Option(name: .customLong("set"), help: "Method parameter key=value (repeatable).") var settings: [String] = []
    @Option(help: "Input size WIDTH,HEIGHT when the model does not declare one.") var size: String?
    @Option(help: "Minimum measuring time in seconds.") var seconds: Double = 2
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "After the forward measurement, time every node over as many passes and print the slowest N (0: none).")
    var layers: Int = 0
    @Flag(help: ArgumentHelp("After warm-up, read a number of seconds per line on standard input, time forward passes (or with --method whole explanations, at least one) for that long and print one JSON line per round; end at end of input.",
                             discussion: "For comparison scripts that alternate short rounds of two engines kept warm in their own processes (tools/bench/bench_vs_ort.py --interleave)."))
    var roundsFromStdin = false

    /// Times `step` after warm-up calls, for at least `seconds` and five iterations, or one
    /// iteration when a single step already takes longer than `seconds` (slow explanations).
    func measure(images: Int, _ step: () throws -> Void) throws -> (ips: Double, ms: Double, iterations: Int) {
        let t0 = Date()
        try step()
        let once = Date().timeIntervalSince(t0)
        if once < seconds { for _ in 0..<2 { try step() } }
        let minimum = once < seconds ? 5 : 1
        var iterations = 0
        let start = Date()
        while Date().timeIntervalSince(start) < seconds || iterations < minimum {
            try step()
            iterations += 1
        }
        let elapsed = Date().timeIntervalSince(start)
        let count = Double(iterations * images)
        return (count / elapsed, 1000 * elapsed / count, iterations)
    }

    /// `--rounds-from-stdin`: warms up, prints `{"ready": true}`, then for each line of standard
    /// input (a number of seconds) times `step` (a forward pass or an explanation) for at least
    /// that long, and at least once, and prints one JSON line with the round's calls and time. A
    /// line that is not a positive number is an error.
    func serveRounds(images: Int, _ step: () throws -> Void) throws {
        let warm = Date()
        repeat { try step() } while Date().timeIntervalSince(warm) < 0.5
        // Unbuffered: the script waits for each line.
        let emit = { (line: String) in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        emit("{\"ready\": true}")
        var round = 0
        while let line = readLine() {
            round += 1
            guard let seconds = Double(line.trimmingCharacters(in: .whitespaces)), seconds > 0 else {
                throw ValidationError("standard input, line \(round): expected a number of seconds, got \"\(line)\"")
            }
            var iterations = 0
            let start = Date()
            repeat {
                try step()
                iterations += 1
            } while Date().timeIntervalSince(start) < seconds
            let elapsed = Date().timeIntervalSince(start)
            emit("{\"round\": \(round), \"iterations\": \(iterations), \"seconds\": \(elapsed), \"ms_per_image\": \(1000 * elapsed / Double(iterations * images))}")
        }
    }

    /// Times every node over `passes` forward passes and prints the slowest `layers` of them and
    /// the time per operator type, in ms per image.
    func printLayers(_ m: Model, _ x: Tensor, passes: Int) throws {
        let clock = NodeClock()
        let start = Date()
        for _ in 0..<passes { _ = try m.forward(x, clock: clock) }
        let wall = 1000 * Date().timeIntervalSince(start) / Double(passes * x.shape[0])
        let perImage = 1e-6 / Double(passes * x.shape[0])
        let total = clock.slowestFirst.reduce(0) { $0 + Double($1.nanoseconds) } * perImage
        print(String(format: "\nper node (%d passes, %.3f ms/image; %.3f ms/image in nodes):", passes, wall, total))
        // Multiply-accumulates per image of the file graph's nodes (fused nodes keep their Conv's
        // name; an expansion run with its depthwise Conv is named "expansion + depthwise").
        let one = Tensor(shape: [1] + x.shape.dropFirst())
        let macs = Dictionary(try m.profile(input: one).map { ($0.name, $0.macs) }, uniquingKeysWith: { a, _ in a })
        for e in clock.slowestFirst.prefix(layers) {
            let ms = Double(e.nanoseconds) * perImage
            let count = (macs[e.name] ?? e.name.components(separatedBy: " + ").reduce(0) { $0 + (macs[$1] ?? 0) })
            let rate = count > 0 ? String(format: "  %.0f GFLOP/s", 2e-6 * Double(count) / ms) : ""
            print(String(format: "  %8.3f ms %5.1f%%  %@  %@  -> %@%@", ms, 100 * ms / total, e.opType, e.name,
                         e.shape.map(String.init).joined(separator: "x"), rate))
        }
        print("per operator:")
        for (op, ns) in clock.byOperator {
            let ms = Double(ns) * perImage
            print(String(format: "  %8.3f ms %5.1f%%  %@", ms, 100 * ms / total, op))
        }
    }

    @OptionGroup var kernelFlags: KernelFlags

    /// The kernel path, its variants and the CPU, as JSON members.
    func kernelJSON(_ kernels: KernelOptions) -> String {
        "\"kernel\": \"\(kernels.path.rawValue)\", \"kernel_options\": \"\(kernels.description)\", "
            + "\"cpu\": \"\(CPU.model)\", \"cpu_flags\": \"\(CPU.vectorFlags.joined(separator: " "))\""
    }

    func run() throws {
        try guarded {
            let kernels = try kernelFlags.kernels()
            guard layers >= 0 else { throw ValidationError("--layers must be 0 or more, got \(layers)") }
            guard (1...4096).contains(batch) else { throw ValidationError("--batch must be 1 to 4096, got \(batch)") }
            guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256, got \(threads)") }
            guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be a positive number, got \(seconds)") }
            if layers > 0 && (json || method != nil) {
                throw ValidationError("--layers times forward passes and prints text: leave out \(json ? "--json" : "--method")")
            }
            if roundsFromStdin && (layers > 0 || json) {
                throw ValidationError("--rounds-from-stdin prints JSON lines: leave out --layers and --json")
            }
            BLAS.setThreads(threads)
            let m = try Model(path: model, kernels: kernels)
            let hw = try modelInputSize(m, override: size)
            let channels = m.graph.inputs.first?.shape.dropFirst().first.flatMap { $0 } ?? 3
            var rng = SeededGenerator(seed: 0) // (the system generator makes one syscall per number)
            let n = method == nil ? batch : 1
            try Limits.checkShape([n, channels, hw.0, hw.1], "\(model): the benchmark's input")
            let x = Tensor(shape: [n, channels, hw.0, hw.1],
                           data: (0..<(n * channels * hw.0 * hw.1)).map { _ in Float.random(in: -1...1, using: &rng) })
            let explainer = try method.map { try ExplainerRegistry.make(method: $0, parameters: try parseSettings(settings)) }
            if roundsFromStdin {
                if let explainer {
                    try serveRounds(images: 1) { _ = try explainer.explain(ExplanationRequest(model: m, input: x, target: 0)) }
                } else {
                    try serveRounds(images: n) { _ = try m.forward(x) }
                }
                return
            }
            let forward = try measure(images: n) { _ = try m.forward(x) }
            guard let explainer, let method else {
                if json {
                    print("{\"images_per_second\": \(forward.ips), \"ms_per_image\": \(forward.ms), \"batch\": \(n), \"threads\": \(threads), \"method\": \"forward\", \"huge_pages\": \(Memory.hugePages), \"malloc_heap_blocks\": \(Memory.heapBlocks), \(kernelJSON(kernels))}")
                } else {
                    print(String(format: "forward: %.1f images/s, %.3f ms/image (batch %d, %d threads, %d iterations; kernels %@ on %@)",
                                 forward.ips, forward.ms, n, threads, forward.iterations,
                                 kernels.description, CPU.summary))
                }
                if layers > 0 { try printLayers(m, x, passes: forward.iterations) }
                return
            }
            // The explanation's cost is reported against the forward pass measured in this same
            // process (DESIGN.md §4: "forward + backward ≤ 3× the forward").
            let explained = try measure(images: 1) {
                _ = try explainer.explain(ExplanationRequest(model: m, input: x, target: 0))
            }
            let ratio = explained.ms / forward.ms
            if json {
                print("{\"images_per_second\": \(explained.ips), \"ms_per_image\": \(explained.ms), \"forward_ms_per_image\": \(forward.ms), \"forward_ratio\": \(ratio), \"batch\": 1, \"threads\": \(threads), \"method\": \"\(method)\", \"huge_pages\": \(Memory.hugePages), \"malloc_heap_blocks\": \(Memory.heapBlocks), \(kernelJSON(kernels))}")
            } else {
                print(String(format: "%@: %.1f images/s, %.3f ms/image = %.2f× the forward pass (%.3f ms; batch 1, %d threads, %d iterations)",
                             method, explained.ips, explained.ms, ratio, forward.ms, threads, explained.iterations))
            }
        }
    }
}
