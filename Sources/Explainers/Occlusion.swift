import Tensors

/// Occlusion (Zeiler & Fergus 2014, arXiv:1311.2901, §4.2): slide a window of the baseline value
/// (0) over the input; each element's attribution is the mean, over the windows covering it, of
/// y_t(x) − y_t(x with the window occluded). As Captum `Occlusion(model).attribute(x,
/// sliding_window_shapes=window, strides=stride, baselines=0, target=t)`: ⌈(D − k)/s⌉ + 1 window
/// positions per axis, the last one clipped at the border. Occluded inputs run in batches of
/// `batch`, reusing the clean forward pass. Raw output (C,H,W), signed; its heatmap shows the
/// positive part only (score drops), as Captum's occlusion tutorial displays it.
public struct OcclusionExplainer: Explainer {
    public static let method = "occlusion"
    let window: [Int]
    let stride: [Int]
    let batch: Int
    public var parameters: [String: String] {
        ["window": window.map(String.init).joined(separator: ","), "stride": stride.map(String.init).joined(separator: ",")]
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
    }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let x = request.input
        let dims = Array(x.shape.dropFirst()) // (C,H,W)
        for a in 0..<3 where window[a] > dims[a] {
            throw ExplainerError("occlusion: window \(window) is larger than the input \(dims)")
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
            let occluded = chunk.map { o -> Tensor in
                var t = x
                let r = region(o)
                for c in r[0] { for h in r[1] { for j in r[2] { t.data[c * hw + h * w + j] = 0 } } }
                return t
            }
            let scores = try Backprop.batchScores(request.model, inputs: occluded, chunk: batch)
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
}
