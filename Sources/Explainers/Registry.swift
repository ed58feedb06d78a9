/// Explainers by method name, built from `key=value` parameters (the same keys on the command
/// line's `--set` and in a manifest).
public enum ExplainerRegistry {
    /// Every method, one line each. Adding a method is its file (a value conforming to
    /// `Explainer` and `RegisteredExplainer`) and one line here.
    static let registered: [any RegisteredExplainer.Type] = [
        GradientExplainer.self,
        SaliencyExplainer.self,
        InputXGradientExplainer.self,
        IntegratedGradientsExplainer.self,
        SmoothGradExplainer.self,
        GuidedBackpropExplainer.self,
        DeconvnetExplainer.self,
        GradCAMExplainer.self,
        GradCAMPlusPlusExplainer.self,
        ScoreCAMExplainer.self,
        OcclusionExplainer.self,
        RISEExplainer.self,
        LIMEExplainer.self,
        LRPExplainer.self,
        ActivationMaxExplainer.self,
    ]

    static func entry(_ method: String) -> (any RegisteredExplainer.Type)? { registered.first { $0.method == method } }

    /// Registered method names.
    public static var methods: [String] { registered.map { $0.method } }

    /// The method card of a registered method.
    public static func card(_ method: String) -> MethodCard? { entry(method)?.card }

    /// Builds an explainer; unknown methods and parameters are errors that list what is allowed.
    public static func make(method: String, parameters: [String: String] = [:]) throws -> any Explainer {
        guard let type = entry(method) else {
            let hint = suggestion(for: method, among: methods).map { " (did you mean '\($0)'?)" } ?? ""
            throw ExplainerError("unknown method '\(method)'\(hint); known methods: \(methods.joined(separator: ", "))")
        }
        let keys = type.parameterKeys
        for k in parameters.keys.sorted() where !keys.contains(k) {
            let list = keys.isEmpty ? "it takes no parameters" : "allowed: \(keys.sorted().joined(separator: ", "))"
            throw ExplainerError("method '\(method)' has no parameter '\(k)' (\(list))")
        }
        return try type.make(Parameters(method: method, values: parameters))
    }

    /// CAM methods: their maps live at a layer, whose `layer` defaults to the model's
    /// `cam_layer` in a manifest.
    public static func usesLayer(_ method: String) -> Bool { entry(method)?.usesLayer ?? false }
}

/// What the registry needs of a method besides `Explainer`: the parameters it accepts and how
/// to build it from them.
protocol RegisteredExplainer: Explainer {
    static var parameterKeys: Set<String> { get }
    static func make(_ p: Parameters) throws -> any Explainer
    static var usesLayer: Bool { get }
}

extension RegisteredExplainer {
    static var usesLayer: Bool { false }
}

/// The closest candidate by edit distance, when it is close enough to be a likely typo.
public func suggestion(for word: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var prev = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
    let w = Array(word.lowercased())
    let best = candidates.map { ($0, distance(w, Array($0.lowercased()))) }.min { $0.1 < $1.1 }
    guard let (c, d) = best, d <= max(2, w.count / 3) else { return nil }
    return c
}
