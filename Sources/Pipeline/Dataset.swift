import Foundation

/// One row of a dataset: an image, its label and optional lesion mask (absolute paths).
public struct DatasetItem: Sendable, Equatable {
    public var path: String
    public var label: String?
    public var mask: String?
}

/// Reads a dataset CSV: header `path,label[,mask]`, paths relative to the CSV's folder.
/// Quoted fields are not supported in v0: paths with commas are rejected with the line number.
public enum DatasetLoader {
    public static func load(_ spec: DatasetSpec) throws -> [DatasetItem] {
        guard let data = FileManager.default.contents(atPath: spec.csv) else {
            throw PipelineError("\(spec.csv): cannot read dataset CSV")
        }
        let base = URL(fileURLWithPath: spec.csv).deletingLastPathComponent()
        var lines = String(decoding: data, as: UTF8.self).split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
            .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let header = lines.first?.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) else {
            throw PipelineError("\(spec.csv):1: empty CSV; expected a header path,label[,mask]")
        }
        guard let pathColumn = header.firstIndex(of: "path") else {
            throw PipelineError("\(spec.csv):1: header must have a 'path' column, got \(header.joined(separator: ","))")
        }
        let labelColumn = header.firstIndex(of: "label")
        let maskColumn = header.firstIndex(of: "mask")
        var items: [DatasetItem] = []
        for (i, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == header.count else {
                throw PipelineError("\(spec.csv):\(i + 1): expected \(header.count) fields, found \(fields.count)")
            }
            func resolve(_ p: String) -> String {
                p.hasPrefix("/") ? p : base.appendingPathComponent(p).standardized.path
            }
            let mask = maskColumn.map { fields[$0] }.flatMap { $0.isEmpty ? nil : resolve($0) }
            items.append(DatasetItem(path: resolve(fields[pathColumn]), label: labelColumn.map { fields[$0] }, mask: mask))
            if let limit = spec.limit, items.count >= limit { break }
        }
        return items
    }
}
