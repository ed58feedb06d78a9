import Engine
import Tensors

/// Occlusion (Zeiler & Fergus 2014, arXiv:1311.2901, §4.2): slide a window of the baseline value
/// (0) over the input; each element's attribution is the mean, over the windows covering it, of
/// y_t(x) − y_t(x with the window occluded). As Captum `Occlusion(model).attribute(x,
/// sliding_window_shapes=window, strides=stride, baselines=0, target=t)`: ⌈(D − k)/s⌉ + 1 window
/// positions per axis, the last one clipped at the border. Occluded inputs run in batches of
/// `batch`, reusing the clean forward pass. Raw output (C,H,W), signed; its heatmap shows the
/// positive part only (score drops), as Captum's occlusion tutorial displays it.
///
/// By default each batch runs by exact incremental inference (`Model.incrementalOutputs`,
/// Nakandala et al. SIGMOD 2019): every layer recomputes only what the window reaches and reads
/// the rest from the clean pass. `incremental=off` runs whole forward passes instead; both give
/// the same scores up to float rounding.
public struct OcclusionExplainer: Explainer {
    public static let method = "occlusion"
    let window: [Int]
    let stride: [Int]
    let batch: Int
    let incremental: Bool
    public var parameters: [String: String] {
        // `incremental` changes the work, not the result: it names the cache entry only when off.
        var p = ["window": window.map(String.init).joined(separator: ","), "stride": stride.map(String.init).joined(separator: ",")]
        if !incremental { p["incremental"] = "off" }
        return p
    }
    public static let card = MethodCard(
        title: "Occlusion",
        meaning: "How much the score drops when each region is hidden: direct, model-agnostic evidence.",
        cost: "One forward pass per window position (thousands for small strides).",
        limits: "Blocky at the window size; the hidden region (zero in model-input space) is itself an unnatural patch the model may react to.")

    init(_ p: Parameters) throws {
        window = try p.ints("window", count: 3, default: [3, 16, 16])
        stride = try p.ints("stride", count: 3, default: [3, 8, 8])
        batch = try p.int("batch", default: 16)
        incremental = try p.choice("incremental", default: "on", among: ["on", "off"]) == "on"
    }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let x = request.input
        let dims = Array(x.shape.dropFirst()) // (C,H,W)
        for a in 0..<3 where window[a] > dims[a] {
            throw ExplainerError("occlusion: window \(window) is larger than the input \(dims)")
        }
        let axes = ["channels", "px", "px"]
        for a in 0..<3 where stride[a] > dims[a] {
            throw ExplainerError("occlusion: stride \(stride[a]) exceeds the image's \(dims[a]) \(axes[a]) (stride \(stride), input \(dims))")
        }
        let pass = try request.forwardPass()
        let clean = try Backprop.scores(pass, model: request.model)
        try Backprop.checkTarget(request.target, classes: clean.shape[1])
        let reference = clean.data[request.target]
        var counts: [Int] = []
        for a in 0..<3 {
            let span: Int = dims[a] - window[a]
            counts.append((span + stride[a] - 1) / stride[a] + 1)
        }
        // Window origins in row-major order over (C,H,W).
        var origins: [[Int]] = []
        for c in 0..<counts[0] { for h in 0..<counts[1] { for w in 0..<counts[2] {
            origins.append([c * stride[0], h * stride[1], w * stride[2]])
        } } }
        func region(_ o: [Int]) -> [Range<Int>] { (0..<3).map { o[$0]..<min(dims[$0], o[$0] + window[$0]) } }
        var total = [Float](repeating: 0, count: x.count)
        var covered = [Float](repeating: 0, count: x.count)
        let (hw, w) = (dims[1] * dims[2], dims[2])
        var start = 0
        while start < origins.count {
            let chunk = Array(origins[start..<min(origins.count, start + batch)])
            let scores: [[Float]]
            if incremental {
                scores = try incrementalScores(request.model, pass: pass, x: x, windows: chunk.map(region))
            } else {
                let occluded = chunk.map { o -> Tensor in
                    var t = x
                    let r = region(o)
                    for c in r[0] { for h in r[1] { for j in r[2] { t.data[c * hw + h * w + j] = 0 } } }
                    return t
                }
                scores = try Backprop.batchScores(request.model, inputs: occluded, chunk: batch)
            }
            for (o, s) in zip(chunk, scores) {
                let diff = reference - s[request.target]
                let r = region(o)
                for c in r[0] { for h in r[1] { for j in r[2] {
                    total[c * hw + h * w + j] += diff
                    covered[c * hw + h * w + j] += 1
                } } }
            }
            start += chunk.count
        }
        // The heatmap keeps the positive part: regions whose hiding lowered the score.
        return Attribution(raw: Tensor(shape: dims, data: zip(total, covered).map { $1 > 0 ? $0 / $1 : 0 }),
                           space: .input, reduction: .positive)
    }

    /// The scores of the occluded inputs by incremental inference: one patch per window, the
    /// window's full spatial size (moved inward at the border, where Captum clips the window),
    /// holding the clean input with the window's channels, rows and columns set to the baseline 0.
    func incrementalScores(_ model: Model, pass: ForwardPass, x: Tensor, windows: [[Range<Int>]]) throws -> [[Float]] {
        let (channels, height, width) = (x.shape[1], x.shape[2], x.shape[3])
        let (ph, pw) = (window[1], window[2])
        var values = Tensor(uninitializedShape: [windows.count, channels, ph, pw])
        var ys: [Int] = [], xs: [Int] = []
        for (b, r) in windows.enumerated() {
            let (y0, x0) = (min(r[1].lowerBound, height - ph), min(r[2].lowerBound, width - pw))
            ys.append(y0)
            xs.append(x0)
            for c in 0..<channels { for i in 0..<ph { for j in 0..<pw {
                let hidden = r[0].contains(c) && r[1].contains(y0 + i) && r[2].contains(x0 + j)
                values.data[((b * channels + c) * ph + i) * pw + j] = hidden ? 0 : x.data[(c * height + y0 + i) * width + x0 + j]
            } } }
        }
        let y = try model.incrementalOutputs(clean: pass, patches: InputPatches(values: values, ys: ys, xs: xs))[0]
        let k = y.shape[1]
        return (0..<windows.count).map { Array(y.data[($0 * k)..<(($0 + 1) * k)]) }
    }
}

extension OcclusionExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["window", "stride", "batch", "incremental"]
    static func make(_ p: Parameters) throws -> any Explainer { try OcclusionExplainer(p) }
}
