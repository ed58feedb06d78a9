import Foundation

/// Polygon annotations of a slide in level-0 pixels, read from GeoJSON as QuPath exports it
/// (a FeatureCollection, a list of Features, or one Feature; Polygon and MultiPolygon
/// geometries; the class in `properties.classification.name`). Holes are honoured (even-odd
/// rule over all rings of a polygon).
public struct Annotations: Sendable {
    public struct Region: Sendable {
        public let className: String?
        /// Rings of (x, y) points; the first is the outline, the rest are holes.
        public let rings: [[(Double, Double)]]
        /// Bounding box (x0, y0, x1, y1).
        public let box: (Double, Double, Double, Double)
    }

    public let path: String
    public let regions: [Region]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw SlideError("\(path): cannot read annotations") }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw SlideError("\(path): not JSON (\(error.localizedDescription)); expected GeoJSON as QuPath exports it")
        }
        var features: [[String: Any]] = []
        if let object = root as? [String: Any] {
            if let list = object["features"] as? [[String: Any]] { features = list } else { features = [object] }
        } else if let list = root as? [[String: Any]] {
            features = list
        } else {
            throw SlideError("\(path): expected a GeoJSON FeatureCollection, a Feature or a list of Features")
        }
        var regions: [Region] = []
        for (i, feature) in features.enumerated() {
            guard let geometry = feature["geometry"] as? [String: Any], let type = geometry["type"] as? String else {
                throw SlideError("\(path): feature \(i + 1) has no geometry")
            }
            let properties = feature["properties"] as? [String: Any]
            let className = (properties?["classification"] as? [String: Any])?["name"] as? String
            func ring(_ value: Any) throws -> [(Double, Double)] {
                guard let points = value as? [[Any]] else { throw SlideError("\(path): feature \(i + 1): a ring must be a list of [x, y]") }
                return try points.map { p in
                    guard p.count >= 2, let x = (p[0] as? NSNumber)?.doubleValue, let y = (p[1] as? NSNumber)?.doubleValue else {
                        throw SlideError("\(path): feature \(i + 1): a point must be [x, y] numbers")
                    }
                    return (x, y)
                }
            }
            var polygons: [[Any]] = []
            switch type {
            case "Polygon": polygons = [geometry["coordinates"] as? [Any] ?? []]
            case "MultiPolygon": polygons = (geometry["coordinates"] as? [[Any]]) ?? []
            default: continue // points and lines carry no area
            }
            for polygon in polygons {
                let rings = try polygon.map(ring).filter { $0.count >= 3 }
                guard let outline = rings.first else { continue }
                let xs = outline.map(\.0), ys = outline.map(\.1)
                regions.append(Region(className: className, rings: rings, box: (xs.min()!, ys.min()!, xs.max()!, ys.max()!)))
            }
        }
        self.path = path
        self.regions = regions
    }

    /// Is level-0 point (x, y) inside a region (of class `className` when given)?
    public func contains(_ x: Double, _ y: Double, className: String? = nil) -> Bool {
        regions.contains { r in
            guard className == nil || r.className == className, x >= r.box.0, x <= r.box.2, y >= r.box.1, y <= r.box.3 else { return false }
            var inside = false
            for ring in r.rings {
                var j = ring.count - 1
                for i in 0..<ring.count {
                    let (xi, yi) = ring[i], (xj, yj) = ring[j]
                    if (yi > y) != (yj > y), x < (xj - xi) * (y - yi) / (yj - yi) + xi { inside.toggle() }
                    j = i
                }
            }
            return inside
        }
    }

    /// A binary mask of a level-0 rectangle at `width` × `height` pixels (pixel centres tested).
    public func mask(x: Int, y: Int, regionWidth: Int, regionHeight: Int, width: Int, height: Int) -> [Float] {
        let (sx, sy) = (Double(regionWidth) / Double(width), Double(regionHeight) / Double(height))
        let touching = regions.contains { r in
            r.box.0 <= Double(x + regionWidth) && r.box.2 >= Double(x) && r.box.1 <= Double(y + regionHeight) && r.box.3 >= Double(y)
        }
        guard touching else { return [Float](repeating: 0, count: width * height) }
        var out = [Float](repeating: 0, count: width * height)
        for r in 0..<height {
            for c in 0..<width where contains(Double(x) + (Double(c) + 0.5) * sx, Double(y) + (Double(r) + 0.5) * sy) {
                out[r * width + c] = 1
            }
        }
        return out
    }
}
