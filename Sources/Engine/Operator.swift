import Tensors

/// One ONNX operator: a forward and, beside it, its vector-Jacobian product.
///
/// `backward` receives the forward's inputs and outputs and the gradient of each output
/// (nil where no gradient flows) and returns the gradient of each input (nil for inputs that
/// are not differentiated, such as weights: Candela explains inputs, it does not train).
/// Both run in a `Pass`, which says which kernels to take (the model's `KernelOptions`).
protocol Operator: Sendable {
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor]
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?]
    /// The same operator with empty caches (packed weights): each graph gets its own, since
    /// graphs built from one another (optimized, randomized) hold different weights.
    func withFreshCaches() -> any Operator
}

/// How one pass runs, handed to every operator it runs: the kernels (the model's), whether
/// no gradient will be taken through this forward, and the ReLU rule of a backward.
struct Pass: Sendable {
    /// The kernel path and variants (`Model.kernels`).
    let kernels: KernelOptions
    /// A forward whose exact values decide nothing (an inference pass, or in any pass a node
    /// whose outputs no selecting operator depends on: `Model.selectionFree`), where an
    /// operator may take a faster kernel that rounds differently (Conv's Winograd tile,
    /// `Conv2D.winogradTile`).
    var inference = false
    /// How ReLUs (separate or fused into a Conv) pass gradients back; other operators ignore it.
    var relu: ReluBackward = .gradient
}

/// How ReLUs pass gradients back: the true gradient, or the modified rules of guided
/// backpropagation (Springenberg et al. 2015, arXiv:1412.6806, Fig. 1) and the deconvnet
/// (Zeiler & Fergus 2014), with Captum's semantics: guided = relu(dy · 1[x > 0]),
/// deconvnet = relu(dy). Clip (ReLU6) and every other operator keep their ordinary gradient.
public enum ReluBackward: Sendable {
    case gradient, guided, deconvnet

    /// The rule applied to one gradient element whose ReLU input had sign `positive`.
    @inline(__always)
    func apply(_ dy: Float, positive: Bool) -> Float {
        switch self {
        case .gradient: return positive ? dy : 0
        case .guided: return positive && dy > 0 ? dy : 0
        case .deconvnet: return dy > 0 ? dy : 0
        }
    }
}

extension Operator {
    func withFreshCaches() -> any Operator { self }

    /// Operators whose vector-Jacobian product is not written yet (the backward issue) say so.
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        throw EngineError("backward is not implemented for this operator yet").unsupported()
    }

    /// The i-th input, which the operator requires.
    func required(_ inputs: [Tensor?], _ i: Int, _ what: String) throws -> Tensor {
        guard i < inputs.count, let t = inputs[i] else { throw EngineError("missing input \(i) (\(what))") }
        return t
    }
}

/// The operators Candela runs, by ONNX op type; each entry builds the operator from attributes.
enum OperatorRegistry {
    static let table: [String: @Sendable (Attributes) throws -> any Operator] = {
        var t: [String: @Sendable (Attributes) throws -> any Operator] = [
            "Conv": { try ConvOp($0) },
            "MaxPool": { try MaxPoolOp($0) },
            "AveragePool": { try AveragePoolOp($0) },
            "GlobalAveragePool": { _ in GlobalAveragePoolOp() },
            "GlobalMaxPool": { _ in GlobalMaxPoolOp() },
            "LRN": { try LRNOp($0) },
            "Flatten": { try FlattenOp($0) },
            "Gemm": { try GemmOp($0) },
            "MatMul": { _ in MatMulOp() },
            "BatchNormalization": { try BatchNormalizationOp($0) },
            "LayerNormalization": { try LayerNormalizationOp($0) },
            "Softmax": { try SoftmaxOp($0, log: false) },
            "LogSoftmax": { try SoftmaxOp($0, log: true) },
            "ReduceMean": { try ReduceOp($0, mean: true) },
            "ReduceSum": { try ReduceOp($0, mean: false) },
            "Sum": { _ in VariadicOp(kind: .sum) },
            "Max": { _ in VariadicOp(kind: .max) },
            "Min": { _ in VariadicOp(kind: .min) },
            "PRelu": { _ in PReluOp() },
            "Reshape": { try ReshapeOp($0) },
            "Transpose": { try TransposeOp($0) },
            "Squeeze": { try SqueezeOp($0, unsqueeze: false) },
            "Unsqueeze": { try SqueezeOp($0, unsqueeze: true) },
            "Concat": { try ConcatOp($0) },
            "Split": { try SplitOp($0) },
            "Slice": { try SliceOp($0) },
            "Gather": { try GatherOp($0) },
            "Shape": { try ShapeOp($0) },
            "ConstantOfShape": { try ConstantOfShapeOp($0) },
            "Cast": { try CastOp($0) },
            "Expand": { _ in ExpandOp() },
            "Pad": { try PadOp($0) },
            "Identity": { _ in IdentityOp() },
            "Dropout": { try DropoutOp($0) },
        ]
        t.merge(Activations.table) { a, _ in a }
        t.merge(BinaryOp.table) { a, _ in a }
        return t
    }()

    /// Every supported op type, sorted (`Constant` is folded into initializers at load).
    public static var supported: [String] { (Array(table.keys) + ["Constant"]).sorted() }
}
