#ifndef CKERNELS_H
#define CKERNELS_H
#include <stddef.h>

/// The highest kernel level this CPU runs: 2 = AVX-512F, 1 = AVX2+FMA, 0 = neither. Checked once
/// with the CPU's feature flags (CPUID).
///
/// Every kernel entry takes the level to run as its first argument (the caller's
/// `KernelOptions`: no kernel reads a process-wide setting). A level above this one is never
/// run: entries that return a status return -1 (the caller then takes its fallback), the others
/// run the highest level the CPU has below the one asked for.
int ck_cpu_level(void);

/// y[j] = alpha * (op(B) x)[j] + beta * y[j] for j in [n0, n1): a matrix-vector product on the
/// AVX-512 level (x has k contiguous entries; op(B) is (n, k): B itself, row stride ldb, when
/// trans, else Bᵀ with B (k, n)). With beta = 0, y is not read. Single-threaded; callers split
/// [n0, n1). Returns 0, or -1 below the AVX-512 level (the caller then uses BLAS).
int ck_sgemv(int level, int trans, int n0, int n1, int k, float alpha, const float *b, int ldb, const float *x, float beta, float *y);

/// C = alpha * op(A) * op(B) + beta * C for row-major matrices (op(A) m x k, op(B) k x n,
/// C m x n; lda, ldb, ldc the stored row strides; op = transpose when transA / transB), on the
/// rows [m0, m1) and columns [n0, n1) of C only, so that callers can split one product across
/// threads, with the tile of `level`. Single-threaded. Returns 0, or -1 when there is no kernel
/// for `level` on this CPU or the packing buffers cannot be allocated (the caller then uses
/// OpenBLAS).
int ck_sgemm(int level, int transA, int transB, int m0, int m1, int n0, int n1, int k, float alpha,
             const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);

/// Activations a convolution can apply to its output before storing it.
enum { CK_ACT_NONE = 0, CK_ACT_RELU = 1, CK_ACT_CLIP = 2, CK_ACT_SILU = 3 };

/// The geometry of one 2-D convolution over one image and one group: input (c, h, w), kernel
/// (kh, kw), strides, top/left zero padding, dilations and the output size (oh, ow).
typedef struct {
    int c, h, w;
    int kh, kw;
    int sh, sw;
    int pt, pl;
    int dh, dw;
    int oh, ow;
} ck_conv_geometry;

/// Number of floats `ck_pack_weights` writes for an m x k weight matrix at `level`.
size_t ck_packed_weights_count(int level, int m, int k);

/// Packs a row-major m x k weight matrix (a convolution's (M, C*kh*kw) weights) once, in the
/// order the `level` kernel reads it: for each depth block of KC, MR-row panels, k-major.
void ck_pack_weights(int level, int m, int k, const float *a, float *out);

/// y[m0:m1, n0:n1] = act(W * im2col(x) + bias) on those rows and columns, the columns being
/// output pixels (row-major over oh x ow), without materialising im2col: its columns are packed
/// straight from x. `packed` comes from `ck_pack_weights` at the same level with m rows and
/// k = c*kh*kw; m0 must be a multiple of the level's tile height (8 for AVX-512, 6 for AVX2, see
/// `ck_tile_rows`); y is (m, oh*ow) with row stride ldy; bias has m entries or is NULL.
/// Single-threaded; callers split rows, columns or images across threads. Returns 0, or -1
/// without a kernel for `level` or when `level` is above `ck_cpu_level` (a kernel never runs
/// instructions the CPU lacks).
/// With `add_output`, y's existing contents are added to the sums before the activation
/// (y = act(W * im2col(x) + bias + y): a residual connection fused into the convolution).
int ck_conv(int level, const float *packed, int m, int m0, int m1, const ck_conv_geometry *g, const float *x,
            int n0, int n1, const float *bias, int add_output, int act, float lo, float hi, float *y, int ldy);

/// Floats `ck_pack_channel_panels` writes for an m x k weight matrix: m rounded up to 32, times k.
size_t ck_channel_panels_count(int m, int k);

