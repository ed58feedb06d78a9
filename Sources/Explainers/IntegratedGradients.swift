import Tensors

/// Integrated Gradients (Sundararajan et al. 2017, arXiv:1703.01365, Eq. 3 and its Riemann
/// approximation): (x − x′) ⊙ Σ_k w_k ∂y_t/∂x (x′ + α_k (x − x′)), as Captum
/// `IntegratedGradients(model).attribute(x, baselines=x′, target=t, n_steps=steps, method=rule)`.
/// Baseline: zero in model-input space, or `baseline=FILE.npy` of the input's shape.
/// The `steps` scaled inputs go through the network in batches of `batch`. Raw output (C,H,W).
public struct IntegratedGradientsExplainer: Explainer {
    public static let method = "integratedgradients"
    let steps: Int
    let rule: Quadrature
    let baselinePath: String?
    let batch: Int
    let objective: Objective
    public var parameters: [String: String] {
        var p = ["steps": "\(steps)", "rule": rule.rawValue]
        if let baselinePath { p["baseline"] = baselinePath }
        return p.merging(objective.parameters) { a, _ in a }
    }
    public static let card = MethodCard(
        title: "Integrated gradients",
        meaning: "Each pixel's share of the score difference between a black (zero) baseline and the image; shares add up to that difference.",
        cost: "One forward and backward pass per step (batched).",
        limits: "Depends on the baseline: features equal to the baseline get no credit; too few steps do not converge.")

    init(_ p: Parameters) throws {
        steps = try p.int("steps", default: 50, min: 2, max: 4096)
        rule = Quadrature(rawValue: try p.choice("rule", default: "gausslegendre", among: Quadrature.allCases.map(\.rawValue)))!
        baselinePath = p.string("baseline")
        batch = try p.int("batch", default: 16, max: 4096)
        objective = try Objective(p)
    }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let x = request.input
        let baseline = try baselinePath.map { path -> Tensor in
            let b = try NPY.read(path)
            guard b.count == x.count else { throw ExplainerError("\(path): baseline shape \(b.shape) does not match the input \(x.shape)") }
            return b.reshaped(x.shape)
        } ?? Tensor(shape: x.shape)
        try Limits.checkShape([steps] + x.shape, "integratedgradients: \(steps) interpolated inputs")
        let points = rule.rule(steps)
        let scaled = Tensor.stack(points.map { p in
            Tensor(shape: x.shape, data: zip(x.data, baseline.data).map { xv, bv in bv + Float(p.alpha) * (xv - bv) })
        })
        let grads = try Backprop.batchGradients(request, inputs: scaled, chunk: batch, objective: objective)
        let plane = x.count
        var total = [Double](repeating: 0, count: plane)
        for (k, p) in points.enumerated() {
            for i in 0..<plane { total[i] += p.weight * Double(grads.data[k * plane + i]) }
        }
        let raw = (0..<plane).map { Float(Double(x.data[$0] - baseline.data[$0]) * total[$0]) }
        return Attribution(raw: Tensor(shape: Array(x.shape.dropFirst()), data: raw), space: .input, signed: true)
    }
}

extension IntegratedGradientsExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = Objective.keys.union(["steps", "rule", "baseline", "batch"])
    static func make(_ p: Parameters) throws -> any Explainer { try IntegratedGradientsExplainer(p) }
}
