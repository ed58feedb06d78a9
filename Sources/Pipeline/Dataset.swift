import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Slides
import Tensors

/// One item of a dataset: an image, its label, an optional lesion mask and an optional tissue
/// mask (absolute paths).
public struct DatasetItem: Sendable, Equatable {
    public var path: String
    public var label: String?
    public var mask: String?
    public var tissueMask: String?
    /// A tile of a slide: the slide file and the tile's place on it. `path` is then
    /// "SLIDE#x,y": unique per tile, so that resume, shards and merge work per tile.
    public var slide: String?
    public var tile: SlideTile?
    /// The slide's annotations (GeoJSON, level-0 pixels): the tile's lesion mask.
    public var annotation: String?

    public init(path: String, label: String? = nil, mask: String? = nil, tissueMask: String? = nil,
                slide: String? = nil, tile: SlideTile? = nil, annotation: String? = nil) {
        self.path = path
        self.label = label
        self.mask = mask
        self.tissueMask = tissueMask
        self.slide = slide
        self.tile = tile
        self.annotation = annotation
    }

    /// The item of one tile of a slide.
    public static func tile(_ tile: SlideTile, of slide: String, label: String?, annotation: String?) -> DatasetItem {
        DatasetItem(path: "\(slide)#\(tile.x),\(tile.y)", label: label, slide: slide, tile: tile, annotation: annotation)
    }
}

/// A slide of a dataset, opened and cut into tiles.
public struct LoadedSlide: @unchecked Sendable {
    public let path: String
    public let label: String?
    public let annotation: String?
    public let slide: Slide
    public let grid: TileGrid

    public var items: [DatasetItem] { grid.tiles.map { DatasetItem.tile($0, of: path, label: label, annotation: annotation) } }
}

/// Slide files a slide dataset may list (OpenSlide's formats, by extension, case-insensitive).
let slideExtensions: Set<String> = ["svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif"]

/// The image files a dataset may list (by extension, case-insensitive).
let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "tif", "tiff"]

/// Reads a dataset's items from its source, then applies `sample` and `limit`.
///
/// - CSV: header `path,label[,mask][,tissue_mask]` (any order; only `path` is required), paths
///   relative to the CSV's folder. Quoted fields are not supported: a path with a comma is
///   reported with its line number.
/// - folder: one subfolder per class, `FOLDER/<label>/*.png|jpg|jpeg`, classes and files in
///   sorted order; no masks.
/// - glob: a shell pattern (`*`, `?`, `[...]`, per path component, as POSIX `glob(3)`), sorted;
///   no labels or masks.
///
/// `sample: n` keeps n items drawn without replacement with a seeded generator (`seed`, default 0)
/// and keeps them in dataset order, so the same manifest always picks the same items.
public enum DatasetLoader {
    public static func load(_ spec: DatasetSpec) throws -> [DatasetItem] {
        if spec.slides != nil { return try slides(spec).flatMap(\.items) }
        return try files(spec)
    }

    /// A slide dataset's slides, each opened and tiled (`sample` and `limit` count slides). A
    /// slide OpenSlide cannot open is an error naming the file.
    public static func slides(_ spec: DatasetSpec) throws -> [LoadedSlide] {
        guard let settings = spec.slides else { return [] }
        return try files(spec).map { entry in
            let slide = try Slide(path: entry.path)
            return LoadedSlide(path: entry.path, label: entry.label, annotation: entry.mask, slide: slide,
                               grid: try TileGrid(slide: slide, options: settings.tiling))
        }
    }

    /// The files a dataset lists (images, or slides for a slide dataset, whose CSV column
    /// `annotation` arrives in `mask`), after `sample` and `limit`.
    static func files(_ spec: DatasetSpec) throws -> [DatasetItem] {
        var items: [DatasetItem]
        let extensions = spec.slides == nil ? imageExtensions : slideExtensions
        switch spec.source {
        case .csv(let path): items = try csv(path, slides: spec.slides != nil)
        case .folder(let path): items = try folder(path, extensions: extensions)
        case .glob(let pattern): items = try glob(pattern, extensions: extensions)
        }
        if let n = spec.sample, n < items.count {
            var rng = SeededGenerator(seed: UInt64(spec.seed))
            var indices = Array(items.indices)
            // Partial Fisher–Yates: the first n positions become a uniform sample.
            for i in 0..<n {
                let j = i + Int(rng.next() % UInt64(indices.count - i))
                indices.swapAt(i, j)
            }
            items = indices.prefix(n).sorted().map { items[$0] }
        }
        if let limit = spec.limit, items.count > limit { items = Array(items.prefix(limit)) }
        return items
    }

