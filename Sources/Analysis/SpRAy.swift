import Foundation
import Tensors

/// Spectral relevance analysis, SpRAy (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors
/// and assessing what machines really learn", Nat. Commun. 10:1096, Methods, "Spectral relevance
/// analysis"; docs/analysis.md): the heatmaps of one class, pooled to a small grid, are clustered
/// spectrally, so that groups of images the model decides on by the same evidence show up, and a
/// group whose evidence is not the object (a corner tag, a pen mark, the border) is flagged.
///
/// Steps, for the n heatmaps of one class:
/// 1. pool: each heatmap's positive relevance averaged over a `size` × `size` grid, scaled to
///    unit sum (the paper downsizes heatmaps so that the analysis sees layout, not texture);
/// 2. a k-nearest-neighbour graph in that space (Euclidean), symmetric (i ~ j when either is
///    among the other's k nearest), with binary weights;
/// 3. the symmetric normalized Laplacian L = I − D^{-1/2} A D^{-1/2} (von Luxburg 2007, "A
///    tutorial on spectral clustering", §3.2); its smallest eigenvalues λ₁ ≤ … ≤ λₘ;
/// 4. the number of clusters q where the eigengap λ_{q+1} − λ_q is largest (q ≤ `maxClusters`);
/// 5. k-means on the rows of the q eigenvectors, each row scaled to unit length (Ng, Jordan and
///    Weiss 2001, "On spectral clustering: analysis and an algorithm");
/// 6. per cluster: its medoid (the member with the least summed distance to the others), its
///    mean heatmap, and the Clever-Hans test (`Cluster.flagged`);
/// 7. a 2-D spectral embedding for the plot: eigenvectors 2 and 3 of the random-walk Laplacian
///    (Belkin and Niyogi 2003, "Laplacian eigenmaps").
public enum SpRAy {
    /// The analysis's settings (the manifest's `kind: spray` stage, docs/manifest.md).
    public struct Settings: Sendable, Equatable {
        /// Heatmaps are pooled to size × size cells.
        public var size = 16
        /// k of the k-nearest-neighbour graph; nil: √n rounded, at least 3 and at most 30.
        public var neighbours: Int?
        /// The eigengap looks at most this many clusters.
        public var maxClusters = 8
        /// Flag: the members' median share of relevance outside their object masks at least this,
        public var outside = 0.5
        /// and the objects' median lift (their share of relevance over their share of the image)
        /// below this: with 1, the objects get less relevance than a map spread evenly over the
        /// image would give them (a coarse map that spills over its object still lifts it above 1).
        public var lift = 1.0
        /// Flag (no masks): the members' median share of relevance in the cluster's region at least this.
        public var fixed = 0.5
        /// The region is the fewest cells of the mean heatmap holding half its relevance, and
        /// counts as "fixed" only if it covers at most this share of the image.
        public var regionArea = 1.0 / 16
        /// Clusters smaller than this are never flagged.
        public var minSize = 3
        /// Object masks are widened by this many cells (coarse maps spill over edges).
        public var margin = 1
        public var seed: UInt64 = 0

        public init() {}
    }

    /// One heatmap: the item it explains, its pooled relevance (`size`², unit sum, or all zero
    /// when it has no positive relevance), and the cells its object mask touches (nil: no mask,
    /// or an empty one).
    public struct Sample: Sendable {
        public var id: Int64
        public var features: [Float]
        public var object: [Bool]?

        public init(id: Int64, features: [Float], object: [Bool]? = nil) {
            self.id = id
            self.features = features
            self.object = object
        }
    }

