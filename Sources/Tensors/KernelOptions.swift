import CKernels
import Foundation

/// Which kernels the engine runs: one value for the instruction-set path and every variant
/// switch of the fast kernels. It is passed down explicitly: a `Model` is built with one and
/// hands it to every operator of its passes, each `Tensors` function that chooses a kernel takes
/// it as an argument, and each C kernel entry takes its path's level (`ck_cpu_level`). The
/// command line makes one from `--kernel` and `--kernel-set`; tests make their own per case.
/// No process-wide setting and no environment variable chooses a kernel.
///
/// Every path gives results within the engine's tolerances of the reference kernel (im2col and
/// OpenBLAS); the variants (Winograd, channel-major, row bands, fusions, plans) give the same
/// bits as the path's plain kernel or are tested against it (`FastKernelTests`, the zoo in
/// `candela conformance --kernel`).
public struct KernelOptions: Sendable, Equatable, CustomStringConvertible {
    /// The instruction-set path of Candela's own kernels.
    public enum Path: String, CaseIterable, Sendable {
        /// No own kernels: convolutions by im2col and OpenBLAS, elementwise kernels in plain C.
        case openblas
        /// Own kernels with AVX2 and FMA (6x16 GEMM tile, Winograd with plain-C transforms,
        /// channel-major 1x1 and stem kernels, row-blocked depthwise and max pooling).
        case avx2
        /// Own kernels with AVX-512F (8x32 GEMM tile, Winograd, channel-major, max pooling).
        case avx512

        /// The level the C kernels take as their first argument.
        var level: Int32 { switch self { case .openblas: 0; case .avx2: 1; case .avx512: 2 } }
    }

    /// The path; `KernelOptions.best` takes the fastest this CPU runs.
    public var path: Path
    /// 3x3 stride-1 convolutions by Winograd's minimal filtering (`ck_winograd`, AVX-512 and
    /// AVX2 paths); off, they run as the implicit GEMM (`make bench` compares both).
    public var winograd = true
    /// Winograd's output tile: nil, per layer the one with fewer products, F(2x2, 3x3) or
    /// F(4x4, 3x3) (`Conv2D.winogradTile`); 2 or 4 forces that one wherever Winograd runs.
    public var winogradTile: Int? = nil
    /// Output channels along the vector for 1x1 convolutions and RGB stems where it pays
    /// (`Conv2D.channelMajor`).
    public var channelMajor = true
    /// One image's depthwise layers (alone, or after their expansion) with at least this many
    /// output rows split across threads by bands of rows instead of by channels
    /// (`Conv2D.rowBand`; nil: never).
    ///
    /// Why: the layers around a depthwise one split by pixels (a 1×1 projection takes each
    /// thread's share of the pixels, a stem its bands of rows), so with channels split the
    /// depthwise layer's output crossed between the cores: each thread's projection read half its
    /// input from the other core's cache (by count, about 1.5 MB per thread and pass on
    /// MobileNetV2's 112 × 112 and 56 × 56 blocks). With bands, each thread reads what it wrote,
    /// but its band recomputes the expansion of the rows its windows share with the other band,
    /// and a band not a multiple of the kernel's 4-row blocks wastes part of its last block:
    /// bands pay from 56 output rows on (figures in tools/bench/README.md, "Figures behind the
    /// kernels").
    public var rowBandsFrom: Int? = 56
    /// Inference passes run a SiLU in the store of the Conv before it.
    public var fuseSiLU = true
    /// Inference passes run a 1x1 expansion and the depthwise Conv after it together.
    public var fusePointwiseDepthwise = true
    /// Inference passes replay the plan the first pass at their shapes recorded.
    public var inferencePlans = true
    /// Images per chunk of a batched forward pass (nil: chosen per model).
    public var chunk: Int? = nil

    public init(path: Path) { self.path = path }

    /// The paths this CPU can run, slowest first (OpenBLAS always).
    public static var supportedPaths: [Path] { Path.allCases.filter { $0.level <= detectedLevel } }

    /// The fastest path this CPU runs, every variant on.
    public static var best: KernelOptions { KernelOptions(path: supportedPaths.last!) }

    /// The same options, after checking that this CPU runs the path; throws naming the path and
    /// the paths it runs (the command line's `--kernel`).
    public func checked() throws -> KernelOptions {
        guard KernelOptions.supportedPaths.contains(path) else {
            throw TensorError("kernel path \(path.rawValue) needs an instruction set this CPU lacks "
                              + "(it runs: \(KernelOptions.supportedPaths.map(\.rawValue).joined(separator: ", ")))")
        }
        return self
    }

    /// The level of the C kernels this path runs: 2 AVX-512, 1 AVX2, 0 none (OpenBLAS); never
    /// above what the CPU runs.
    public var level: Int32 { Swift.min(path.level, KernelOptions.detectedLevel) }