/// Packs a row-major m x k weight matrix (a 1x1 convolution's (M, C) weights) transposed, in
/// panels of 32 output channels, depth-major: panel j holds, for each depth row p, the weights
/// w[32j + c][p] of its 32 channels (zero past m).
void ck_pack_channel_panels(int m, int k, const float *w, float *out);

/// A 1x1, stride-1, unpadded convolution of one image with the output channels along the vector
/// (for small planes, where pixels do not fill the vectors): y (m, plane) = act(W x + bias) on
/// channels [c0, c1) (c0 a multiple of 32) and pixels [n0, n1), x (k, plane). `panels` from
/// `ck_pack_channel_panels`. `add_output` as for `ck_conv`. Single-threaded. Returns 0, or -1
/// without AVX2 (`level` below 1 or above `ck_cpu_level`) or without scratch memory (depth
/// over 128). Levels 2 and 1 give the same bits (SiLU aside).
int ck_conv1x1_channels(int level, const float *panels, int m, int k, int c0, int c1, const float *x, int plane,
                        int n0, int n1, const float *bias, int add_output, int act, float lo, float hi, float *y);

/// A convolution of one image (one group) with the output channels along the vector, for
/// layers of few input channels (an RGB stem): y (m, oh, ow) = act(conv(x, w) + bias) on channels
/// [c0, c1) (c0 a multiple of 32) and output rows [oy0, oy1), x (c, h, w). `panels` from
/// `ck_pack_channel_panels` with k = c * kh * kw. `add_output` as for `ck_conv`. Tiles of 8
/// pixels x 32 channels at level 2, 6 x 16 at level 1 (the same bits). Single-threaded.
/// Returns 0, or -1 without AVX2 (`level` below 1 or above `ck_cpu_level`), scratch
/// memory, or for more than 1024 taps (the caller then uses `ck_conv`).
int ck_conv_channels(int level, const float *panels, int m, int c0, int c1, const ck_conv_geometry *g, const float *x,
                     int oy0, int oy1, const float *bias, int add_output, int act, float lo, float hi, float *y);

/// Tests only: while `on`, every kernel's scratch allocation fails (as when memory runs out),
/// so that the callers' fallbacks can be checked.
void ck_fail_scratch_for_tests(int on);

/// The tile height (rows of C per micro-kernel call) at `level`, 0 when there is no kernel.
int ck_tile_rows(int level);

/// `channels` consecutive channels of a depthwise convolution, computed directly: for each c,
/// y[c] (oh, ow) = act(conv(x[c], w[c]) + bias[c]) with x[c] (h, w) and a kh x kw filter w[c]
/// (g->c is ignored; bias may be NULL).
void ck_depthwise(int level, const ck_conv_geometry *g, const float *x, const float *w, const float *bias, int channels,
                  int act, float lo, float hi, float *y);

/// Output rows [oy0, oy1) of `ck_depthwise` on `channels` channels: the planes of x lie
/// `x_plane` floats apart (h * w for a whole tensor), and only the input rows the band reads are
/// read; y (channels, oh, ow) keeps whole planes and gets only the band's rows. With oy0 a
/// multiple of `CK_DEPTHWISE_BAND_MULTIPLE` every output has the same bits as from
/// `ck_depthwise` on the whole plane.
void ck_depthwise_rows(int level, const ck_conv_geometry *g, const float *x, size_t x_plane, const float *w, const float *bias,
                       int channels, int oy0, int oy1, int act, float lo, float hi, float *y);

/// What a band of `ck_depthwise_rows` or `ck_pointwise_depthwise` must start at a multiple of
/// to give the whole plane's bits: the 3x3 and 5x5 kernels split each sum into two
/// accumulators by the parity of the tap row plus the output row's place in its block of rows,
/// and blocks start at the band's first row.
enum { CK_DEPTHWISE_BAND_MULTIPLE = 2 };

