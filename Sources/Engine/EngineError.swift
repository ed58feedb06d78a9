/// An engine failure that names what went wrong: the file, and where it applies the node and operator.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// True when the input is valid ONNX that Candela does not support (yet), as opposed to a broken model.
    public private(set) var isUnsupported = false

    public init(_ description: String) { self.description = description }

    init(_ description: String, unsupported: Bool) {
        self.description = description
        self.isUnsupported = unsupported
    }

    /// The same error, marked as a valid-but-unsupported case.
    func unsupported() -> EngineError { EngineError(description, unsupported: true) }

    static func node(_ node: Node, _ message: String, unsupported: Bool = false) -> EngineError {
        EngineError("node '\(node.name)' (\(node.opType)): \(message)", unsupported: unsupported)
    }

    /// Prefixes the message, keeping whether it is an unsupported case.
    func prefixed(_ prefix: String) -> EngineError {
        EngineError(prefix + description, unsupported: isUnsupported)
    }
}