    /// Whether convolutions and products run Candela's own kernels (not the OpenBLAS path).
    public var ownKernels: Bool { level > 0 }

    /// A copy with one setting changed (tests and benchmarks: `options.with { $0.winograd = false }`).
    public func with(_ change: (inout KernelOptions) -> Void) -> KernelOptions {
        var copy = self
        change(&copy)
        return copy
    }

    /// The keys `set(_:)` takes, with their values, for help texts.
    public static let settingsHelp =
        "winograd=on|off, winograd-tile=2|4|auto, channel-major=on|off, row-bands=ROWS|off, silu=on|off, pointwise-depthwise=on|off, inference-plan=on|off, chunk=N|auto"

    /// Applies one `key=value` setting (`settingsHelp`); throws naming the key or the value.
    public mutating func set(_ setting: String) throws {
        guard let eq = setting.firstIndex(of: "=") else {
            throw TensorError("kernel setting '\(setting)': expected key=value (\(KernelOptions.settingsHelp))")
        }
        let key = String(setting[..<eq]), value = String(setting[setting.index(after: eq)...])
        func flag() throws -> Bool {
            switch value {
            case "on": return true
            case "off": return false
            default: throw TensorError("kernel setting '\(key)': '\(value)' is not on or off")
            }
        }
        func count(allowing word: String) throws -> Int? {
            if value == word { return nil }
            guard let n = Int(value), n > 0 else {
                throw TensorError("kernel setting '\(key)': '\(value)' is neither a positive integer nor \(word)")
            }
            return n
        }
        switch key {
        case "winograd": winograd = try flag()
        case "winograd-tile":
            guard value == "auto" || value == "2" || value == "4" else {
                throw TensorError("kernel setting 'winograd-tile': '\(value)' is not 2, 4 or auto")
            }
            winogradTile = Int(value)
        case "channel-major": channelMajor = try flag()
        case "row-bands": rowBandsFrom = try count(allowing: "off")
        case "silu": fuseSiLU = try flag()
        case "pointwise-depthwise": fusePointwiseDepthwise = try flag()
        case "inference-plan": inferencePlans = try flag()
        case "chunk": chunk = try count(allowing: "auto")
        default: throw TensorError("kernel setting '\(key)' is unknown (\(KernelOptions.settingsHelp))")
        }
    }

    /// The path, then the variants that differ from the defaults: "avx512", "avx2 winograd=off".
    public var description: String {
        var parts = [path.rawValue]
        let defaults = KernelOptions(path: path)
        if winograd != defaults.winograd { parts.append("winograd=off") }
        if let winogradTile { parts.append("winograd-tile=\(winogradTile)") }
        if channelMajor != defaults.channelMajor { parts.append("channel-major=off") }
        if rowBandsFrom != defaults.rowBandsFrom { parts.append("row-bands=\(rowBandsFrom.map(String.init) ?? "off")") }
        if fuseSiLU != defaults.fuseSiLU { parts.append("silu=off") }
        if fusePointwiseDepthwise != defaults.fusePointwiseDepthwise { parts.append("pointwise-depthwise=off") }
        if inferencePlans != defaults.inferencePlans { parts.append("inference-plan=off") }
        if let chunk { parts.append("chunk=\(chunk)") }
        return parts.joined(separator: " ")
    }

    /// The CPU's own level (CPUID).
    static var detectedLevel: Int32 { ck_cpu_level() }
}

/// The CPU this process runs on, as `/proc/cpuinfo` names it: benchmarks print it beside
/// every figure.
public enum CPU {
    /// The first "model name" line ("AMD EPYC", "Intel Xeon Processor"), or "unknown".
    public static let model: String = field("model name") ?? "unknown"

    /// The vector-extension flags that choose kernel paths, in the order of `/proc/cpuinfo`.
    public static let vectorFlags: [String] = {
        let wanted: Set<String> = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"]
        return (field("flags") ?? "").split(separator: " ").map(String.init).filter(wanted.contains)
    }()

    /// "AMD EPYC (avx2 fma avx512f ...)", plus a remark when CPUID tells this process less than
    /// `/proc/cpuinfo` lists (a hypervisor or tools/cpumask hiding AVX-512 or AVX2): the kernel
    /// path follows CPUID.
    public static var summary: String {
        let listed = "\(model) (\(vectorFlags.joined(separator: " ")))"
        let level = KernelOptions.detectedLevel
        if level < 2 && vectorFlags.contains("avx512f") {
            return listed + (level == 1 ? "; CPUID hides AVX-512 from this process" : "; CPUID hides AVX-512 and AVX2 from this process")
        }
        if level < 1 && vectorFlags.contains("avx2") { return listed + "; CPUID hides AVX2 from this process" }
        return listed
    }

    private static func field(_ name: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
