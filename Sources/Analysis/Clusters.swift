import Foundation
import Imaging
import Store

/// A spray stage over a run's stored heatmaps (docs/analysis.md, "SpRAy"): per model, explainer
/// and explained class, the heatmaps are pooled item by item (a heatmap is never kept whole), then
/// clustered by `SpRAy.analyse`. Object masks come from the items' lesion masks (`mask` column
/// of a CSV dataset); slide tiles and items without one are analysed without.
public enum Clusters {
    public static func spray(store: Store, runID: Int64, name: String, settings: SpRAy.Settings, explainers: Set<String>?,
                             models: Set<String>?, log: (String) -> Void = { _ in }) throws
        -> (rows: [ClusterRecord], summaries: [ClusterSummaryRecord]) {
        struct Group: Hashable { let model: String; let explainer: String; let target: Int }
        let names = Dictionary(try store.models().map { ($0.hash, $0.name) }, uniquingKeysWith: { a, _ in a })
        var groups: [Group: [SpRAy.Sample]] = [:]
        var maskCache: [String: [Bool]?] = [:]
        let reading = Date()
        for item in try store.items(run: runID) {
            guard let id = item.id else { continue }
            var object: [Bool]??
            for a in try store.attributions(item: id) where explainers?.contains(a.explainer) ?? true {
                guard models?.contains(names[a.modelHash] ?? "") ?? true else { continue }
                let (low, high) = a.rawRange
                let raw = a.heatmap.map { Float(low + Double($0) * (high - low)) }
                if object == nil {
                    object = try item.maskPath.map { path -> [Bool]? in
                        if let cached = maskCache[path] { return cached }
                        let m = try Codecs.decode(path: path, as: .gray)
                        let cells = SpRAy.poolMask(m.pixels.map { $0 >= 128 ? 1 : 0 }, width: m.width, height: m.height, size: settings.size)
                        maskCache[path] = cells
                        return cells
                    } ?? .some(nil)
                }
                groups[Group(model: a.modelHash, explainer: a.explainer, target: a.target), default: []].append(
                    SpRAy.Sample(id: id, features: SpRAy.pool(raw, width: a.width, height: a.height, size: settings.size),
                                 object: object ?? nil))
            }
            if maskCache.count > 4096 { maskCache.removeAll() }
        }
        log(String(format: "spray '%@': %d heatmaps pooled to %d×%d in %.2f s", name, groups.values.reduce(0) { $0 + $1.count },
                   settings.size, settings.size, Date().timeIntervalSince(reading)))
        var rows: [ClusterRecord] = []
        var summaries: [ClusterSummaryRecord] = []
        for group in groups.keys.sorted(by: { ($0.model, $0.explainer, $0.target) < ($1.model, $1.explainer, $1.target) }) {
            let samples = groups[group]!
            let started = Date()
            let result = SpRAy.analyse(samples, settings: settings)
            if !result.converged {
                log("warning: spray '\(name)': the eigensolver for \(group.explainer) class \(group.target) did not converge in 20,000 steps; its clusters are approximate")
            }
            let medoids = Set(result.clusters.map(\.medoid))
            for (i, s) in samples.enumerated() {
                rows.append(ClusterRecord(runID: runID, name: name, itemID: s.id, modelHash: group.model, explainer: group.explainer,
                                          classIndex: group.target, cluster: result.assignment[i], medoid: medoids.contains(i),
                                          x: result.embedding[i].x, y: result.embedding[i].y))
            }
            for c in result.clusters {
                summaries.append(ClusterSummaryRecord(
                    runID: runID, name: name, modelHash: group.model, explainer: group.explainer, classIndex: group.target,
                    cluster: c.index, size: c.members.count, medoidItem: samples[c.medoid].id, flagged: c.flagged, reasons: c.reasons,
                    place: c.place, outsideShare: c.outsideShare, objectLift: c.objectLift, regionShare: c.regionShare, grid: settings.size, meanMap: c.mean,
                    region: c.region, eigenvalues: result.eigenvalues, neighbours: result.neighbours))
            }
            let flagged = result.clusters.filter(\.flagged).count
            let count = result.clusters.count == 1 ? "1 cluster" : "\(result.clusters.count) clusters"
            log(String(format: "spray '%@': %@ [%@] class %d: %d heatmaps, %@, %d flagged (%.2f s)", name, group.explainer,
                       names[group.model] ?? String(group.model.prefix(12)), group.target, samples.count, count, flagged,
                       Date().timeIntervalSince(started)))
        }
        return (rows, summaries)
    }
}
