/// Version strings that enter reports and cache keys.
public enum CandelaVersion {
    /// The release of Candela.
    public static let release = "0.1.0"
    /// Bumped whenever engine or explainer numerics change, so that cached results are recomputed.
    public static let engine = "engine-1"
}