    /// A cluster and what the Clever-Hans test found.
    public struct Cluster: Sendable {
        public var index: Int
        /// Indices into the samples.
        public var members: [Int]
        /// Index into the samples of the medoid.
        public var medoid: Int
        /// The members' mean pooled heatmap (size²).
        public var mean: [Float]
        /// Cells of the region the mean heatmap concentrates on (before widening by one cell).
        public var region: [Int]
        /// Whether that region holds half the mean relevance within `regionArea` of the image.
        public var concentrated: Bool
        /// The members' median share of relevance in the region (widened by one cell).
        public var regionShare: Double
        /// Where the region is, in words ("top-left corner", "left border", "interior").
        public var place: String
        /// The members' median share of relevance outside their (widened) object masks, and the
        /// median lift of the objects (share of relevance inside ÷ share of the image inside); nil
        /// when fewer than half the members have a mask.
        public var outsideShare: Double?
        public var objectLift: Double?
        public var flagged: Bool
        /// Why it is flagged, in words (empty when it is not).
        public var reasons: [String]
    }

    public struct Result: Sendable {
        /// Each sample's cluster (0 is the largest).
        public var assignment: [Int]
        /// Each sample's place in the 2-D spectral embedding.
        public var embedding: [(x: Double, y: Double)]
        /// The smallest eigenvalues of the normalized Laplacian, ascending.
        public var eigenvalues: [Double]
        public var neighbours: Int
        public var clusters: [Cluster]
        /// False when the eigensolver stopped before its residuals were small (the clusters are then a rough guess).
        public var converged = true
    }

    // MARK: - Pooling

    /// A heatmap's positive part averaged over `size` × `size` cells (each pixel counted in the
    /// cell its centre falls in), scaled to unit sum; all zero when nothing is positive.
    public static func pool(_ heatmap: [Float], width: Int, height: Int, size: Int) -> [Float] {
        var sums = [Double](repeating: 0, count: size * size)
        var counts = [Double](repeating: 0, count: size * size)
        for y in 0..<height {
            let cy = min(size - 1, y * size / height)
            for x in 0..<width {
                let cx = min(size - 1, x * size / width)
                let v = heatmap[y * width + x]
                if v > 0, v.isFinite { sums[cy * size + cx] += Double(v) }
                counts[cy * size + cx] += 1
            }
        }
        let means = zip(sums, counts).map { $1 > 0 ? $0 / $1 : 0 }
        let total = means.reduce(0, +)
        return means.map { total > 0 ? Float($0 / total) : 0 }
    }

    /// The cells a mask (width × height, object where > 0.5) touches; nil when the mask is empty.
    public static func poolMask(_ mask: [Float], width: Int, height: Int, size: Int) -> [Bool]? {
        var cells = [Bool](repeating: false, count: size * size)
        for y in 0..<height {
            for x in 0..<width where mask[y * width + x] > 0.5 {
                cells[min(size - 1, y * size / height) * size + min(size - 1, x * size / width)] = true
            }
        }
        return cells.contains(true) ? cells : nil
    }

    // MARK: - Analysis

