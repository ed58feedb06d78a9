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
}
