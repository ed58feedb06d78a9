import CKernels
import Foundation
import TestSupport
import XCTest
@testable import Engine
@testable import Tensors

/// The kernel options are a value each model holds and passes down, not process state: models
/// built with different options run side by side in one process, each on its own kernels.
final class KernelOptionsTests: XCTestCase {
    /// Every path this CPU runs, fastest first, and one variant of the fastest; the demo model's
    /// logits (an inference pass, a gradient pass) on each.
    func testModelsWithDifferentOptionsRunSideBySide() throws {
        let path = Support.repo("models/demo.onnx")
        var options = KernelOptions.supportedPaths.reversed().map(KernelOptions.init(path:))
        options.append(KernelOptions.best.with { $0.winograd = false; $0.chunk = 1 })
        let models = try options.map { try Model(path: path, kernels: $0) }
        var rng = SeededRandom(seed: 61)
        let x = rng.tensor([3, 3, 64, 64], -2, 2)
        // Each model alone, one after the other.
        let alone = try models.map { try $0.forward(x) }
        let gradients = try models.map { model in
            let pass = try model.run([model.inputName: x])
            return try model.backward(pass, seeds: [model.graph.outputs[0]: Tensor(shape: [3, 2], repeating: 1)],
                                      wrt: [model.inputName])[model.inputName]!
        }
        // The same models interleaved on two threads: each gives its own bits again.
        let together = try Parallel.map(2, count: 2 * models.count) { i in try models[i % models.count].forward(x) }
        for (i, y) in together.enumerated() {
            XCTAssertEqual(y.data, alone[i % models.count].data, "\(options[i % models.count]) beside the others")
        }
        // The paths agree within tolerance, and the own kernels' paths really differ from
        // OpenBLAS's (Winograd's sums round differently from im2col's).
        let reference = try XCTUnwrap(options.firstIndex { $0.path == .openblas })
        for (i, o) in options.enumerated() {
            XCTAssertEqual(models[i].kernels, o)
            XCTAssertLessThan(alone[i].maxAbsDifference(alone[reference]), 1e-4, "\(o)")
            XCTAssertLessThan(FiniteDifference.relativeError(gradients[i], gradients[reference]), 1e-4, "\(o) gradient")
            if o.path != .openblas && o.winograd {
                XCTAssertNotEqual(alone[i].data, alone[reference].data, "\(o) ran other kernels than OpenBLAS's")
            }
        }
    }

    /// A path the CPU lacks is refused by name; the settings parse and print back.
    func testCheckedOptionsAndSettings() throws {
        for path in KernelOptions.Path.allCases {
            let options = KernelOptions(path: path)
            if KernelOptions.supportedPaths.contains(path) {
                XCTAssertEqual(try options.checked(), options)
                XCTAssertLessThanOrEqual(options.level, Int32(ck_cpu_level()))
            } else {
                XCTAssertThrowsError(try options.checked()) { error in
                    XCTAssertTrue("\(error)".contains("kernel path \(path.rawValue) needs an instruction set this CPU lacks"), "\(error)")
                }
            }
        }
        var options = KernelOptions(path: .avx2)
        for setting in ["winograd=off", "winograd-tile=4", "row-bands=off", "chunk=3"] { try options.set(setting) }
        XCTAssertEqual(options.description, "avx2 winograd=off winograd-tile=4 row-bands=off chunk=3")
        XCTAssertEqual(KernelOptions(path: .openblas).level, 0)
        XCTAssertFalse(KernelOptions(path: .openblas).ownKernels)
    }
}