    /// Clusters the samples (all pooled at `settings.size`) and tests each cluster.
    public static func analyse(_ samples: [Sample], settings: Settings) -> Result {
        let n = samples.count
        let d = settings.size * settings.size
        precondition(samples.allSatisfy { $0.features.count == d }, "SpRAy: every sample pooled at the same size")
        guard n >= 4 else {
            // Too few to cluster: one cluster, tested as such.
            let members = Array(0..<n)
            let clusters = n == 0 ? [] : [cluster(0, members: members, samples: samples, medoid: medoid(members, samples), settings: settings)]
            return Result(assignment: [Int](repeating: 0, count: n), embedding: Array(repeating: (0, 0), count: n), eigenvalues: [],
                          neighbours: 0, clusters: clusters)
        }
        let k = min(n - 1, settings.neighbours ?? min(30, max(3, Int(Double(n).squareRoot().rounded()))))
        let graph = neighbourGraph(samples.map(\.features), dimension: d, k: k)
        let m = min(n, settings.maxClusters + 1)
        let spectrum = Spectrum.smallest(of: graph, count: max(m, min(n, 3)), seed: settings.seed)
        let lambdas = Array(spectrum.values.prefix(m))
        // Eigengap: q clusters where λ_{q+1} − λ_q is largest (ties: the fewer clusters).
        var q = 1, gap = -Double.infinity
        for i in 0..<(lambdas.count - 1) where lambdas[i + 1] - lambdas[i] > gap + 1e-12 {
            gap = lambdas[i + 1] - lambdas[i]
            q = i + 1
        }
        // Rows of the first q eigenvectors, each scaled to unit length, clustered by k-means.
        var points = [Double](repeating: 0, count: n * q)
        for i in 0..<n {
            var norm = 0.0
            for j in 0..<q { norm += spectrum.vectors[j][i] * spectrum.vectors[j][i] }
            norm = norm.squareRoot()
            for j in 0..<q { points[i * q + j] = norm > 0 ? spectrum.vectors[j][i] / norm : 0 }
        }
        var assignment = KMeans.cluster(points, count: n, dimension: q, clusters: q, seed: settings.seed)
        // Clusters numbered by size, largest first (ties: the one whose first member comes first).
        let groups: [[Int]] = Array(Dictionary(grouping: Array(0..<n), by: { (i: Int) -> Int in assignment[i] }).values)
        let order = groups.sorted { (a: [Int], b: [Int]) -> Bool in a.count != b.count ? a.count > b.count : a[0] < b[0] }
        var clusters: [Cluster] = []
        for (index, members) in order.enumerated() {
            for i in members { assignment[i] = index }
            clusters.append(cluster(index, members: members, samples: samples, medoid: medoid(members, samples), settings: settings))
        }
        // Random-walk eigenvectors 2 and 3 (the first is constant on a connected graph).
        let degree = graph.map { Double($0.count) }
        let embedding = (0..<n).map { i -> (x: Double, y: Double) in
            let s = 1 / degree[i].squareRoot()
            return (spectrum.vectors.count > 1 ? spectrum.vectors[1][i] * s : 0, spectrum.vectors.count > 2 ? spectrum.vectors[2][i] * s : 0)
        }
        return Result(assignment: assignment, embedding: embedding, eigenvalues: lambdas, neighbours: k, clusters: clusters,
                      converged: spectrum.converged)
    }

    /// The symmetric k-nearest-neighbour graph (neighbour lists, sorted, no self loops).
    /// Distances by blocks of rows through one matrix product each: ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b.
    static func neighbourGraph(_ features: [[Float]], dimension d: Int, k: Int) -> [[Int]] {
        let n = features.count
        var edges = [Set<Int>](repeating: [], count: n)
        pairwise(features, rows: Array(0..<n), columns: Array(0..<n), dimension: d) { i, distances in
            // The k nearest, ties by index (deterministic).
            var best: [(Float, Int)] = []
            best.reserveCapacity(k + 1)
            for j in 0..<n where j != i {
                let e = (distances[j], j)
                if best.count < k || e < best[best.count - 1] {
                    let at = best.firstIndex { e < $0 } ?? best.count
                    best.insert(e, at: at)
                    if best.count > k { best.removeLast() }
                }
            }
            for (_, j) in best { edges[i].insert(j) }
        }
        for i in 0..<n { for j in edges[i] { edges[j].insert(i) } }
        return edges.map { $0.sorted() }
    }

    /// Calls `body(row, squaredDistances)` for each of `rows` with its squared distances to every
    /// one of `columns` (in that order); 256 rows at a time through `BLAS.sgemm` on the OpenBLAS
    /// path on every CPU (a clustering does not change with the engine's kernel path).
    static func pairwise(_ features: [[Float]], rows: [Int], columns: [Int], dimension d: Int, _ body: (Int, [Float]) -> Void) {
        let c = columns.count
        var right = [Float](repeating: 0, count: c * d)
        var rightNorms = [Float](repeating: 0, count: c)
        for (j, col) in columns.enumerated() {
            for t in 0..<d { right[j * d + t] = features[col][t] }
            rightNorms[j] = features[col].reduce(0) { $0 + $1 * $1 }
        }
        let block = 256
        var start = 0
        while start < rows.count {
            let b = min(block, rows.count - start)
            var left = [Float](repeating: 0, count: b * d)
            for r in 0..<b { for t in 0..<d { left[r * d + t] = features[rows[start + r]][t] } }
            var products = [Float](repeating: 0, count: b * c)
            left.withUnsafeBufferPointer { l in
                right.withUnsafeBufferPointer { rt in
                    products.withUnsafeMutableBufferPointer { p in
                        BLAS.sgemm(kernels: KernelOptions(path: .openblas), transB: true, m: b, n: c, k: d, a: l.baseAddress!, lda: d, b: rt.baseAddress!, ldb: d,
                                   c: p.baseAddress!, ldc: c)
                    }
                }
            }
            for r in 0..<b {
                let row = rows[start + r]
                let norm = features[row].reduce(0) { $0 + $1 * $1 }
                var distances = [Float](repeating: 0, count: c)
                for j in 0..<c { distances[j] = max(0, norm + rightNorms[j] - 2 * products[r * c + j]) }
                body(row, distances)
            }
            start += b
        }
    }

