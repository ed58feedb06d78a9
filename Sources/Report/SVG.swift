import Foundation
import Imaging

/// Server-side SVG for the report: no script, no network. Every text is escaped here.
enum SVG {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func hex(_ c: (UInt8, UInt8, UInt8)) -> String { String(format: "#%02x%02x%02x", c.0, c.1, c.2) }

    /// A horizontal colour bar of `colormap` from 0 (left) to 1 (right), with its two end labels.
    static func colorBar(_ colormap: Colormap, low: String, high: String, width: Int = 240) -> String {
        let stops = (0...10).map { i -> String in
            let v = Float(i) / 10
            return "<stop offset=\"\(i * 10)%\" stop-color=\"\(hex(colormap.color(v)))\"/>"
        }.joined()
        let id = "cb-\(colormap.rawValue)"
        return """
        <svg class="colorbar" role="img" aria-label="colour scale: \(escape(low)) to \(escape(high))" width="\(width)" height="34" viewBox="0 0 \(width) 34" xmlns="http://www.w3.org/2000/svg">\
        <defs><linearGradient id="\(id)">\(stops)</linearGradient></defs>\
        <rect x="0" y="0" width="\(width)" height="14" fill="url(#\(id))" stroke="#555" stroke-width="0.5"/>\
        <text x="0" y="28" font-size="11" fill="#333">\(escape(low))</text>\
        <text x="\(width)" y="28" font-size="11" fill="#333" text-anchor="end">\(escape(high))</text></svg>
        """
    }

    /// A diverging colour bar (blue, white at 0, red: `Overlay.bwr`) with its ends and centre labelled.
    static func divergingBar(low: String, high: String, width: Int = 240) -> String {
        let stops = (0...10).map { i -> String in
            let c = Overlay.bwr(Float(i) / 5 - 1)
            return "<stop offset=\"\(i * 10)%\" stop-color=\"\(hex(c))\"/>"
        }.joined()
        return """
        <svg class="colorbar" role="img" aria-label="diverging colour scale: \(escape(low)) (against) to \(escape(high)) (for)" width="\(width)" height="34" viewBox="0 0 \(width) 34" xmlns="http://www.w3.org/2000/svg">\
        <defs><linearGradient id="cb-bwr">\(stops)</linearGradient></defs>\
        <rect x="0" y="0" width="\(width)" height="14" fill="url(#cb-bwr)" stroke="#555" stroke-width="0.5"/>\
        <text x="0" y="28" font-size="11" fill="#333">\(escape(low)) against</text>\
        <text x="\(width / 2)" y="28" font-size="11" fill="#333" text-anchor="middle">0</text>\
        <text x="\(width)" y="28" font-size="11" fill="#333" text-anchor="end">for \(escape(high))</text></svg>
        """
    }

    /// Horizontal bars for values in [0,1], one per label, the value printed at the bar's end.
    static func bars(_ rows: [(label: String, value: Double)], title: String, width: Int = 420) -> String {
        let labelWidth = 170, barWidth = width - labelWidth - 50, rowHeight = 20
        let height = rows.count * rowHeight + 24
        var body = "<text x=\"0\" y=\"14\" font-size=\"12\" font-weight=\"600\" fill=\"#222\">\(escape(title))</text>"
        for (i, r) in rows.enumerated() {
            let y = 22 + i * rowHeight
            let w = Int((Double(barWidth) * min(1, max(0, r.value))).rounded())
            body += "<text x=\"\(labelWidth - 6)\" y=\"\(y + 13)\" font-size=\"12\" text-anchor=\"end\" fill=\"#222\">\(escape(r.label))</text>"
            body += "<rect x=\"\(labelWidth)\" y=\"\(y + 2)\" width=\"\(barWidth)\" height=\"14\" fill=\"#ecebf3\"/>"
            body += "<rect x=\"\(labelWidth)\" y=\"\(y + 2)\" width=\"\(w)\" height=\"14\" fill=\"#3b528b\"/>"
            body += "<text x=\"\(labelWidth + barWidth + 6)\" y=\"\(y + 13)\" font-size=\"12\" fill=\"#222\">\(String(format: "%.0f%%", 100 * r.value))</text>"
        }
        return "<svg role=\"img\" aria-label=\"\(escape(title))\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" xmlns=\"http://www.w3.org/2000/svg\">\(body)</svg>"
    }

