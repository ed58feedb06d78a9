import Tensors

/// The attributes of one ONNX node, decoded once at load time.
public struct Attributes: Sendable {
    enum Value: Sendable {
        case int(Int)
        case float(Float)
        case string(String)
        case ints([Int])
        case floats([Float])
        case tensor(Tensor)
    }
    var values: [String: Value] = [:]

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