    /// The member with the least summed Euclidean distance to the other members (ties: first).
    static func medoid(_ members: [Int], _ samples: [Sample]) -> Int {
        guard members.count > 2 else { return members.first ?? 0 }
        let features = samples.map(\.features)
        var best = (Double.infinity, members[0])
        pairwise(features, rows: members, columns: members, dimension: features[0].count) { row, distances in
            let total = distances.reduce(0.0) { $0 + Double($1).squareRoot() }
            if total < best.0 || (total == best.0 && row < best.1) { best = (total, row) }
        }
        return best.1
    }

    // MARK: - The Clever-Hans test

    /// A cluster's mean heatmap, its region and the test: flagged when it has at least `minSize`
    /// members and either
    /// - at least half its members have an object mask, the median share of relevance outside
    ///   the (widened) masks is at least `outside` and the objects' median lift is below `lift`; or
    /// - (without masks) its mean heatmap concentrates on a region of at most `regionArea` of the
    ///   image that touches the image's border band (the outer eighth: where scanner labels, pen
    ///   marks, rulers and corner tags sit), and the members' median share there is at least `fixed`.
    static func cluster(_ index: Int, members: [Int], samples: [Sample], medoid: Int, settings: Settings) -> Cluster {
        let s = settings.size, d = s * s
        var mean = [Float](repeating: 0, count: d)
        for i in members { for t in 0..<d { mean[t] += samples[i].features[t] / Float(members.count) } }
        // The region: the fewest cells holding half the mean relevance.
        let total = mean.reduce(0, +)
        let cap = max(1, Int((settings.regionArea * Double(d)).rounded()))
        var region: [Int] = []
        var held: Float = 0
        for cell in (0..<d).sorted(by: { (mean[$0], $1) > (mean[$1], $0) }) where held < 0.5 * total {
            region.append(cell)
            held += mean[cell]
        }
        let concentrated = total > 0 && region.count <= cap
        if region.count > cap { region = Array(region.prefix(cap)) }
        let widened = widen(Set(region), by: 1, size: s)
        let regionShares = members.compactMap { i -> Double? in
            let f = samples[i].features
            let all = f.reduce(0, +)
            return all > 0 ? Double(widened.reduce(Float(0)) { $0 + f[$1] } / all) : nil
        }
        let regionShare = median(regionShares) ?? 0
        // Where the region is.
        let band = max(1, s / 8)
        let xs = region.map { $0 % s }, ys = region.map { $0 / s }
        let left = (xs.min() ?? s) < band, right = (xs.max() ?? -1) >= s - band
        let top = (ys.min() ?? s) < band, bottom = (ys.max() ?? -1) >= s - band
        let border = left || right || top || bottom
        var place = "interior"
        if (top || bottom) && (left || right) && !(left && right) && !(top && bottom) {
            place = "\(top ? "top" : "bottom")-\(left ? "left" : "right") corner"
        } else if left && right && top && bottom {
            place = "spread to every border"
        } else if border {
            place = [top ? "top" : nil, bottom ? "bottom" : nil, left ? "left" : nil, right ? "right" : nil].compactMap { $0 }
                .joined(separator: " and ") + " border"
        }
        // Relevance outside the members' objects.
        let masked = members.filter { samples[$0].object != nil }
        var outsideShare: Double?, objectLift: Double?
        if !masked.isEmpty, masked.count * 2 >= members.count {
            let shares = masked.compactMap { i -> (inside: Double, area: Double)? in
                let f = samples[i].features
                let all = f.reduce(0, +)
                guard all > 0, let object = samples[i].object else { return nil }
                let inside = widen(Set((0..<d).filter { object[$0] }), by: settings.margin, size: s)
                return (Double(inside.reduce(Float(0)) { $0 + f[$1] } / all), Double(inside.count) / Double(d))
            }
            outsideShare = median(shares.map { 1 - $0.inside })
            objectLift = median(shares.map { $0.inside / $0.area })
        }
        var reasons: [String] = []
        if members.count >= settings.minSize {
            if let o = outsideShare, let l = objectLift, o >= settings.outside, l < settings.lift {
                reasons.append(String(format: "%.0f%% of its relevance lies outside the object masks, and the objects get %.1f× "
                                      + "the relevance of an even spread (medians over %d members)", 100 * o, l, masked.count))
            }
            if outsideShare == nil, concentrated, border, regionShare >= settings.fixed {
                reasons.append(String(format: "its relevance sits in the %@ (median %.0f%% of it in %.0f%% of the image)",
                                      place, 100 * regionShare, 100 * Double(widened.count) / Double(d)))
            }
        }
        return Cluster(index: index, members: members, medoid: medoid, mean: mean, region: region.sorted(), concentrated: concentrated,
                       regionShare: regionShare, place: place, outsideShare: outsideShare, objectLift: objectLift, flagged: !reasons.isEmpty, reasons: reasons)
    }

