import ArgumentParser
import Engine
import Explainers
import Foundation
import Imaging
import Pipeline
import Store
import Tensors

@main
struct Candela: ParsableCommand {
    static func main() {
        Memory.tuneMalloc()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "candela",
        abstract: "Explains image classifiers in batch: manifests, ONNX models, heatmaps, SQLite, HTML reports.",
        // The release, the numerics version that cache keys carry, and the kernel path this CPU gets.
        version: "\(CandelaVersion.release) (\(CandelaVersion.engine); kernel path \(KernelOptions.best.path.rawValue) on \(CPU.summary))",
        subcommands: [Run.self, Validate.self, Explain.self, Infer.self, Inspect.self, Bench.self, ReportCommand.self, Runs.self, Export.self, Merge.self, Visualize.self, Conformance.self, MakeSlide.self, SlideCommand.self, ReadSlide.self])
}

/// Runs a command body, turning every known error into one line on stderr and exit status 1.
func guarded(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CustomStringConvertible where !(e is CleanExit) {
        FileHandle.standardError.write(Data("candela: error: \(e.description)\n".utf8))
        throw ExitCode.failure
    }
}

/// Prints a line on stderr (logs and progress; stdout is for results).
func note(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// `key=value` pairs from repeated `--set` options; list values stay comma-separated text.
func parseSettings(_ settings: [String]) throws -> [String: String] {
    var out: [String: String] = [:]
    for s in settings {
        guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
            throw ValidationError("--set expects key=value, got '\(s)'")
        }
        out[String(s[..<eq])] = String(s[s.index(after: eq)...])
    }
    return out
}

/// Parses "a,b,c" into floats, naming the option on failure.
func parseFloats(_ text: String, count: Int, option: String) throws -> [Float] {
    let v = text.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
    guard v.count == count else { throw ValidationError("\(option) expects \(count) comma-separated numbers, got '\(text)'") }
    return v
}

/// `--kernel` and `--kernel-set`: the engine's kernel path and variant switches
/// (`KernelOptions`), for diagnosis and comparisons. Every command that runs the engine takes
/// them; results agree across paths within the engine's tolerances.
struct KernelFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Kernel path: \(KernelOptions.Path.allCases.map(\.rawValue).joined(separator: ", ")) (default: the fastest this CPU runs).",
                               valueName: "path"))
    var kernel: String?
    @Option(help: ArgumentHelp("Largest buffer a file or parameter may make Candela allocate: bytes, K/M/G/T, or a share of memory like 50% (default: half the physical memory).",
                               valueName: "size"))
    var maxMemory: String?
    @Option(name: .customLong("kernel-set"),
            help: ArgumentHelp("A kernel variant switch, repeatable: \(KernelOptions.settingsHelp).", valueName: "key=value"))
    var kernelSettings: [String] = []

    /// The options these flags name (the fastest path when `--kernel` is absent).
    private func options() throws -> KernelOptions {
        var options = KernelOptions.best
        if let kernel {
            guard let path = KernelOptions.Path(rawValue: kernel) else {
                throw ValidationError("--kernel: unknown path '\(kernel)'; choose \(KernelOptions.Path.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.path = path
        }
        for setting in kernelSettings {
            do { try options.set(setting) } catch { throw ValidationError("--kernel-set: \(error)") }
        }
        return options
    }

    /// First thing in a command's run: sets `--max-memory`'s limit and returns the kernel
    /// options, checked against this CPU, that the command hands to every model it builds.
    func kernels() throws -> KernelOptions {
        if let maxMemory {
            do { Limits.maxBytes = try Limits.parseSize(maxMemory) } catch { throw ValidationError("--max-memory: \(error)") }
        }
        do { return try options().checked() } catch let e as ValidationError { throw e } catch { throw ValidationError("--kernel: \(error)") }
    }
}
