import Tensors

/// SmoothGrad (Smilkov et al. 2017, arXiv:1706.03825, Eq. 3): the mean of |∂y_t/∂x| over
/// `samples` copies of the input with Gaussian noise of standard deviation `sigma` (in model-input
/// units, as Captum's `stdevs`), as Captum `NoiseTunnel(Saliency(model)).attribute(x,
/// nt_type="smoothgrad", nt_samples=samples, stdevs=sigma, target=t)`. `seed` fixes the noise.
public struct SmoothGradExplainer: Explainer {
    public static let method = "smoothgrad"
    let samples: Int
    let sigma: Float
    let seed: Int
    let batch: Int
    let objective: Objective
    public var parameters: [String: String] { ["samples": "\(samples)", "sigma": "\(sigma)", "seed": "\(seed)"].merging(objective.parameters) { a, _ in a } }
    public static let card = MethodCard(
        title: "SmoothGrad",
        meaning: "Saliency averaged over noisy copies of the image: the sensitivity that survives small perturbations.",
        cost: "One forward and backward pass per noisy sample (batched).",
        limits: "Still sensitivity, not evidence; the noise level changes the picture.")

    init(_ p: Parameters) throws {
        samples = try p.int("samples", default: 25)
        sigma = try p.float("sigma", default: 0.15, range: 0...1000)
        seed = try p.int("seed", default: 0, min: 0, max: Int(Int32.max))
        batch = try p.int("batch", default: 16)
        objective = try Objective(p)
    }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let x = request.input
        var rng = SeededGenerator(seed: UInt64(seed))
        let noisy = Tensor.stack((0..<samples).map { _ in Tensor(shape: x.shape, data: x.data.map { $0 + sigma * rng.gaussian() }) })
        let grads = try Backprop.batchGradients(request, inputs: noisy, chunk: batch, objective: objective)
        var mean = Tensor(shape: Array(x.shape.dropFirst()))
        for k in 0..<samples { for i in 0..<x.count { mean.data[i] += abs(grads.data[k * x.count + i]) / Float(samples) } }
        return Attribution(raw: mean, space: .input)
    }
}

extension SmoothGradExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = Objective.keys.union(["samples", "sigma", "seed", "batch"])
    static func make(_ p: Parameters) throws -> any Explainer { try SmoothGradExplainer(p) }
}
