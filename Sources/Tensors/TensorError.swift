/// An error raised by a kernel or a tensor file, with a message a user can act on.
public struct TensorError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
