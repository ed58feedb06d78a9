import CCrypto
import Foundation

/// SHA-256 content hashes: the identity of files (models, images) and of units of work.
/// The only file that calls libcrypto.
public enum Hashing {
    /// Lowercase hex SHA-256 of bytes.
    public static func sha256(_ data: Data) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        data.withUnsafeBytes { raw in
            _ = SHA256(raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count, &digest)
        }
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    /// SHA-256 of a string's UTF-8 bytes.
    public static func sha256(_ text: String) -> String { sha256(Data(text.utf8)) }

    /// SHA-256 of a file's bytes; an error names the file.
    public static func sha256(file path: String) throws -> String {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw PipelineError("\(path): cannot read file")
        }
        return sha256(d)
    }
}
