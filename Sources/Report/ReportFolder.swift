import Foundation
import Store

/// The folder a report is written to, and the files Candela wrote there.
///
/// Candela deletes or reuses only files it wrote: each report writes `.candela-report.json`,
/// listing every file of the report. A folder that is not empty and has no such list is
/// someone else's (a dataset, a home folder, `--report .`): the report refuses it unless
/// `force` is set, and even then deletes nothing it did not list.
public final class ReportFolder: @unchecked Sendable {
    /// The list's file name, in the report folder.
    public static let manifestName = ".candela-report.json"

    public let directory: String
    /// Files (relative paths) the previous report in this folder wrote.
    public private(set) var previous: Set<String> = []

    public init(_ directory: String) { self.directory = directory }

    /// Checks that the folder is Candela's to write (empty, missing, or holding a report's list),
    /// and reads the list. Throws naming the folder otherwise, unless `force`.
    public func claim(force: Bool) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else {
            throw StoreError("\(directory): the report folder is a file; choose a folder")
        }
        let manifest = "\(directory)/\(Self.manifestName)"
        if let data = fm.contents(atPath: manifest) {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let files = object["files"] as? [String] else {
                throw StoreError("\(manifest): not a Candela report list; remove it, or choose another folder")
            }
            previous = Set(files.filter { !$0.hasPrefix("/") && !$0.split(separator: "/").contains("..") })
            return
        }
        let contents = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        // A report written before the list existed holds nothing but the names a report writes:
        // adopt it (its files become the previous report's).
        let legacy = contents.flatMap { name -> [String] in
            guard ReportFolder.subfolders.contains(name) else { return [name] }
            return ((try? fm.contentsOfDirectory(atPath: "\(directory)/\(name)")) ?? []).map { "\(name)/\($0)" }
        }
        if !contents.isEmpty, legacy.allSatisfy(ReportFolder.isReportFile) {
            previous = Set(legacy)
            return
        }
        if !contents.isEmpty && !force {
            throw StoreError("\(directory): the report folder holds \(contents.count) files that Candela did not write "
                             + "(no \(Self.manifestName)); choose an empty or new folder, or pass --force to write beside them "
                             + "(nothing of theirs is deleted)")
        }
    }

    /// The report's subfolders (ReportWriter).
    static let subfolders: Set<String> = ["images", "thumbs", "arrays", "items", "doctor"]

    /// Whether a relative path is named as a report names its files: `index.html`,
    /// `gallery-<class>-<page>.html`, `items/<id>.html`, `doctor/<id>.html`, and in `images/`,
    /// `thumbs/` and `arrays/` 16 hex digits of a content hash (with `-<colormap>[-q<pct>][-map]`
    /// for overlays and heatmaps alone).
    /// A user's `images/slide_001.png` is not.
    static func isReportFile(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        func hex16(_ s: Substring) -> Bool { s.count == 16 && s.allSatisfy(\.isHexDigit) }
        func digits(_ s: String, suffix: String) -> Bool {
            s.hasSuffix(suffix) && !s.dropLast(suffix.count).isEmpty && s.dropLast(suffix.count).allSatisfy(\.isNumber)
        }
        switch parts.count {
        case 1: return path == "index.html" || (path.hasPrefix("gallery-") && path.hasSuffix(".html"))
        case 2:
            let (folder, file) = (parts[0], parts[1])
            switch folder {
            case "items", "doctor": return digits(file, suffix: ".html")
            case "arrays": return file.hasSuffix(".npy") && hex16(file.dropLast(4))
            case "images", "thumbs":
                guard file.hasSuffix(".jpg") else { return false }
                let stem = file.dropLast(4)
                let hash = stem.prefix(16), rest = stem.dropFirst(16)
                // "-<colormap>", since the percentile-clipped overlays "-<colormap>-q<digits>", and
                // since the heatmap-alone pictures "-<colormap>-q<digits>-map" ("bwr" for signed maps).
                var parts = rest.split(separator: "-", omittingEmptySubsequences: false)
                if parts.count == 4 && parts[3] == "map" { parts.removeLast() }
                let colormap = parts.count >= 2 && parts[0].isEmpty && !parts[1].isEmpty && parts[1].allSatisfy(\.isLetter)
                let clip = parts.count == 2 || (parts.count == 3 && parts[2].first == "q" && parts[2].count > 1 && parts[2].dropFirst().allSatisfy(\.isNumber))
                return hex16(hash) && (rest.isEmpty || (colormap && clip))
            default: return false
            }
        default: return false
        }
    }

    /// `claim`s the folder, creates it, and writes the list at once (the files of the report
    /// before, if any): from then on the folder is marked as Candela's, so that files put in it
    /// later (a store, its lock) neither make it look foreign nor are ever deleted, and a report
    /// killed half-way leaves a folder Candela may write again.
    public func prepare(force: Bool) throws {
        try claim(force: force)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try finish(using: previous)
    }

    /// Whether `relative` is a file the previous report wrote and it still exists (reusable).
    public func wroteBefore(_ relative: String) -> Bool {
        previous.contains(relative) && FileManager.default.fileExists(atPath: "\(directory)/\(relative)")
    }

    /// Deletes the files the previous report wrote that this one does not use, then records
    /// `used` as the report's files.
    public func finish(using used: Set<String>) throws {
        let fm = FileManager.default
        for file in previous.subtracting(used) {
            try? fm.removeItem(atPath: "\(directory)/\(file)")
        }
        let object: [String: Any] = ["candela_report": 1, "files": used.sorted()]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: "\(directory)/\(Self.manifestName)"), options: .atomic)
        previous = used
    }
}