    /// Cells within `by` cells (Chebyshev distance) of `cells`.
    static func widen(_ cells: Set<Int>, by r: Int, size s: Int) -> Set<Int> {
        guard r > 0 else { return cells }
        var out = cells
        for c in cells {
            let (x, y) = (c % s, c / s)
            for dy in -r...r { for dx in -r...r where (0..<s).contains(x + dx) && (0..<s).contains(y + dy) { out.insert((y + dy) * s + x + dx) } }
        }
        return out
    }

    static func median(_ v: [Double]) -> Double? {
        guard !v.isEmpty else { return nil }
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// The smallest eigenpairs of a graph's symmetric normalized Laplacian L = I − D^{-1/2} A D^{-1/2}.
/// They are the largest eigenpairs of M = D^{-1/2} A D^{-1/2}: LAPACK's dense solver up to
/// `denseLimit` nodes, subspace iteration with Rayleigh–Ritz above (Saad 2011, "Numerical
/// methods for large eigenvalue problems", §5.2), which, unlike a single-vector Lanczos, finds
/// repeated eigenvalues (a graph with several components has λ = 0 once per component).
public enum Spectrum {
    public static let denseLimit = 1500

    /// The `count` smallest eigenvalues of L (ascending) and their unit eigenvectors (one array of
    /// n per eigenvalue). `graph`: symmetric neighbour lists.
    public static func smallest(of graph: [[Int]], count: Int, seed: UInt64 = 0, forceIterative: Bool = false)
        -> (values: [Double], vectors: [[Double]], converged: Bool) {
        let n = graph.count
        let inverseRoot = graph.map { $0.isEmpty ? 0 : 1 / Double($0.count).squareRoot() }
        if n <= denseLimit && !forceIterative {
            var m = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in graph[i] { m[i * n + j] = inverseRoot[i] * inverseRoot[j] } }
            if let (values, vectors) = LinearAlgebra.symmetricEigen(m, n: n) {
                // M's largest first: L's smallest.
                let order = (0..<n).reversed().prefix(count)
                return (order.map { 1 - values[$0] }, order.map { j in (0..<n).map { vectors[$0 * n + j] } }, true)
            }
        }
        return iterate(graph, inverseRoot: inverseRoot, count: count, seed: seed)
    }

    /// Subspace iteration on S = (M + I) / 2 (eigenvalues in [0, 1], M's order), a block of
    /// `count` + 8 vectors, Rayleigh–Ritz every 5 steps, until the wanted residuals ‖Sx − θx‖
    /// are below 1e-6 or 20,000 steps.
    static func iterate(_ graph: [[Int]], inverseRoot: [Double], count: Int, seed: UInt64)
        -> (values: [Double], vectors: [[Double]], converged: Bool) {
        let n = graph.count
        let p = min(n, count + 8)
        var rng = SeededGenerator(seed: seed &+ 0x5EED)
        // The block, vector j at [j·n, (j+1)·n); S times it; the Ritz rotation's scratch.
        var x = (0..<(n * p)).map { _ in Double.random(in: -1...1, using: &rng) }
        var y = [Double](repeating: 0, count: n * p)
        var rotated = [Double](repeating: 0, count: n * p)
        // The graph as compressed rows.
        var offsets = [0], columns: [Int] = []
        for row in graph { columns += row; offsets.append(columns.count) }
        func apply(_ from: UnsafePointer<Double>, _ to: UnsafeMutablePointer<Double>) {
            for j in 0..<p {
                let (src, dst) = (from + j * n, to + j * n)
                for i in 0..<n {
                    var s = 0.0
                    for e in offsets[i]..<offsets[i + 1] { let c = columns[e]; s += inverseRoot[c] * src[c] }
                    dst[i] = 0.5 * (src[i] + inverseRoot[i] * s)
                }
            }
        }
        x.withUnsafeMutableBufferPointer { orthonormalize($0.baseAddress!, n: n, count: p) }
        var theta = [Double](repeating: 0, count: p)
        var converged = false
        for step in 1...20_000 {
            x.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { apply(xs.baseAddress!, $0.baseAddress!) } }
            swap(&x, &y)
            x.withUnsafeMutableBufferPointer { orthonormalize($0.baseAddress!, n: n, count: p) }
            guard step % 5 == 0 else { continue }
            // Rayleigh–Ritz: H = Xᵀ S X, X rotated by H's eigenvectors (largest first).
            x.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { apply(xs.baseAddress!, $0.baseAddress!) } }
            var h = [Double](repeating: 0, count: p * p)
            x.withUnsafeBufferPointer { xs in
                y.withUnsafeBufferPointer { ys in
                    for a in 0..<p { for b in a..<p { let v = dot(xs.baseAddress! + a * n, ys.baseAddress! + b * n, n); h[a * p + b] = v; h[b * p + a] = v } }
                }
            }
            guard let (values, vectors) = LinearAlgebra.symmetricEigen(h, n: p) else { break }
            var worst = 0.0
            x.withUnsafeBufferPointer { xs in
                y.withUnsafeMutableBufferPointer { ys in
                    rotated.withUnsafeMutableBufferPointer { rs in
                        let (xb, yb, rb) = (xs.baseAddress!, ys.baseAddress!, rs.baseAddress!)
                        var sxRotated = [Double](repeating: 0, count: n)
                        for (slot, j) in (0..<p).reversed().enumerated() {
                            theta[slot] = values[j]
                            let out = rb + slot * n
                            out.update(repeating: 0, count: n)
                            for i in 0..<n { sxRotated[i] = 0 }
                            for a in 0..<p {
                                let w = vectors[a * p + j]
                                guard w != 0 else { continue }
                                let (xa, ya) = (xb + a * n, yb + a * n)
                                for i in 0..<n { out[i] += w * xa[i]; sxRotated[i] += w * ya[i] }
                            }
                            if slot < count {
                                var r = 0.0
                                for i in 0..<n { let e = sxRotated[i] - theta[slot] * out[i]; r += e * e }
                                worst = max(worst, r.squareRoot())
                            }
                        }
                    }
                }
            }
            swap(&x, &rotated)
            if worst < 1e-6 { converged = true; break }
        }
        // S's eigenvalue θ is (1 + μ) / 2: L's is 1 − μ = 2 − 2θ.
        return ((0..<count).map { 2 - 2 * theta[$0] }, (0..<count).map { Array(x[($0 * n)..<(($0 + 1) * n)]) }, converged)
    }

    static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        var s = 0.0
        for i in 0..<n { s += a[i] * b[i] }
        return s
    }

    /// Modified Gram–Schmidt, twice, on `count` vectors of length n stored one after another (a
    /// vector that vanishes is replaced by a unit basis vector orthogonalized in turn).
    static func orthonormalize(_ v: UnsafeMutablePointer<Double>, n: Int, count: Int) {
        for _ in 0..<2 {
            for j in 0..<count {
                let vj = v + j * n
                for i in 0..<j {
                    let vi = v + i * n
                    let c = dot(vi, vj, n)
                    for t in 0..<n { vj[t] -= c * vi[t] }
                }
                var norm = dot(vj, vj, n).squareRoot()
                if norm < 1e-12 {
                    vj.update(repeating: 0, count: n)
                    vj[j % n] = 1
                    for i in 0..<j {
                        let vi = v + i * n
                        let c = dot(vi, vj, n)
                        for t in 0..<n { vj[t] -= c * vi[t] }
                    }
                    norm = max(1e-300, dot(vj, vj, n).squareRoot())
                }
                for t in 0..<n { vj[t] /= norm }
            }
        }
    }
}

