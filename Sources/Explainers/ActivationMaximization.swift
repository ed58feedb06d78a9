import Engine
import Foundation
import Tensors

/// Activation maximization (feature visualization): the input that most excites one channel of a
/// layer, found by gradient ascent from small noise (Erhan et al. 2009, "Visualizing higher-layer
/// features of a deep network"; for class scores Simonyan et al. 2014, arXiv:1312.6034, §2, Eq. 1;
/// regularizers after Yosinski et al. 2015, arXiv:1506.06579, §3, and Mahendran & Vedaldi 2016,
/// total variation).
///
/// Objective, for x in model-input space (1,C,H,W):
///   J(x) = mean_ij A_k(x)[i,j] − l2·‖x‖²/n − tv·TV(x)/n,   TV(x) = Σ (x_{i+1,j} − x_ij)² + (x_{i,j+1} − x_ij)²
/// with A_k channel `channel` of `layer` (default: the class score of the target, a class model
/// visualization); for a ReLU's output, A is the ReLU's input (its pre-activation). Each of `steps` iterations shifts x by a random jitter of up to `jitter`
/// pixels (circularly), takes ∇J, shifts it back, and steps x += lr·∇J / mean|∇J| (normalized
/// gradient ascent); x starts as N(0, 0.1²) noise from `seed`, and stays within [−`clip`, `clip`].
///
/// Raw output: the synthesized input (C,H,W). It does not explain the given image; `candela
/// visualize` draws galleries of a layer's channels with it.
public struct ActivationMaxExplainer: Explainer {
    public static let method = "activation-max"
    let layer: String?
    let channel: Int?
    let steps: Int
    let lr: Float
    let l2: Float
    let tv: Float
    let jitter: Int
    let clip: Float
    let seed: Int
    public var parameters: [String: String] {
        var p = ["steps": "\(steps)", "lr": "\(lr)", "l2": "\(l2)", "tv": "\(tv)", "jitter": "\(jitter)", "clip": "\(clip)", "seed": "\(seed)"]
        if let layer { p["layer"] = layer }
        if let channel { p["channel"] = "\(channel)" }
        return p
    }
    public static let card = MethodCard(
        title: "Activation maximization",
        meaning: "A synthetic image that excites one unit (a channel, or a class score) as much as possible: what the unit responds to.",
        cost: "One forward and backward pass per ascent step (128 by default).",
        limits: "Shows a unit's preference, not why this image was classified; the picture depends on the regularizers and the start.")

    init(_ p: Parameters) throws {
        layer = p.string("layer")
        channel = p.string("channel") == nil ? nil : try p.int("channel", default: 0, min: 0)
        steps = try p.int("steps", default: 128)
        lr = try p.float("lr", default: 0.05, range: 1e-6...10)
        l2 = try p.float("l2", default: 1e-3, range: 0...1e6)
        tv = try p.float("tv", default: 5e-2, range: 0...1e6)
        jitter = try p.int("jitter", default: 2, min: 0)
        clip = try p.float("clip", default: 3, range: 0.01...1e6)
        seed = try p.int("seed", default: 0, min: 0, max: Int(Int32.max))
    }

    public init(layer: String? = nil, channel: Int? = nil, steps: Int = 128, lr: Float = 0.05, l2: Float = 1e-3,
                tv: Float = 5e-2, jitter: Int = 2, clip: Float = 3, seed: Int = 0) {
        (self.layer, self.channel, self.steps, self.lr, self.l2, self.tv, self.jitter, self.clip, self.seed) =
            (layer, channel, steps, lr, l2, tv, jitter, clip, seed)
    }

