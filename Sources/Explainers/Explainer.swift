import Engine
import Tensors

/// What an explainer is asked: which model, which preprocessed input, which class.
public struct ExplanationRequest: Sendable {
    public let model: Model
    /// The model input for one image: (1,C,H,W).
    public let input: Tensor
    /// The class index to explain (already resolved from "predicted", a label, ...).
    public let target: Int
    /// The clean forward pass of `input`, when the caller already has one: reused, not recomputed.
    public let pass: ForwardPass?
    /// The image as the model sees it, in RGB: planar (3,H,W) in [0,1] at the input's resolution,
    /// before mean/std normalization. Methods that work in colour (LIME's superpixels) use it;
    /// when absent (a `.npy` input) they use the input min-max scaled per channel.
    public let image: [Float]?

    public init(model: Model, input: Tensor, target: Int, pass: ForwardPass? = nil, image: [Float]? = nil) {
        self.model = model
        self.input = input
        self.target = target
        self.pass = pass
        self.image = image
    }

    /// The clean forward pass holding `taps`: the caller's when it has them, else a new one.
    func forwardPass(taps: [String] = []) throws -> ForwardPass {
        if let pass, taps.allSatisfy({ pass.values[$0] != nil }) { return pass }
        return try model.run([model.inputName: input], taps: taps)
    }
}

/// An explanation method. Each method is a small value in its own file; the shared work
/// (targets, backward, heatmap derivation) lives in extensions and in `Attribution`.
public protocol Explainer: Sendable {
    /// The method's registered name, e.g. "gradcam".
    static var method: String { get }
    /// The parameters that change the result, canonicalised (sorted keys) for cache keys.
    var parameters: [String: String] { get }
    /// A short method card: what the heatmap means, what it costs, where it misleads.
    static var card: MethodCard { get }
    /// Computes the raw attribution (DESIGN.md §3) for one request.
    func explain(_ request: ExplanationRequest) throws -> Attribution
    /// Tensors the method reads from the forward pass (a CAM layer), so that a shared pass keeps them.
    func taps(for model: Model) throws -> [String]
}

extension Explainer {
    public var method: String { Self.method }
    public func taps(for model: Model) throws -> [String] { [] }
}

/// The text a report shows beside a method's overlays.
public struct MethodCard: Sendable {
    public let title: String
    public let meaning: String
    public let cost: String
    public let limits: String
}

/// An explainer failure that a user can act on (bad layer, bad target, bad parameter).
public struct ExplainerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
