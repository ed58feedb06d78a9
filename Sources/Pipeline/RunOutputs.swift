import Foundation
import Store

/// A finished run in the forms machines read (docs/ci.md): JUnit XML for a CI server, a JSON
/// summary for a dashboard, and Prometheus text for node_exporter's textfile collector.
/// Everything comes from the store, read once for all three, so `candela run` and `candela
/// merge` write the same for the same rows.
public final class RunOutputs {
    public let store: Store
    public let runID: Int64
    /// The store's path and the report's index, as the command knows them.
    public let database: String
    public let reportIndex: String?
    public let seconds: Double
    /// Heatmaps computed, reused from the store, and left out by `only:` scopes (0 for a merge).
    public let heatmaps: (computed: Int, reused: Int, skipped: Int)

    /// The summary's schema version (docs/ci.md); raised when a key changes meaning or goes away.
    public static let summarySchema = 1

    public init(store: Store, runID: Int64, database: String, reportIndex: String?, seconds: Double,
                heatmaps: (computed: Int, reused: Int, skipped: Int) = (0, 0, 0)) {
        self.store = store
        self.runID = runID
        self.database = database
        self.reportIndex = reportIndex
        self.seconds = seconds
        self.heatmaps = heatmaps
    }

    struct Facts {
        let run: RunRecord
        let items: Int
        let failures: [FailureRecord]
        let gates: [GateResultRecord]
        let metrics: [MetricRecord]
        let modelNames: [String: String]
    }

    private var read: Facts?

    /// The run's rows, read from the store the first time an output needs them.
    func facts() throws -> Facts {
        if let read { return read }
        guard let run = try store.runs().first(where: { $0.id == runID }) else { throw StoreError("\(database): no run \(runID)") }
        let facts = Facts(run: run, items: try store.items(run: runID).count, failures: try store.failures(run: runID),
                          gates: try store.gateResults(run: runID), metrics: try store.metrics(run: runID),
                          modelNames: Dictionary(try store.models().map { ($0.hash, $0.name) }, uniquingKeysWith: { a, _ in a }))
        read = facts
        return facts
    }

    // MARK: - JUnit