    static func csv(_ file: String, slides: Bool = false) throws -> [DatasetItem] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw PipelineError("\(file): cannot read dataset CSV")
        }
        let base = URL(fileURLWithPath: file).deletingLastPathComponent()
        var lines = String(decoding: data, as: UTF8.self).split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
            .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let header = lines.first?.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) else {
            throw PipelineError("\(file):1: empty CSV; expected a header path,label[,mask][,tissue_mask]")
        }
        guard let pathColumn = header.firstIndex(of: "path") else {
            throw PipelineError("\(file):1: header must have a 'path' column, got \(header.joined(separator: ","))")
        }
        let known = slides ? ["path", "label", "annotation"] : ["path", "label", "mask", "tissue_mask"]
        for (i, name) in header.enumerated() where !known.contains(name) {
            throw PipelineError("\(file):1:\(header[..<i].reduce(1) { $0 + $1.count + 1 }): unknown column '\(name)'; columns: \(known.joined(separator: ", "))")
        }
        let labelColumn = header.firstIndex(of: "label")
        let maskColumn = header.firstIndex(of: slides ? "annotation" : "mask")
        let tissueColumn = header.firstIndex(of: "tissue_mask")
        var items: [DatasetItem] = []
        for (i, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == header.count else {
                throw PipelineError("\(file):\(i + 1): expected \(header.count) fields, found \(fields.count)")
            }
            func resolve(_ column: Int?) -> String? {
                guard let column, !fields[column].isEmpty else { return nil }
                let p = fields[column]
                return p.hasPrefix("/") ? p : base.appendingPathComponent(p).standardized.path
            }
            guard let path = resolve(pathColumn) else { throw PipelineError("\(file):\(i + 1): empty path") }
            items.append(DatasetItem(path: path, label: labelColumn.flatMap { fields[$0].isEmpty ? nil : fields[$0] }, mask: resolve(maskColumn),
                                     tissueMask: resolve(tissueColumn)))
        }
        return items
    }

    static func isImage(_ name: String) -> Bool {
        imageExtensions.contains(URL(fileURLWithPath: name).pathExtension.lowercased())
    }

    static func has(_ name: String, _ extensions: Set<String>) -> Bool {
        extensions.contains(URL(fileURLWithPath: name).pathExtension.lowercased())
    }

    static func folder(_ root: String, extensions: Set<String> = imageExtensions) throws -> [DatasetItem] {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PipelineError("\(root): dataset folder does not exist")
        }
        var items: [DatasetItem] = []
        for label in try fm.contentsOfDirectory(atPath: root).sorted() where !label.hasPrefix(".") {
            let dir = "\(root)/\(label)"
            guard fm.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            for file in try fm.contentsOfDirectory(atPath: dir).sorted() where has(file, extensions) && !file.hasPrefix(".") {
                items.append(DatasetItem(path: "\(dir)/\(file)", label: label))
            }
        }
        if items.isEmpty {
            throw PipelineError("\(root): no \(extensions == imageExtensions ? "images" : "slides") in class subfolders "
                                + "(expected \(root)/<label>/*.\(extensions.sorted().joined(separator: "|")))")
        }
        return items
    }

    static func glob(_ pattern: String, extensions: Set<String> = imageExtensions) throws -> [DatasetItem] {
        var g = glob_t()
        defer { globfree(&g) }
        let status = Glibc.glob(pattern, 0, nil, &g)
        guard status == 0 else {
            if status == GLOB_NOMATCH { throw PipelineError("\(pattern): no files match the dataset pattern") }
            throw PipelineError("\(pattern): cannot list the dataset pattern (glob error \(status))")
        }
        let paths = (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
        let items = paths.filter { has($0, extensions) }.sorted().map { DatasetItem(path: $0) }
        if items.isEmpty { throw PipelineError("\(pattern): the pattern matches no \(extensions.sorted().map { "." + $0 }.joined(separator: "/")) files") }
        return items
    }
}