/// Lloyd's k-means with k-means++ seeding (Arthur and Vassilvitskii 2007), ten seeded restarts,
/// the lowest within-cluster sum of squares kept.
enum KMeans {
    static func cluster(_ points: [Double], count n: Int, dimension d: Int, clusters k: Int, seed: UInt64) -> [Int] {
        guard k > 1, n > k else { return (0..<n).map { k > 1 ? $0 % k : 0 } }
        var rng = SeededGenerator(seed: seed &+ 0xC1A5)
        func distance(_ i: Int, _ c: [Double], _ j: Int) -> Double {
            var s = 0.0
            for t in 0..<d { let e = points[i * d + t] - c[j * d + t]; s += e * e }
            return s
        }
        var best: (cost: Double, labels: [Int]) = (.infinity, [])
        for _ in 0..<10 {
            // k-means++: each next centre drawn with probability ∝ squared distance to the nearest.
            var centres = [Double](repeating: 0, count: k * d)
            let first = Int.random(in: 0..<n, using: &rng)
            for t in 0..<d { centres[t] = points[first * d + t] }
            var nearest = (0..<n).map { distance($0, centres, 0) }
            for c in 1..<k {
                let total = nearest.reduce(0, +)
                var pick = n - 1
                if total > 0 {
                    var r = Double.random(in: 0..<total, using: &rng)
                    for i in 0..<n { r -= nearest[i]; if r < 0 { pick = i; break } }
                } else {
                    pick = Int.random(in: 0..<n, using: &rng)
                }
                for t in 0..<d { centres[c * d + t] = points[pick * d + t] }
                for i in 0..<n { nearest[i] = min(nearest[i], distance(i, centres, c)) }
            }
            var labels = [Int](repeating: -1, count: n)
            var cost = 0.0
            for _ in 0..<100 {
                var changed = false
                cost = 0
                for i in 0..<n {
                    var (bj, bd) = (0, Double.infinity)
                    for j in 0..<k { let e = distance(i, centres, j); if e < bd { (bj, bd) = (j, e) } }
                    if labels[i] != bj { labels[i] = bj; changed = true }
                    cost += bd
                }
                if !changed { break }
                var sums = [Double](repeating: 0, count: k * d), sizes = [Int](repeating: 0, count: k)
                var reseeded = Set<Int>()
                for i in 0..<n { sizes[labels[i]] += 1; for t in 0..<d { sums[labels[i] * d + t] += points[i * d + t] } }
                for j in 0..<k {
                    if sizes[j] == 0 {
                        // An empty cluster takes the point farthest from its centre not taken by another this round.
                        let far = (0..<n).filter { !reseeded.contains($0) }
                            .max { distance($0, centres, labels[$0]) < distance($1, centres, labels[$1]) } ?? 0
                        reseeded.insert(far)
                        for t in 0..<d { centres[j * d + t] = points[far * d + t] }
                    } else {
                        for t in 0..<d { centres[j * d + t] = sums[j * d + t] / Double(sizes[j]) }
                    }
                }
            }
            if cost < best.cost { best = (cost, labels) }
        }
        return best.labels
    }
}