/// Channels [c0, c1) and output rows [oy0, oy1) of a 1x1 expansion followed by a depthwise
/// convolution, for one image: y[c] (oh, ow) = dw_act(depthwise(t[c], w[c]) + dw_bias[c]) with
/// t = act(W x + bias) computed for those channels and the input rows those output rows read
/// only, into a per-thread scratch. x (k, h, w); the expansion's weights `packed` as for
/// `ck_conv1x1_channels` (panels != 0, c0 a multiple of 32) or `ck_conv` (panels == 0, c0 a
/// multiple of `ck_tile_rows`) with m rows; `pointwise` its geometry (1x1, stride 1, no
/// padding); `depthwise` the depthwise one (its c ignored); w (m, kh, kw); y (m, oh, ow).
/// The same bits as the two layers one after the other when oy0 is a multiple of
/// `CK_DEPTHWISE_BAND_MULTIPLE` (a band recomputes the expansion of the rows its windows reach
/// beyond it: the same sums). Single-threaded. Returns 0, or -1 without a kernel for `level` or
/// without scratch memory.
int ck_pointwise_depthwise(int level, int panels, const float *packed, int m, int k, int c0, int c1, int oy0, int oy1,
                           const ck_conv_geometry *pointwise, const float *x, const float *bias, int act, float lo,
                           float hi, const ck_conv_geometry *depthwise, const float *w, const float *dw_bias, int dw_act,
                           float dw_lo, float dw_hi, float *y);

/// Floats `ck_winograd_pack_weights` writes for an (m, c, 3, 3) filter bank at `level` for
/// F(tile x tile, 3x3), tile 2 or 4.
size_t ck_winograd_weights_count(int level, int tile, int m, int c);

/// The (tile + 2)² transformed filter matrices U_ξ = (G g Gᵀ)_ξ of F(tile x tile, 3x3) (tile 2:
/// 16, tile 4: 36), each (m, c), packed for the GEMM kernel of `level` (2: AVX-512, 1: AVX2).
/// `scratch` holds (tile + 2)²·m·c floats.
void ck_winograd_pack_weights(int level, int tile, int m, int c, const float *w, float *out, float *scratch);

/// A 3x3, stride-1, undilated convolution of a batch of `images` by F(tile x tile, 3x3), tile 2
/// or 4: x (images, c, h, w) -> y (images, m, oh, ow) = act(conv(x, w) + bias), on output rows
/// [m0, m1) (m0 a multiple of 8) and tile x tile output tiles [t0, t1), tiles numbered row-major
/// over ceil(oh/tile) x ceil(ow/tile) within an image and image after image (so small images
/// share kernel panels). `packed` from `ck_winograd_pack_weights` at the same `level` and `tile`.
/// F(2x2, 3x3): transforms with AVX-512 masked loads and permutes (32 tiles a block), or in
/// plain C around the AVX2 GEMM tile (16 tiles a block); F(4x4, 3x3): plain-C transforms at
/// either level's panel width. Single-threaded. Returns 0, or -1 for a level above the one in
/// force, another tile, or without scratch memory (the caller then uses `ck_conv`). `add_output`
/// as for `ck_conv`.
int ck_winograd(int level, int tile, const float *packed, int m, int m0, int m1, const ck_conv_geometry *g, const float *x,
                int images, int t0, int t1, const float *bias, int add_output, int act, float lo, float hi, float *y);

/// 2-D max pooling of `channels` consecutive planes with the same sliding-window loop as
/// `ck_depthwise` (AVX-512: kernels of up to 64 taps; AVX2: 3x3 windows at stride 1 or 2, the
/// row-blocked loop on padded rows): y[c] (oh, ow) = max over each window of
/// x[c] (h, w), padding never winning, a NaN never replacing a value (an all-NaN or all-padding
/// window gives -inf). No indices. Returns 0, or -1 when the CPU or the kernel size does not
/// allow it (the caller then uses `ck_pool2d`).
int ck_maxpool2d(int level, const ck_conv_geometry *g, const float *x, int channels, float *y);

/// The adjoint of im2col for one image and group: x (c, h, w) += col (c*kh*kw, oh*ow) folded back,
/// overlapping taps added (the input gradient's last step at strides other than 1).
void ck_col2im(const ck_conv_geometry *g, const float *col, float *x);

/// Pooling kinds of `ck_pool2d`.
enum { CK_POOL_MAX = 0, CK_POOL_AVERAGE = 1, CK_POOL_AVERAGE_INCLUDE_PAD = 2 };