    /// A colour per cluster (Okabe and Ito 2008, colour-blind safe), cycling after eight.
    static func clusterColor(_ i: Int) -> String {
        let palette = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]
        return palette[((i % palette.count) + palette.count) % palette.count]
    }

    /// A scatter plot of 2-D points coloured by group; points of flagged groups drawn as crosses;
    /// each point a link when it has one, its title shown on hover.
    static func scatter(_ points: [(x: Double, y: Double, group: Int, flagged: Bool, title: String, href: String?)], title: String,
                        width: Int = 420, height: Int = 320) -> String {
        let finite = points.filter { $0.x.isFinite && $0.y.isFinite }
        let (x0, x1) = (finite.map(\.x).min() ?? 0, finite.map(\.x).max() ?? 1)
        let (y0, y1) = (finite.map(\.y).min() ?? 0, finite.map(\.y).max() ?? 1)
        let pad = 14.0, top = 22.0
        func px(_ x: Double) -> Double { pad + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (Double(width) - 2 * pad) }
        func py(_ y: Double) -> Double { top + (y1 > y0 ? (y1 - y) / (y1 - y0) : 0.5) * (Double(height) - top - pad) }
        var body = "<text x=\"0\" y=\"14\" font-size=\"12\" font-weight=\"600\" fill=\"#222\">\(escape(title))</text>"
        body += "<rect x=\"1\" y=\"\(Int(top) - 6)\" width=\"\(width - 2)\" height=\"\(height - Int(top) + 5)\" fill=\"none\" stroke=\"#d6d6dc\"/>"
        for p in finite {
            let (cx, cy) = (String(format: "%.1f", px(p.x)), String(format: "%.1f", py(p.y)))
            let colour = clusterColor(p.group)
            let mark = p.flagged
                ? "<path d=\"M\(cx) \(cy) m-4 -4 l8 8 m0 -8 l-8 8\" stroke=\"\(colour)\" stroke-width=\"2.2\"><title>\(escape(p.title)) (cluster \(p.group), flagged)</title></path>"
                : "<circle cx=\"\(cx)\" cy=\"\(cy)\" r=\"4\" fill=\"\(colour)\" fill-opacity=\"0.75\"><title>\(escape(p.title)) (cluster \(p.group))</title></circle>"
            body += p.href.map { "<a href=\"\(escape($0))\">\(mark)</a>" } ?? mark
        }
        return "<svg class=\"scatter\" role=\"img\" aria-label=\"\(escape(title))\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" xmlns=\"http://www.w3.org/2000/svg\">\(body)</svg>"
    }

    /// The smallest Laplacian eigenvalues as dots, the largest gap (the chosen cluster count) marked.
    static func eigenvalues(_ values: [Double], chosen: Int, width: Int = 300, height: Int = 160) -> String {
        guard !values.isEmpty else { return "" }
        let top = max(values.max() ?? 1, 1e-9), left = 34.0, bottom = Double(height) - 22
        let step = (Double(width) - left - 10) / Double(max(1, values.count - 1))
        func py(_ v: Double) -> Double { 24 + (1 - max(0, v) / top) * (bottom - 24) }
        var body = "<text x=\"0\" y=\"14\" font-size=\"12\" font-weight=\"600\" fill=\"#222\">Eigenvalues (the largest gap chose \(chosen))</text>"
        body += "<line x1=\"\(left)\" y1=\"\(bottom)\" x2=\"\(width - 6)\" y2=\"\(bottom)\" stroke=\"#999\"/>"
        body += "<text x=\"\(left - 4)\" y=\"\(bottom + 4)\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">0</text>"
        body += "<text x=\"\(left - 4)\" y=\"28\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">\(String(format: "%.2f", top))</text>"
        if chosen >= 1, chosen < values.count {
            let x = left + (Double(chosen) - 0.5) * step
            body += "<line x1=\"\(String(format: "%.1f", x))\" y1=\"22\" x2=\"\(String(format: "%.1f", x))\" y2=\"\(bottom)\" stroke=\"#cc3311\" stroke-dasharray=\"4 3\"/>"
        }
        for (i, v) in values.enumerated() {
            let x = left + Double(i) * step
            body += "<circle cx=\"\(String(format: "%.1f", x))\" cy=\"\(String(format: "%.1f", py(v)))\" r=\"3.5\" fill=\"#3b528b\"><title>λ\(i + 1) = \(String(format: "%.4f", v))</title></circle>"
            body += "<text x=\"\(String(format: "%.1f", x))\" y=\"\(Int(bottom) + 14)\" font-size=\"10\" text-anchor=\"middle\" fill=\"#555\">\(i + 1)</text>"
        }
        return "<svg role=\"img\" aria-label=\"eigenvalues\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" xmlns=\"http://www.w3.org/2000/svg\">\(body)</svg>"
    }

    /// One strip per label: every value as a dot on a common axis (min to max of all values), the
    /// median as a bar; a distribution at a glance, as a strip plot.
    static func strips(_ rows: [(label: String, values: [Double])], title: String, width: Int = 420) -> String {
        let all = rows.flatMap(\.values).filter(\.isFinite)
        guard let lo = all.min(), let hi = all.max() else { return "" }
        let labelWidth = 150, plot = Double(width - labelWidth - 16), rowHeight = 22
        let height = rows.count * rowHeight + 40
        func px(_ v: Double) -> Double { Double(labelWidth) + (hi > lo ? (v - lo) / (hi - lo) : 0.5) * plot }
        var body = "<text x=\"0\" y=\"14\" font-size=\"12\" font-weight=\"600\" fill=\"#222\">\(escape(title))</text>"
        for (i, r) in rows.enumerated() {
            let y = 24 + i * rowHeight + rowHeight / 2
            body += "<text x=\"\(labelWidth - 6)\" y=\"\(y + 4)\" font-size=\"12\" text-anchor=\"end\" fill=\"#222\">\(escape(r.label))</text>"
            body += "<line x1=\"\(labelWidth)\" y1=\"\(y)\" x2=\"\(Int(Double(labelWidth) + plot))\" y2=\"\(y)\" stroke=\"#e0e0e6\"/>"
            let values = r.values.filter(\.isFinite)
            for (k, v) in values.enumerated() {
                // A small deterministic vertical jitter keeps equal values visible.
                let jitter = Double((k * 7) % 9 - 4)
                body += "<circle cx=\"\(String(format: "%.1f", px(v)))\" cy=\"\(String(format: "%.1f", Double(y) + jitter))\" r=\"2.2\" fill=\"#3b528b\" fill-opacity=\"0.45\"/>"
            }
            if !values.isEmpty {
                let sorted = values.sorted()
                let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
                let x = String(format: "%.1f", px(median))
                body += "<line x1=\"\(x)\" y1=\"\(y - 8)\" x2=\"\(x)\" y2=\"\(y + 8)\" stroke=\"#cc3311\" stroke-width=\"2\"><title>median \(String(format: "%.3g", median)) of \(values.count)</title></line>"
            }
        }
        let axis = 24 + rows.count * rowHeight + 12
        body += "<text x=\"\(labelWidth)\" y=\"\(axis)\" font-size=\"10\" fill=\"#555\">\(String(format: "%.3g", lo))</text>"
        body += "<text x=\"\(Int(Double(labelWidth) + plot))\" y=\"\(axis)\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">\(String(format: "%.3g", hi))</text>"
        return "<svg role=\"img\" aria-label=\"\(escape(title))\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" xmlns=\"http://www.w3.org/2000/svg\">\(body)</svg>"
    }

    /// Paul Tol's "bright" qualitative colours (distinguishable with the common colour blindnesses).
    static let palette = ["#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB", "#222222"]

    /// A line chart, one line per series, each in its own colour with its label and `note` in
    /// the legend; the n points of a series sit at x = 0 … 1 evenly (`xFrom` 0) or at x = 1 … n
    /// (`xFrom` 1). `reference` draws a dashed horizontal line (a threshold) labelled with its value.
    static func lines(_ series: [(label: String, points: [Double], note: String)], title: String, xLabel: String, yLabel: String,
                      xFrom: Int = 0, yRange: ClosedRange<Double>, reference: Double? = nil, width: Int = 420) -> String {
        let drawn = series.filter { $0.points.count > 1 || ($0.points.count == 1 && xFrom == 1) }
        guard !drawn.isEmpty else { return "" }
        let (left, right, top, plotHeight) = (44.0, Double(width) - 12, 26.0, 150.0)
        let legendTop = Int(top + plotHeight) + 34
        let height = legendTop + drawn.count * 16 + 6
        let maxN = drawn.map(\.points.count).max()!
        func px(_ i: Int, _ n: Int) -> Double {
            xFrom == 1 ? left + (maxN > 1 ? Double(i) / Double(maxN - 1) : 0.5) * (right - left)
                       : left + Double(i) / Double(max(1, n - 1)) * (right - left)
        }
        func py(_ v: Double) -> Double {
            top + (1 - (min(yRange.upperBound, max(yRange.lowerBound, v)) - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound)) * plotHeight
        }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var body = "<text x=\"0\" y=\"14\" font-size=\"12\" font-weight=\"600\" fill=\"#222\">\(escape(title))</text>"
        body += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(plotHeight))\" fill=\"#fff\" stroke=\"#bbb\"/>"
        for v in [yRange.lowerBound, (yRange.lowerBound + yRange.upperBound) / 2, yRange.upperBound] {
            body += "<text x=\"\(f(left - 4))\" y=\"\(f(py(v) + 4))\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">\(String(format: "%.3g", v))</text>"
        }
        let xTicks = xFrom == 1 ? [("1", left), ("\(maxN)", right)] : [("0", left), ("0.5", (left + right) / 2), ("1", right)]
        for (label, x) in xTicks {
            body += "<text x=\"\(f(x))\" y=\"\(f(top + plotHeight + 13))\" font-size=\"10\" text-anchor=\"middle\" fill=\"#555\">\(label)</text>"
        }
        body += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(top + plotHeight + 26))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333\">\(escape(xLabel))</text>"
        body += "<text x=\"10\" y=\"\(f(top + plotHeight / 2))\" font-size=\"11\" fill=\"#333\" text-anchor=\"middle\" transform=\"rotate(-90 10 \(f(top + plotHeight / 2)))\">\(escape(yLabel))</text>"
        if let reference {
            body += "<line x1=\"\(f(left))\" y1=\"\(f(py(reference)))\" x2=\"\(f(right))\" y2=\"\(f(py(reference)))\" stroke=\"#cc3311\" stroke-dasharray=\"4 3\"><title>\(String(format: "%.3g", reference))</title></line>"
        }
        for (k, s) in drawn.enumerated() {
            let colour = palette[k % palette.count]
            let points = s.points.enumerated().map { "\(f(px($0.offset, s.points.count))),\(f(py($0.element)))" }.joined(separator: " ")
            body += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.8\"><title>\(escape(s.label)): \(escape(s.note))</title></polyline>"
            let y = legendTop + k * 16
            body += "<line x1=\"\(Int(left))\" y1=\"\(y - 4)\" x2=\"\(Int(left) + 18)\" y2=\"\(y - 4)\" stroke=\"\(colour)\" stroke-width=\"2.5\"/>"
            body += "<text x=\"\(Int(left) + 24)\" y=\"\(y)\" font-size=\"11\" fill=\"#222\">\(escape(s.label)) — \(escape(s.note))</text>"
        }
        return "<svg role=\"img\" aria-label=\"\(escape(title))\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" xmlns=\"http://www.w3.org/2000/svg\">\(body)</svg>"
    }

    /// Horizontal bars of positive amounts (seconds, counts), scaled to the largest, the amount
    /// printed at each bar's end with `unit`.
    static func amounts(_ rows: [(label: String, value: Double)], title: String, unit: String, width: Int = 420) -> String {
        guard let top = rows.map(\.value).max(), top > 0 else { return "" }
        let labelWidth = 150, barWidth = width - labelWidth - 70, rowHeight = 20
        let height = rows.count * rowHeight + 24
        var body = "<text x=\"0\" y=\"14\" font-size=\"12\" font-weight=\"600\" fill=\"#222\">\(escape(title))</text>"
        for (i, r) in rows.enumerated() {
            let y = 22 + i * rowHeight
            let w = Int((Double(barWidth) * r.value / top).rounded())
            body += "<text x=\"\(labelWidth - 6)\" y=\"\(y + 13)\" font-size=\"12\" text-anchor=\"end\" fill=\"#222\">\(escape(r.label))</text>"
            body += "<rect x=\"\(labelWidth)\" y=\"\(y + 2)\" width=\"\(w)\" height=\"14\" fill=\"#3b528b\"/>"
            body += "<text x=\"\(labelWidth + w + 6)\" y=\"\(y + 13)\" font-size=\"12\" fill=\"#222\">\(String(format: "%.3g", r.value)) \(escape(unit))</text>"
        }
        return "<svg role=\"img\" aria-label=\"\(escape(title))\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" xmlns=\"http://www.w3.org/2000/svg\">\(body)</svg>"
    }
}
