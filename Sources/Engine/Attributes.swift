import Tensors

/// The attributes of one ONNX node, decoded once at load time.
public struct Attributes: Sendable {
    enum Value: Sendable {
        case int(Int)
        case float(Float)
        case string(String)
        case ints([Int])
        case floats([Float])
        case tensor(Tensor, Int)
    }
    var values: [String: Value] = [:]
    /// The model's default-domain opset: operators whose signature changed read it.
    var opset: Int = 21
    /// How many inputs and outputs the node declares (Split, Dropout, MaxPool with indices).
    var inputCount = 0
    var outputCount = 1
    /// ONNX element types of the inputs (1 float, 7 int64, ...; 0 unknown), from load-time tracking.
    var inputTypes: [Int] = []

    /// True when input `i` holds an integer type (INT8...UINT64).
    func isInteger(input i: Int) -> Bool {
        i < inputTypes.count && [2, 3, 4, 5, 6, 7, 12, 13].contains(inputTypes[i])
    }

    init(opset: Int = 21, inputCount: Int = 0, outputCount: Int = 1) {
        self.opset = opset
        self.inputCount = inputCount
        self.outputCount = outputCount
    }

    func floats(_ key: String) throws -> [Float]? {
        guard let v = values[key] else { return nil }
        switch v {
        case .floats(let x): return x
        case .ints(let x): return x.map(Float.init)
        default: throw EngineError("attribute '\(key)' must be a list of floats")
        }
    }

    func tensor(_ key: String) throws -> Tensor? {
        guard let v = values[key] else { return nil }
        guard case .tensor(let t, _) = v else { throw EngineError("attribute '\(key)' must be a tensor") }
        return t
    }

    func int(_ key: String, default d: Int) throws -> Int {
        guard let v = values[key] else { return d }
        guard case .int(let x) = v else { throw EngineError("attribute '\(key)' must be an integer") }
        return x
    }

    func float(_ key: String, default d: Float) throws -> Float {
        guard let v = values[key] else { return d }
        switch v {
        case .float(let x): return x
        case .int(let x): return Float(x)
        default: throw EngineError("attribute '\(key)' must be a float")
        }
    }

    func ints(_ key: String) throws -> [Int]? {
        guard let v = values[key] else { return nil }
        guard case .ints(let x) = v else { throw EngineError("attribute '\(key)' must be a list of integers") }
        return x
    }

    func string(_ key: String, default d: String) throws -> String {
        guard let v = values[key] else { return d }
        guard case .string(let x) = v else { throw EngineError("attribute '\(key)' must be a string") }
        return x
    }
}
