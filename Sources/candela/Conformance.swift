import ArgumentParser
import Engine
import Foundation
import Tensors

/// `candela conformance DIR`: runs ONNX's own operator node tests and the light model-zoo CNNs
/// written by tools/conformance/write_node_tests.py, and prints pass counts per operator.
struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs the ONNX backend node tests and light zoo models written by tools/conformance/write_node_tests.py.",
        discussion: "Exit status 1 when a test of a supported operator fails. Tests that need an operator or a variant Candela does not support are counted as unsupported, never hidden.")

    /// The operators the engine issue names; every node test of these must pass.
    static let targetOperators = """
        Conv BatchNormalization Relu LeakyRelu PRelu Elu Selu Sigmoid Tanh Clip HardSigmoid HardSwish Softmax LogSoftmax \
        Add Sub Mul Div Sum Max Min Pow Sqrt Exp Log Neg Abs Reciprocal Erf MaxPool AveragePool GlobalAveragePool \
        GlobalMaxPool LRN Flatten Reshape Transpose Squeeze Unsqueeze Concat Split Slice Gather Shape ConstantOfShape \
        Constant Cast Expand Pad Identity Dropout Gemm MatMul ReduceMean ReduceSum LayerNormalization
        """.split(separator: " ").map(String.init)

    @Argument(help: "Folder with node/ and light/ (from write_node_tests.py).") var directory: String
    @Option(help: "Only tests of these operators (comma-separated).") var ops: String?
    @Flag(help: "Print every failing and unsupported test with its reason.") var verbose = false
    @Flag(help: "Also check each operator's backward against central finite differences on the node tests' inputs.")
    var gradients = false

    struct Tally { var passed = 0, failed = 0, unsupported = 0, otherOps = 0 }

    @Flag(help: ArgumentHelp("Run the node tests and the zoo once per kernel path this CPU runs (fastest first; --gradients on the first only).",
                             discussion: "Overrides --kernel; --kernel-set applies to every path."))
    var everyKernel = false

    @OptionGroup var kernelFlags: KernelFlags

    func run() throws {
        let options = try kernelFlags.kernels()
        let paths = everyKernel ? Array(KernelOptions.supportedPaths.reversed()) : [options.path]
        var passed = 0, failed = 0
        for (i, path) in paths.enumerated() {
            if paths.count > 1 { print("== kernel path \(path.rawValue)") }
            let result = try runSuite(gradients: gradients && i == 0, kernels: options.with { $0.path = path })
            passed += result.passed
            failed += result.failed
        }
        if paths.count > 1 { print("paths: \(paths.map(\.rawValue).joined(separator: ", ")) on \(CPU.summary)") }
        print("conformance: \(passed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode.failure }
    }

    /// The node tests (with their gradients when asked) and the zoo on `kernels`.
    func runSuite(gradients: Bool, kernels: KernelOptions) throws -> (passed: Int, failed: Int) {
        let targets = ops.map { $0.split(separator: ",").map(String.init) } ?? Conformance.targetOperators
        let fm = FileManager.default
        let nodeDir = "\(directory)/node"
        let tests = (try? fm.contentsOfDirectory(atPath: nodeDir).sorted()) ?? []
        guard !tests.isEmpty else { throw ValidationError("\(nodeDir): no node tests; run tools/conformance/write_node_tests.py first") }
        var tally: [String: Tally] = [:]
        var failures: [String] = []
        var unsupported: [String] = []
        for test in tests {
            let dir = "\(nodeDir)/\(test)"
            guard let data = fm.contents(atPath: "\(dir)/meta.json"),
                  let meta = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let testOps = meta["ops"] as? [String] else { continue }
            let mine = testOps.filter(targets.contains)
            guard !mine.isEmpty else { continue }
            let others = testOps.filter { !Conformance.targetOperators.contains($0) }
            if !others.isEmpty {
                for op in mine { tally[op, default: Tally()].otherOps += 1 }
                continue
            }
            let outcome = runNodeTest(dir: dir, meta: meta, kernels: kernels)
            for op in mine {
                switch outcome {
                case .pass: tally[op, default: Tally()].passed += 1
                case .fail: tally[op, default: Tally()].failed += 1
                case .unsupported: tally[op, default: Tally()].unsupported += 1
                }
            }
            switch outcome {
            case .fail(let why): failures.append("\(test): \(why)")
            case .unsupported(let why): unsupported.append("\(test): \(why)")
            case .pass: break
            }
        }
        func row(_ cells: [String]) -> String {
            cells[0].padding(toLength: 20, withPad: " ", startingAt: 0)
                + cells.dropFirst().map { String(repeating: " ", count: max(0, 12 - $0.count)) + $0 }.joined()
        }
        print(row(["operator", "pass", "fail", "unsupported", "other-ops"]))
        var total = Tally()
        for op in targets {
            let t = tally[op] ?? Tally()
            total.passed += t.passed; total.failed += t.failed; total.unsupported += t.unsupported
            print(row([op, "\(t.passed)", "\(t.failed)", "\(t.unsupported)", "\(t.otherOps)"]))
        }
        if verbose || failures.count <= 40 { for f in failures { print("FAIL \(f)") } }
        var gradientFailures = 0
        if gradients {
            gradientFailures = checkGradients(tests: tests, nodeDir: nodeDir, targets: targets, kernels: kernels)
        }
        if verbose { for u in unsupported { print("UNSUPPORTED \(u)") } }

        var zooPassed = 0, zooFailed = 0
        let lightDir = "\(directory)/light"
        for file in ((try? fm.contentsOfDirectory(atPath: lightDir)) ?? []).sorted() where file.hasSuffix(".onnx") {
            let stem = String(file.dropLast(5))
            do {
                let start = Date()
                let failures = try runZooCase(dir: lightDir, stem: stem, kernels: kernels)
                if failures.isEmpty { zooPassed += 1 } else { zooFailed += 1 }
                print("zoo \(stem.padding(toLength: 30, withPad: " ", startingAt: 0)) \(failures.isEmpty ? "pass" : "FAIL")  "
                      + String(format: "(%.2f s)", Date().timeIntervalSince(start))
                      + (failures.isEmpty ? "" : "  " + failures.joined(separator: "; ")))
            } catch {
                zooFailed += 1
                print("zoo \(stem) FAIL \(error)")
            }
        }
        print("unsupported variants: \(total.unsupported) (listed with --verbose)")
        let failed = total.failed + zooFailed + gradientFailures
        print("kernels \(kernels): \(total.passed + zooPassed) passed, \(failed) failed")
        return (total.passed + zooPassed, failed)
    }

    enum Outcome { case pass, fail(String), unsupported(String) }

    /// One light zoo case written by write_node_tests.py: STEM.onnx, STEM.input.npy and
    /// STEM.checks.json naming the tensors to compare (graph outputs or inner tensors, tapped),
    /// each with its expected array and tolerance. "element" scale: |y - e| <= atol + rtol |e|
    /// everywhere; "max" scale: |y - e| <= atol + rtol max|e| (logits of order 1e21, whose
    /// rounding depends on the summation order). Returns the failed checks, described.
    func runZooCase(dir: String, stem: String, kernels: KernelOptions) throws -> [String] {
        let metaPath = "\(dir)/\(stem).checks.json"
        guard let data = FileManager.default.contents(atPath: metaPath),
              let meta = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let input = meta["input"] as? String, let checks = meta["checks"] as? [[String: Any]], !checks.isEmpty else {
            throw ValidationError("\(metaPath): missing or not a zoo case description; rerun tools/conformance/write_node_tests.py")
        }
        let model = try Model(path: "\(dir)/\(stem).onnx", kernels: kernels)
        let x = try NPY.read("\(dir)/\(stem).input.npy")
        let names = checks.compactMap { $0["tensor"] as? String }
        let pass = try model.run([input: x], taps: names, keepAll: false)
        var failures: [String] = []
        for check in checks {
            guard let name = check["tensor"] as? String, let file = check["file"] as? String,
                  let rtol = (check["rtol"] as? NSNumber)?.floatValue, let atol = (check["atol"] as? NSNumber)?.floatValue else {
                throw ValidationError("\(metaPath): a check lacks tensor, file, rtol or atol")
            }
            let expected = try NPY.read("\(dir)/\(file)")
            let y = try pass.value(name)
            guard y.shape == expected.shape else {
                failures.append("'\(name)' has shape \(y.shape), expected \(expected.shape)")
                continue
            }
            let scale = (check["scale"] as? String) == "max" ? expected.data.reduce(0) { max($0, abs($1)) } : nil
            var worst: Float = 0, worstRatio: Float = 0
            for (a, e) in zip(y.data, expected.data) {
                let diff = abs(a - e)
                let allowed = atol + rtol * (scale ?? abs(e))
                if !(diff <= allowed) { worstRatio = max(worstRatio, diff.isNaN ? .infinity : diff / max(allowed, .leastNormalMagnitude)) }
                worst = max(worst, diff.isNaN ? .infinity : diff)
            }
            if worstRatio > 0 {
                failures.append("'\(name)' max |diff| \(worst), \(worstRatio)x the tolerance")
            }
        }
        return failures
    }

    /// Inputs whose gradient the engine computes (data inputs), by operator; others: input 0.
    static let differentiatedInputs: [String: [Int]] = [
        "Add": [0, 1], "Sub": [0, 1], "Mul": [0, 1], "Div": [0, 1], "Pow": [0, 1],
        "Sum": [0, 1, 2, 3], "Max": [0, 1, 2, 3], "Min": [0, 1, 2, 3], "Concat": [0, 1, 2, 3, 4],
    ]
    /// Operators without a gradient to check (integer outputs, shapes, constants).
    static let notDifferentiable: Set<String> = ["Shape", "ConstantOfShape", "Constant", "Cast"]

    /// For every single-node float32 test of a target operator: the backward pass (vector-Jacobian
    /// product with a random output weighting) against central differences of ⟨y, w⟩.
    /// Returns the number of failures; prints a table per operator.
    func checkGradients(tests: [String], nodeDir: String, targets: [String], kernels: KernelOptions) -> Int {
        var passed: [String: Int] = [:], failed: [String: Int] = [:], skipped: [String: Int] = [:]
        var messages: [String] = []
        var rng = SeededGenerator(seed: 2026) // the same sampled coordinates on every run
        for test in tests {
            let dir = "\(nodeDir)/\(test)"
            guard let data = FileManager.default.contents(atPath: "\(dir)/meta.json"),
                  let meta = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let ops = meta["ops"] as? [String], ops.count == 1, let op = ops.first, targets.contains(op),
                  !Conformance.notDifferentiable.contains(op), test.hasSuffix("_expanded") == false,
                  let names = meta["inputs"] as? [String], let dtypes = meta["input_dtypes"] as? [String],
                  let outputs = meta["outputs"] as? [String], let out = outputs.first else { continue }
            guard case .pass = runNodeTest(dir: dir, meta: meta, kernels: kernels) else { continue }
            let indices = (Conformance.differentiatedInputs[op] ?? [0]).filter { $0 < names.count && dtypes[$0] == "float32" }
            guard !indices.isEmpty else { skipped[op, default: 0] += 1; continue }
            do {
                let model = try Model(path: "\(dir)/model.onnx", optimize: false, kernels: kernels)
                var feeds: [String: Tensor] = [:]
                for (i, name) in names.enumerated() { feeds[name] = try NPY.read("\(dir)/input_\(i).npy") }
                let pass = try model.run(feeds)
                let y = try pass.value(out)
                let w = Tensor(shape: y.shape, data: (0..<y.count).map { _ in Float.random(in: -1...1, using: &rng) })
                let wrt = indices.map { names[$0] }
                let analytic = try model.backward(pass, seeds: [out: w], wrt: wrt)
                var worst = 0.0
                for name in wrt {
                    let x = feeds[name]!
                    var probe = feeds
                    var num = 0.0, den = 0.0
                    let base = dot(try model.run(feeds, keepAll: false).values[out]!, w)
                    // Up to 64 coordinates per input, chosen by a seeded generator: enough to catch a wrong
                    // backward, and it keeps the whole check to about a minute in a debug build.
                    let coordinates = x.count <= 64 ? Array(0..<x.count) : (0..<64).map { _ in Int.random(in: 0..<x.count, using: &rng) }
                    for i in coordinates {
                        // A step well above float32 resolution at this magnitude.
                        let h = max(Float(1e-3), 16 * x.data[i].ulp)
                        var up = x, down = x
                        up.data[i] += h; down.data[i] -= h
                        probe[name] = up
                        let fu = dot(try model.run(probe, keepAll: false).values[out]!, w)
                        probe[name] = down
                        let fd = dot(try model.run(probe, keepAll: false).values[out]!, w)
                        let central = (fu - fd) / Double(up.data[i] - down.data[i])
                        let right = (fu - base) / Double(up.data[i] - x.data[i])
                        let left = (base - fd) / Double(x.data[i] - down.data[i])
                        // At a kink (ReLU at 0, a max-pool tie) any one-sided derivative is a valid gradient.
                        let a = Double(analytic[name]!.data[i])
                        let e = min(abs(a - central), abs(a - right), abs(a - left))
                        num += e * e
                        den += central * central
                    }
                    worst = max(worst, (num / max(den, 1e-12)).squareRoot())
                }
                if worst <= 1e-2 {
                    passed[op, default: 0] += 1
                } else {
                    failed[op, default: 0] += 1
                    messages.append("\(test): relative L2 error \(worst)")
                }
            } catch let e as EngineError where e.isUnsupported {
                skipped[op, default: 0] += 1
                if verbose { messages.append("\(test): no backward (\(e.description))") }
            } catch {
                failed[op, default: 0] += 1
                messages.append("\(test): \(error)")
            }
        }
        print("gradient checks (backward vs central differences):")
        for op in targets where passed[op] != nil || failed[op] != nil || skipped[op] != nil {
            print("  \(op.padding(toLength: 20, withPad: " ", startingAt: 0)) \(passed[op] ?? 0) passed, \(failed[op] ?? 0) failed, \(skipped[op] ?? 0) not checked")
        }
        for m in messages { print("GRADIENT \(m)") }
        return failed.values.reduce(0, +)
    }

    func dot(_ a: Tensor, _ b: Tensor) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += Double(a.data[i]) * Double(b.data[i]) }
        return s
    }

    func runNodeTest(dir: String, meta: [String: Any], kernels: KernelOptions) -> Outcome {
        let inputNames = meta["inputs"] as? [String] ?? []
        let outputNames = meta["outputs"] as? [String] ?? []
        let rtol = Float(meta["rtol"] as? Double ?? 1e-3), atol = Float(meta["atol"] as? Double ?? 1e-7)
        do {
            let model = try Model(path: "\(dir)/model.onnx", kernels: kernels)
            var feeds: [String: Tensor] = [:]
            for (i, name) in inputNames.enumerated() { feeds[name] = try NPY.read("\(dir)/input_\(i).npy") }
            let pass = try model.run(feeds)
            for (i, name) in outputNames.enumerated() {
                let expected = try NPY.read("\(dir)/output_\(i).npy")
                guard let got = pass.values[name] else { return .fail("output '\(name)' not computed") }
                guard got.shape == expected.shape else { return .fail("output '\(name)' shape \(got.shape), expected \(expected.shape)") }
                if !Conformance.close(got, expected, rtol: rtol, atol: atol) {
                    return .fail("output '\(name)' max |diff| \(got.maxAbsDifference(expected))")
                }
            }
            return .pass
        } catch let e as EngineError where e.isUnsupported {
            return .unsupported(e.description)
        } catch {
            return .fail("\(error)")
        }
    }

    /// numpy.testing.assert_allclose: |a − b| ≤ atol + rtol·|b|, NaN equal to NaN.
    static func close(_ a: Tensor, _ b: Tensor, rtol: Float, atol: Float) -> Bool {
        guard a.shape == b.shape else { return false }
        for i in 0..<a.count {
            let x = a.data[i], y = b.data[i]
            if x.isNaN && y.isNaN { continue }
            if x == y { continue }
            if !(abs(x - y) <= atol + rtol * abs(y)) { return false }
        }
        return true
    }
}
