/// Outlines of labelled regions as polygons along pixel edges (for tissue pieces in GeoJSON).
public enum Outline {
    public typealias Point = (x: Int, y: Int)

    /// The boundary loops of the pixels labelled `label` in a `width` × `height` label image,
    /// as closed rings of pixel-corner coordinates (first point repeated last), the outer
    /// boundary first, then the holes. Each pixel side that borders another label is an edge,
    /// directed clockwise around its pixel (image coordinates, y down); edges chain into loops,
    /// turning left first where two of its pixels touch only at a corner, so that diagonal
    /// neighbours (8-connected, as the tissue pieces are) stay in one loop; straight runs are
    /// merged into one segment.
    public static func rings(_ labels: [Int32], width: Int, height: Int, label: Int32) -> [[Point]] {
        func inside(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height && labels[y * width + x] == label }
        // Outgoing edges by start corner: (direction) with 0 east, 1 south, 2 west, 3 north.
        var outgoing: [Int: [Int]] = [:]
        func key(_ x: Int, _ y: Int) -> Int { y * (width + 1) + x }
        var first: (Int, Int)?
        for y in 0..<height {
            for x in 0..<width where inside(x, y) {
                if !inside(x, y - 1) { outgoing[key(x, y), default: []].append(0); if first == nil { first = (x, y) } }
                if !inside(x + 1, y) { outgoing[key(x + 1, y), default: []].append(1) }
                if !inside(x, y + 1) { outgoing[key(x + 1, y + 1), default: []].append(2) }
                if !inside(x - 1, y) { outgoing[key(x, y + 1), default: []].append(3) }
            }
        }
        let step = [(1, 0), (0, 1), (-1, 0), (0, -1)]
        var rings: [[Point]] = []
        func trace(from start: (Int, Int), direction: Int) -> [Point] {
            var ring: [Point] = [(start.0, start.1)]
            var (x, y, d) = (start.0, start.1, direction)
            while true {
                // Take the edge (x, y) → next in direction d.
                outgoing[key(x, y)]!.removeAll { $0 == d }
                if outgoing[key(x, y)]!.isEmpty { outgoing[key(x, y)] = nil }
                (x, y) = (x + step[d].0, y + step[d].1)
                guard let choices = outgoing[key(x, y)] else { break }
                // Left turn, straight on, right turn: where two pixels of the region touch only at
                // this corner, turning left goes round the diagonal one (8-connectivity).
                let next = [(d + 3) % 4, d, (d + 1) % 4].first(where: choices.contains) ?? choices[0]
                if next != d { ring.append((x, y)) }
                d = next
            }
            ring.append(ring[0])
            return ring
        }
        guard let start = first else { return [] }
        rings.append(trace(from: start, direction: 0))
        // Whatever edges remain bound holes.
        while let (k, directions) = outgoing.min(by: { $0.key < $1.key }) {
            rings.append(trace(from: (k % (width + 1), k / (width + 1)), direction: directions[0]))
        }
        return rings
    }
}
