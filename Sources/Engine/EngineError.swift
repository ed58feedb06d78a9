/// An engine failure that names what went wrong: the file, and where it applies the node and operator.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    static func node(_ node: Node, _ message: String) -> EngineError {
        EngineError("node '\(node.name)' (\(node.opType)): \(message)")
    }
}