/// One plane of 2-D pooling. For output row oy, `rows[3*oy ...]` holds the first input row of
/// the window that lies inside the input, how many of its taps do (at `row_step` apart) and how
/// many lie inside the input or its padding; `cols` the same for output columns. Max takes the
/// first maximum in row-major tap order (-inf and index -1 for a window of padding only) and,
/// when `argmax` is not NULL, stores its flat index plus `argmax_base`; average divides by the
/// taps inside (or inside the padding too with CK_POOL_AVERAGE_INCLUDE_PAD).
void ck_pool2d(const float *x, int w, int oh, int ow, const int *rows, int row_step,
               const int *cols, int col_step, int kind, float *y, long long *argmax, long long argmax_base);

/// Runs this program again (execv of /proc/self/exe with the same arguments) with
/// glibc.malloc.mmap_max=0 and glibc.malloc.trim_threshold=4294967295 added to GLIBC_TUNABLES
/// (large blocks from the heap, freed memory kept for reuse), and glibc.malloc.hugetlb=1 when
/// the kernel's transparent huge page policy is "madvise" (malloc then asks for huge pages);
/// nothing happens when mmap_max is set already or when CANDELA_HUGE_PAGES=0. Returns only
/// when it did not run the program again (0), or execv failed (-1). Call first thing in main.
int ck_reexec_with_malloc_tunables(char *const argv[]);

/// y[i] = 1 / (1 + exp(-x[i])) for i < n (AVX-512 when the CPU has it; relative error below
/// 1e-6 against the exact value). x and y may be the same array.
void ck_sigmoid(int level, const float *x, float *y, size_t n);

/// y[i] = x[i] * sigmoid(x[i]) (SiLU, EfficientNet's Swish): the same bits as `ck_sigmoid`
/// followed by the product, which is what CK_ACT_SILU stores in every kernel. x and y may be
/// the same array.
void ck_silu(int level, const float *x, float *y, size_t n);

/// Per-channel affine maps of `planes` consecutive planes of `plane` values (inference batch
/// normalization): plane p belongs to channel c = (first + p) mod channels and gets
/// y = a[c] · x + b[c], rounded after the product and after the sum (no fused multiply-add: the
/// bits of the plain loop), then max(y, 0) when `relu` (0 for NaN, as the ReLU node). x and y
/// may be the same array.
void ck_channel_affine(int level, const float *x, float *y, size_t planes, size_t plane, const float *a, const float *b,
                       int channels, int first, int relu);

/// A task of `ck_parallel_for`: runs task `index` of the job whose context is `ctx`.
typedef void (*ck_task_fn)(void *ctx, int index);

/// Runs fn(ctx, i) for every i in [0, count) on up to `threads` threads (the caller and pool
/// workers that spin briefly between jobs; threads.c explains why) and returns when all are
/// done. Tasks are claimed one at a time, so each should be a sizeable share of the work.
/// Nested calls, and calls while another thread's job runs, run on the calling thread.
/// Returns the number of threads that took part (1 when run on the caller alone).
int ck_parallel_for(int count, int threads, ck_task_fn fn, void *ctx);

/// A piece of `ck_parallel_shares`: runs piece `piece` of part `part` of the job at `ctx`.
typedef void (*ck_piece_fn)(void *ctx, int part, int piece);

/// Runs fn(ctx, part, piece) for every part in [0, parts) and piece in [0, pieces): part t on
/// thread t (the caller is thread 0), its pieces in order, so that a thread keeps the data it
/// worked on in the layer before. A thread done with its own part then takes the other parts'
/// unclaimed pieces, last first: when a thread stalls (on this 2-vCPU VM the host sometimes
/// deschedules one for milliseconds), the other finishes its work instead of waiting for it.
/// Nested calls run on the calling thread, as in `ck_parallel_for`. At most 64 parts.
int ck_parallel_shares(int parts, int pieces, ck_piece_fn fn, void *ctx);

/// 1 when called from inside a task of the pool (where a parallel region would run serially).
int ck_parallel_nested(void);

#endif
