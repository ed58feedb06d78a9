import Foundation
import TestSupport
import XCTest
@testable import Pipeline

/// Seeded mutation fuzzing of the manifest parser (docs/limits.md): every mutated manifest
/// either parses or throws an error that names the file; a crash or a hang fails the run.
final class ManifestFuzzTests: XCTestCase {
    func testMutatedManifestsParseOrThrow() throws {
        var mutator = Mutator(seed: 11)
        var parsed = 0, refused = 0
        for seed in ["pipelines/demo.yaml", "pipelines/trust-review.yaml", "pipelines/randomization.yaml"] {
            let path = Support.repo(seed)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            for _ in 0..<400 {
                let text = String(decoding: mutator.mutate(bytes), as: UTF8.self)
                do {
                    _ = try ManifestParser.parse(text, file: path, baseDirectory: Support.repo("pipelines"), environment: [:])
                    parsed += 1
                } catch {
                    refused += 1
                    XCTAssertTrue("\(error)".contains(seed.split(separator: "/").last!), "the error names the file: \(error)")
                }
            }
        }
        print("fuzz: \(parsed) mutated manifests parsed, \(refused) refused")
        XCTAssertGreaterThan(refused, 0)
    }
}
