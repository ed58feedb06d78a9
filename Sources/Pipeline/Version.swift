/// Version strings that enter reports and cache keys.
public enum CandelaVersion {
    /// The release of Candela.
    public static let release = "0.1.0"
    /// Bumped whenever engine or explainer numerics change, so that cached results are recomputed.
    /// engine-2: convolutions by implicit GEMM and Winograd F(2×2, 3×3) (sums in another order, so
    /// heatmaps differ from engine-1's in the last bits), and a store made by earlier development
    /// builds is not trusted (one held LRP randomization values its code no longer gives).
    /// engine-3: a single 7 × 7 image's 3 × 3 convolutions (16 Winograd tiles; 24 were needed
    /// before) run by Winograd, so resnet18's layer4 at batch 1 sums in another order; inference
    /// passes add residual connections inside the convolution's store, and a batch of one goes
    /// through a fully connected layer by Candela's matrix-vector kernel (rounding differs).
    /// engine-4: 1 × 1 convolutions on planes of at most 256 pixels with at least 64 input
    /// channels run with output channels along the vector, summing all channels in one pass
    /// (MobileNetV2's 14 × 14 and 7 × 7 layers round differently).
    /// engine-5: heatmaps carry what the report draws beyond the [0,1] map (signed maps of the
    /// signed methods, LIME's and RISE's diagnostics, the deletion/insertion/randomization
    /// curves); a heatmap cached before them would be reused without them for good.
    public static let engine = "engine-5"
}
