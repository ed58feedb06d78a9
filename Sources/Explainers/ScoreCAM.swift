import Engine
import Imaging
import Tensors

/// Score-CAM (Wang et al. 2020, arXiv:1910.01279, Eq. 5-8): each channel A_k, upsampled to the
/// input and min-max normalized, masks the input; the target scores of the masked inputs go
/// through a softmax over channels to give w_k; map = ReLU(Σ_k w_k A_k). As pytorch-grad-cam
/// `ScoreCAM` before its resize and normalization, including its upsampling with aligned corners
/// (`UpsamplingBilinear2d`). Masked inputs run in batches of `batch`; channels that are constant
/// over the image share one pass (their masks are all zero). Raw output (h,w).
public struct ScoreCAMExplainer: Explainer {
    public static let method = "scorecam"
    public let layer: String?
    let batch: Int
    public var parameters: [String: String] { layer.map { ["layer": $0] } ?? [:] }
    public static let card = MethodCard(
        title: "Score-CAM",
        meaning: "Feature maps weighted by how much the score rises when only the region each map highlights is shown.",
        cost: "One forward pass per channel of the layer (batched): hundreds of passes on large networks.",
        limits: "Coarse like Grad-CAM; the softmax over channels can flatten the weights when scores are close.")

    init(layer: String?, batch: Int) {
        self.layer = layer
        self.batch = batch
    }

    public func taps(for model: Model) throws -> [String] { [try CAM.layer(layer, model: model)] }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let model = request.model
        let name = try CAM.layer(layer, model: model)
        let pass = try request.forwardPass(taps: [name])
        let a = try CAM.activation(pass, layer: name, model: model)
        try Backprop.checkTarget(request.target, classes: try Backprop.scores(pass, model: model).shape[1])
        let x = request.input
        let (c, h, w) = (a.shape[1], a.shape[2], a.shape[3])
        let (ih, iw) = (x.shape[2], x.shape[3])
        let up = Resize.bilinearAlignCorners(a.data, channels: c, height: h, width: w, toHeight: ih, toWidth: iw)
        let plane = ih * iw
        // Each channel's upsampled range, for its normalization and the constant test below.
        let ranges = (0..<c).map { k in
            let m = up[(k * plane)..<((k + 1) * plane)]
            return (lo: m.min()!, hi: m.max()!)
        }
        // x masked by channel k's upsampled map, min-max normalized.
        func masked(_ k: Int) -> Tensor {
            let m = up[(k * plane)..<((k + 1) * plane)]
            let (lo, hi) = ranges[k]
            let scale = 1 / (hi - lo + 1e-8)
            var masked = x
            for ch in 0..<x.shape[1] {
                for i in 0..<plane { masked.data[ch * plane + i] *= (m[m.startIndex + i] - lo) * scale }
            }
            return masked
        }
        // A constant channel (a ReLU unit silent over the whole image, common in trained nets)
        // normalizes to an all-zero mask: every such channel masks the input to the same 0·x, so
        // one pass scores them all. The others run in batches, built batch by batch (512 masked
        // 224×224 inputs would take 300 MB).
        var constant: [Int] = [], varying: [Int] = []
        for k in 0..<c {
            if ranges[k].lo == ranges[k].hi { constant.append(k) } else { varying.append(k) }
        }
        var scores = [Float](repeating: 0, count: c)
        if let first = constant.first {
            let score = try Backprop.batchScores(model, inputs: [masked(first)], chunk: 1)[0][request.target]
            for k in constant { scores[k] = score }
        }
        var start = 0
        while start < varying.count {
            let chunk = Array(varying[start..<min(varying.count, start + batch)])
            let s = try Backprop.batchScores(model, inputs: chunk.map(masked), chunk: batch)
            for (k, row) in zip(chunk, s) { scores[k] = row[request.target] }
            start += chunk.count
        }
        return Attribution(raw: CAM.weightedMap(a, weights: softmax(scores)), space: .layer)
    }
}

extension ScoreCAMExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["layer", "batch"]
    static func make(_ p: Parameters) throws -> any Explainer { ScoreCAMExplainer(layer: p.string("layer"), batch: try p.int("batch", default: 16)) }
    static var usesLayer: Bool { true }
}
