import Tensors

/// One ONNX operator: a forward and, beside it, its vector-Jacobian product.
///
/// `backward` receives the forward's inputs and outputs and the gradient of each output
/// (nil where no gradient flows) and returns the gradient of each input (nil for inputs that
/// are not differentiated, such as weights: Candela explains inputs, it does not train).
protocol Operator: Sendable {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor]
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?]
}

extension Operator {
    /// The i-th input, which the operator requires.
    func required(_ inputs: [Tensor?], _ i: Int, _ what: String) throws -> Tensor {
        guard i < inputs.count, let t = inputs[i] else { throw EngineError("missing input \(i) (\(what))") }
        return t
    }
}

/// The operators Candela runs, by ONNX op type; each entry builds the operator from attributes.
enum OperatorRegistry {
    static let table: [String: @Sendable (Attributes) throws -> any Operator] = [
        "Conv": { try ConvOp($0) },
        "Relu": { _ in ReluOp() },
        "MaxPool": { try MaxPoolOp($0) },
        "GlobalAveragePool": { _ in GlobalAveragePoolOp() },
        "Flatten": { try FlattenOp($0) },
        "Gemm": { try GemmOp($0) },
        "Add": { _ in AddOp() },
        "BatchNormalization": { try BatchNormalizationOp($0) },
        "Identity": { _ in IdentityOp() },
        "Dropout": { _ in IdentityOp() },
    ]

    static var supported: [String] { table.keys.sorted() }
}
