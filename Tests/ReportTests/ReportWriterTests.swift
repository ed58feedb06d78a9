import Foundation
import TestSupport
import XCTest
@testable import Report
import Store

/// The report reads only the store (plus original images) and escapes everything it shows.
final class ReportWriterTests: XCTestCase {
    func testReportShowsItemsOverlaysAndSummary() throws {
        let store = try Store(path: ":memory:")
        let run = try store.insert(RunRecord(pipeline: "nightly <audit>", manifestPath: "/m.yaml", manifestHash: "h",
                                             candelaVersion: "0.1.0", startedAt: "2026-11-26T00:00:00Z", status: "complete", jobs: 1))
        try store.upsert(ModelRecord(hash: "abcdef0123456789", name: "cnn", path: "/m.onnx", classes: ["normal", "abnormal"],
                                     preprocessing: "{}"))
        let image = Support.repo("datasets/demo/images/slide_001.png")
        for (i, label) in ["abnormal", "normal"].enumerated() {
            let item = try store.insert(ItemRecord(runID: run, dataset: "d", path: i == 0 ? image : "/missing/\"quoted\".png",
                                                   label: label, maskPath: nil, contentHash: "c\(i)", width: 128, height: 128))
            try store.insert(PredictionRecord(itemID: item, modelHash: "abcdef0123456789", classIndex: 1, className: "abnormal",
                                              probability: 0.9, probabilities: [0.1, 0.9]))
            try store.insert(AttributionRecord(itemID: item, modelHash: "abcdef0123456789", explainer: "gradcam", method: "gradcam",
                                               parameters: "{}", target: 1, cacheKey: "k\(i)", rawShape: [2, 2], height: 2, width: 2,
                                               heatmap: [0, 0.5, 0.5, 1], seconds: 0.02 * Double(i + 1)))
            if i == 0 {
                // A signed method: its map kept signed for the red/blue overlay.
                try store.insert(AttributionRecord(itemID: item, modelHash: "abcdef0123456789", explainer: "lrp", method: "lrp",
                                                   parameters: "{}", target: 1, cacheKey: "s\(i)", rawShape: [3, 2, 2], height: 2, width: 2,
                                                   heatmap: [1, 0.5, 0, 0.5], seconds: 0.01, signed: [1, 0.5, -0.5, 0], signedMax: 4))
            }
            try store.insert(MetricRecord(itemID: item, explainer: "gradcam", name: "energy_pointing_game", value: 0.25 * Double(i + 1)))
            try store.insert(MetricRecord(itemID: item, explainer: "gradcam", name: "pointing_game", value: i == 0 ? 1 : nil))
            try store.insert(MetricRecord(itemID: item, explainer: "gradcam", name: "pointing_game_strict", value: i == 0 ? 0 : nil))
        }
        let dir = Support.temporaryDirectory()
        let index = try ReportWriter(store: store, runID: run, directory: dir,
                                     cards: ["gradcam": ReportCard(title: "Grad-CAM", meaning: "m", cost: "c", limits: "l")]).write()
        let html = try String(contentsOfFile: index, encoding: .utf8)
        XCTAssertTrue(html.contains("nightly &lt;audit&gt;"))
        XCTAssertTrue(html.contains("1 / 2 correct (50.0%)"))
        XCTAssertTrue(html.contains("<td>gradcam</td><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">100%</td>"
                                    + "<td class=\"num\">0</td><td class=\"num\">0%</td>"), html)
        // Confusion matrix: normal predicted abnormal is off the diagonal.
        XCTAssertTrue(html.contains("<tr><th>normal</th><td class=\"num\">0</td><td class=\"num bad\">1</td></tr>"), html)
        // The misclassified item leads "most confident errors", its name escaped.
        XCTAssertTrue(html.contains("&quot;quoted&quot;.png"))
        XCTAssertTrue(html.contains("Grad-CAM"))
        // Plots as inline SVG: the metric's distribution (two dots, the median between them) and time per heatmap.
        XCTAssertTrue(html.contains("aria-label=\"energy_pointing_game: every item (dots), median (red)\""), html)
        XCTAssertTrue(html.contains("<title>median 0.375 of 2</title>"), html)
        XCTAssertTrue(html.contains(">30 ms</text>"), html)
        XCTAssertFalse(html.contains("src=\"http") || html.contains("href=\"http") || html.contains("<script src"),
                       "the report must not reach the network")
        let gallery = try String(contentsOfFile: "\(dir)/gallery-abnormal-1.html", encoding: .utf8)
        XCTAssertTrue(gallery.contains("misclassified"))
        XCTAssertTrue(gallery.contains("image unreadable"))
        // One original and one overlay for the readable item, named by content hash and cache key.
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/images").sorted()
        // The signed method's heatmap alone is the red/blue one; its sequential overlay serves the doctor's page.
        XCTAssertEqual(files, ["c0.jpg", "k0-viridis-q995-map.jpg", "k0-viridis-q995.jpg", "s0-bwr-q995-map.jpg", "s0-bwr-q995.jpg",
                               "s0-viridis-q995.jpg"])
        // The item page: the signed map in red and blue with its diverging scale in raw units, the
        // switch between overlay, heatmap alone and image alone; the doctor keeps the magnitude.
        let items = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/items").sorted()
        let page = try items.map { try String(contentsOfFile: "\(dir)/items/\($0)", encoding: .utf8) }.first { $0.contains("lrp (lrp)") }!
        XCTAssertTrue(page.contains("red: for abnormal, blue: against; full colour at ±4 "), page)
        XCTAssertTrue(page.contains("aria-label=\"diverging colour scale: −4 (against) to +4 (for)\""), page)
        XCTAssertTrue(page.contains("src=\"../images/s0-bwr-q995.jpg\""))
        XCTAssertTrue(page.contains("class=\"v-map\" src=\"../images/s0-bwr-q995-map.jpg\""))
        XCTAssertTrue(page.contains("class=\"v-img\" src=\"../images/c0.jpg\""))
        XCTAssertTrue(page.contains("id=\"view-map\""))
        let doctors = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/doctor")
        XCTAssertFalse(try doctors.contains { try String(contentsOfFile: "\(dir)/doctor/\($0)", encoding: .utf8).contains("bwr") })
        // A second write keeps them (written once) and a doctor's page exists per item.
        let before = try FileManager.default.attributesOfItem(atPath: "\(dir)/images/c0.jpg")[.modificationDate] as? Date
        Thread.sleep(forTimeInterval: 0.01)
        _ = try ReportWriter(store: store, runID: run, directory: dir).write()
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: "\(dir)/images/c0.jpg")[.modificationDate] as? Date, before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/doctor").count, 2)
    }
}

/// The vendored viewer library is byte for byte what tools/vendor_leaflet.sh recorded.
final class VendoredLeafletTests: XCTestCase {
    func testLeafletMatchesItsRecordedChecksum() throws {
        for (base64, expected) in [(Leaflet.scriptBase64, Leaflet.scriptSHA256), (Leaflet.styleBase64, Leaflet.styleSHA256)] {
            let path = Support.temporaryDirectory() + "/vendored"
            try XCTUnwrap(Data(base64Encoded: base64)).write(to: URL(fileURLWithPath: path))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
            process.arguments = [path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            process.waitUntilExit()
            let line = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertEqual(line.split(separator: " ").first.map(String.init), expected)
        }
        XCTAssertTrue(String(decoding: try XCTUnwrap(Data(base64Encoded: Leaflet.copyrightBase64)), as: UTF8.self).contains("BSD"))
    }
}