    public func taps(for model: Model) throws -> [String] { layer.map { [$0] } ?? [] }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let model = request.model
        let shape = request.input.shape
        let (c, h, w) = (shape[1], shape[2], shape[3])
        let n = Float(c * h * w)
        var rng = SeededGenerator(seed: UInt64(seed))
        var x = Tensor(shape: shape, data: (0..<(c * h * w)).map { _ in 0.1 * rng.gaussian() })
        if let layer, !model.graph.tensorNames.contains(layer) {
            throw ExplainerError("\(model.path): unknown layer '\(layer)'")
        }
        // A ReLU output is zero wherever its input is negative, and so is its gradient: a
        // channel that starts silent would never move. Ascend its input instead (the
        // pre-activation, as feature-visualization practice does); the maximizer is the same
        // wherever the channel fires.
        var target = layer ?? model.graph.outputs[0]
        if let relu = model.graph.nodes.first(where: { $0.opType == "Relu" && $0.outputs.first == target }) {
            target = relu.inputs[0]
        }
        for _ in 0..<steps {
            let dy = jitter > 0 ? Int.random(in: -jitter...jitter, using: &rng) : 0
            let dx = jitter > 0 ? Int.random(in: -jitter...jitter, using: &rng) : 0
            let shifted = ActivationMaxExplainer.roll(x, dy: dy, dx: dx)
            let pass = try model.run([model.inputName: shifted], taps: [target])
            let a = try pass.value(target)
            let seedTensor = try objectiveSeed(a, target: request.target, model: model)
            let g = try model.backward(pass, seeds: [target: seedTensor], wrt: [model.inputName])[model.inputName]!
            var grad = ActivationMaxExplainer.roll(g, dy: -dy, dx: -dx)
            // Penalties: −l2·‖x‖²/n and −tv·TV(x)/n.
            for ch in 0..<c {
                for i in 0..<h {
                    for j in 0..<w {
                        let k = ch * h * w + i * w + j, v = x.data[k]
                        var t: Float = 0
                        if i + 1 < h { t -= 2 * (x.data[k + w] - v) }
                        if i > 0 { t += 2 * (v - x.data[k - w]) }
                        if j + 1 < w { t -= 2 * (x.data[k + 1] - v) }
                        if j > 0 { t += 2 * (v - x.data[k - 1]) }
                        grad.data[k] -= (2 * l2 * v + tv * t) / n
                    }
                }
            }
            let scale = grad.data.reduce(0) { $0 + abs($1) } / n
            guard scale > 0 else { break }
            for k in 0..<x.count { x.data[k] = min(clip, max(-clip, x.data[k] + lr * grad.data[k] / scale)) }
        }
        return Attribution(raw: Tensor(shape: [c, h, w], data: x.data), space: .input)
    }

    /// ∂J/∂A: 1/(h·w) on the chosen channel of a feature map (N,C,h,w), or on the target class of a
    /// score vector (N,K) when no channel is given.
    func objectiveSeed(_ a: Tensor, target: Int, model: Model) throws -> Tensor {
        var s = Tensor(shape: a.shape)
        switch a.rank {
        case 4:
            let (ch, plane) = (channel ?? target, a.shape[2] * a.shape[3])
            guard ch < a.shape[1] else { throw ExplainerError("\(model.path): channel \(ch) is out of range: the layer has \(a.shape[1]) channels") }
            for i in 0..<plane { s.data[ch * plane + i] = 1 / Float(plane) }
        case 2:
            let k = channel ?? target
            guard k < a.shape[1] else { throw ExplainerError("\(model.path): unit \(k) is out of range: the layer has \(a.shape[1]) units") }
            s.data[k] = 1
        default:
            throw ExplainerError("\(model.path): activation maximization needs a (N,C,h,w) or (N,K) tensor, got shape \(a.shape)")
        }
        return s
    }

    /// Circular shift of a (1,C,H,W) tensor by (dy, dx).
    static func roll(_ t: Tensor, dy: Int, dx: Int) -> Tensor {
        guard dy != 0 || dx != 0 else { return t }
        let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
        var out = t
        for ch in 0..<c {
            for i in 0..<h {
                let si = ((i - dy) % h + h) % h
                for j in 0..<w {
                    let sj = ((j - dx) % w + w) % w
                    out.data[ch * h * w + i * w + j] = t.data[ch * h * w + si * w + sj]
                }
            }
        }
        return out
    }
}

extension ActivationMaxExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["layer", "channel", "steps", "lr", "l2", "tv", "jitter", "clip", "seed"]
    static func make(_ p: Parameters) throws -> any Explainer { try ActivationMaxExplainer(p) }
}