    /// JUnit XML (the schema Jenkins' xUnit plugin and pytest validate against, junit-10.xsd):
    /// one suite "run" with one case (the run finished; a failure when items failed, an error when
    /// it was interrupted), one suite "gates" with a case per gate, one suite "items" with a case
    /// per failed item (an error naming its stage).
    public func junit() throws -> String {
        let f = try facts()
        func esc(_ s: String) -> String {
            var out = ""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case "\n": out += "&#10;"
                case "\t", "\r": out += " "
                default:
                    // Characters XML 1.0 cannot hold at all become U+FFFD.
                    let v = scalar.value
                    out.unicodeScalars.append(v < 0x20 || (0xD800...0xDFFF).contains(v) || v == 0xFFFE || v == 0xFFFF ? "\u{FFFD}" : scalar)
                }
            }
            return out
        }
        let pipeline = esc(f.run.pipeline)
        let time = String(format: "%.3f", seconds)
        var suites: [String] = []
        // The run.
        var runCase = "<testcase classname=\"candela.\(pipeline)\" name=\"run \(runID)\" time=\"\(time)\""
        switch f.run.status {
        case "complete": runCase += "/>"
        case "partial":
            runCase += "><failure type=\"partial\" message=\"\(f.failures.count) failure(s): items or stages that failed; \(f.items) items stored\"/></testcase>"
        default:
            runCase += "><error type=\"\(esc(f.run.status))\" message=\"the run is \(esc(f.run.status))\"/></testcase>"
        }
        let runFailed = f.run.status == "partial" ? 1 : 0, runErrored = ["complete", "partial"].contains(f.run.status) ? 0 : 1
        suites.append("<testsuite name=\"run\" tests=\"1\" failures=\"\(runFailed)\" errors=\"\(runErrored)\" skipped=\"0\" "
                      + "time=\"\(time)\" timestamp=\"\(esc(f.run.startedAt))\">\(runCase)</testsuite>")
        // Gates.
        let gateCases = f.gates.map { g -> String in
            let subject = g.explainer.map { "\(g.metric) of \($0)" } ?? g.metric
            let value = g.value.map { String(format: "%.6g", $0) } ?? "no value"
            let head = "<testcase classname=\"candela.\(pipeline).gates\" name=\"\(esc(g.name))\" time=\"0\""
            guard !g.passed else { return head + "/>" }
            let message = "\(subject) = \(value), needs \(g.comparison) \(String(format: "%g", g.threshold))"
            return head + "><failure type=\"gate\" message=\"\(esc(message))\"/></testcase>"
        }
        suites.append("<testsuite name=\"gates\" tests=\"\(gateCases.count)\" failures=\"\(f.gates.filter { !$0.passed }.count)\" "
                      + "errors=\"0\" skipped=\"0\" time=\"0\">\(gateCases.joined())</testsuite>")
        // Failed items.
        let itemCases = f.failures.map { x in
            "<testcase classname=\"candela.\(pipeline).items\" name=\"\(esc(x.itemPath))\" time=\"0\">"
                + "<error type=\"\(esc(x.stage))\" message=\"\(esc(x.message))\"/></testcase>"
        }
        suites.append("<testsuite name=\"items\" tests=\"\(itemCases.count)\" failures=\"0\" errors=\"\(itemCases.count)\" "
                      + "skipped=\"0\" time=\"0\">\(itemCases.joined())</testsuite>")
        let tests = 1 + gateCases.count + itemCases.count
        let failures = runFailed + f.gates.filter { !$0.passed }.count
        let errors = runErrored + itemCases.count
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"candela: \(pipeline)\" tests=\"\(tests)\" "
            + "failures=\"\(failures)\" errors=\"\(errors)\" time=\"\(time)\">\n" + suites.joined(separator: "\n") + "\n</testsuites>\n"
    }

    // MARK: - JSON summary

    /// The run as one JSON object (schema in docs/ci.md).
    public func summary() throws -> Data {
        let f = try facts()
        var metricSummaries: [[String: Any]] = []
        let grouped = Dictionary(grouping: f.metrics, by: { "\($0.modelHash)\u{1}\($0.explainer)\u{1}\($0.name)" })
        for key in grouped.keys.sorted() {
            let rows = grouped[key]!
            let values = rows.compactMap(\.value).filter(\.isFinite)
            metricSummaries.append([
                "model": f.modelNames[rows[0].modelHash] ?? rows[0].modelHash, "explainer": rows[0].explainer, "metric": rows[0].name,
                "items": rows.count, "with_value": values.count,
                "mean": values.isEmpty ? NSNull() : values.reduce(0, +) / Double(values.count) as Any,
            ])
        }
        let gates = f.gates.map { g -> [String: Any] in
            // Thresholds are read as 32-bit floats: shown at that precision (0.99, not 0.9900000095).
            ["name": g.name, "metric": g.metric, "explainer": g.explainer ?? NSNull(), "comparison": g.comparison,
             "threshold": Double(String(format: "%.7g", g.threshold)) ?? g.threshold, "value": g.value.map { $0 as Any } ?? NSNull(), "passed": g.passed]
        }
        let object: [String: Any] = [
            "schema": RunOutputs.summarySchema,
            "candela_version": f.run.candelaVersion,
            "pipeline": f.run.pipeline, "manifest": f.run.manifestPath, "manifest_sha256": f.run.manifestHash,
            "run": runID, "status": f.run.status, "started_at": f.run.startedAt, "finished_at": f.run.finishedAt ?? NSNull(),
            "seconds": (seconds * 1000).rounded() / 1000,
            "items": f.items, "failures": f.failures.count,
            "heatmaps": ["computed": heatmaps.computed, "reused": heatmaps.reused, "skipped": heatmaps.skipped],
            "gates": gates, "verdict": f.gates.isEmpty ? "none" : (f.gates.allSatisfy(\.passed) ? "pass" : "fail"),
            "metrics": metricSummaries,
            "store": database, "report": reportIndex ?? NSNull(),
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    // MARK: - Prometheus text

    /// The Prometheus text exposition format (version 0.0.4, what node_exporter's textfile
    /// collector reads), every sample labelled with the pipeline: items, failures, duration,
    /// heatmaps, the run's status, and per gate whether it passed and its value.
    public func prometheus() throws -> String {
        let f = try facts()
        func label(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
        }
        func number(_ v: Double) -> String { v.isNaN ? "NaN" : v.isInfinite ? (v > 0 ? "+Inf" : "-Inf") : String(format: "%.10g", v) }
        let p = "pipeline=\"\(label(f.run.pipeline))\""
        var lines: [String] = []
        func gauge(_ name: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) gauge")
            for s in samples { lines.append("\(name){\(p)\(s.labels)} \(number(s.value))") }
        }
        gauge("candela_run_items", "Items of the run.", [("", Double(f.items))])
        gauge("candela_run_failures", "Failure rows of the run (items or stages that failed).", [("", Double(f.failures.count))])
        gauge("candela_run_duration_seconds", "Wall-clock seconds of the run.", [("", seconds)])
        gauge("candela_run_heatmaps", "Heatmaps of the run by how they were obtained.",
              [(",source=\"computed\"", Double(heatmaps.computed)), (",source=\"reused\"", Double(heatmaps.reused)),
               (",source=\"skipped\"", Double(heatmaps.skipped))])
        gauge("candela_run_status", "1 for the run's status, 0 for the others.",
              ["complete", "partial", "interrupted", "running"].map { (",status=\"\($0)\"", f.run.status == $0 ? 1 : 0) })
        let finished = ISO8601DateFormatter().date(from: f.run.finishedAt ?? f.run.startedAt)?.timeIntervalSince1970 ?? 0
        gauge("candela_run_finished_timestamp_seconds", "When the run finished (Unix time).", [("", finished)])
        gauge("candela_gate_passed", "1 when the gate passed, 0 when it failed.",
              f.gates.map { (",gate=\"\(label($0.name))\",metric=\"\(label($0.metric))\"", $0.passed ? 1 : 0) })
        gauge("candela_gate_value", "The value the gate measured (NaN: nothing measured).",
              f.gates.map { (",gate=\"\(label($0.name))\",metric=\"\(label($0.metric))\"", $0.value ?? .nan) })
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `text` to `path` through a temporary file in the same folder and a rename, so that
    /// a reader (node_exporter, a CI step) never sees half a file.
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        do {
            try data.write(to: temporary)
            if FileManager.default.fileExists(atPath: path) {
                _ = try FileManager.default.replaceItemAt(url, withItemAt: temporary)
            } else {
                try FileManager.default.moveItem(at: temporary, to: url)
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw PipelineError("\(path): cannot write (\(error.localizedDescription))")
        }
    }
}
