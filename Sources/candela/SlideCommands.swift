import ArgumentParser
import Foundation
import Slides

struct MakeSlide: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-slide",
        abstract: "Writes a synthetic H&E-like pyramidal slide with planted lesions (for demos and tests).",
        discussion: """
            The slide is an Aperio-layout tiled TIFF at 0.25 µm per pixel (OpenSlide reads it, with its mpp): tissue \
            pieces side by side, 'damaged cell' lesions in pieces 1, 3, ...; --annotation writes the lesions as QuPath \
            GeoJSON polygons in level-0 pixels. Pixels are rendered tile by tile: any size fits in memory.
            """)

    @Option(help: "Output slide (.svs).") var out: String
    @Option(help: "Level-0 width in pixels.") var width: Int = 8192
    @Option(help: "Level-0 height in pixels.") var height: Int = 4096
    @Option(help: "Tissue pieces side by side.") var pieces: Int = 2
    @Option(help: "Lesions in each odd-numbered piece (1, 3, ...).") var lesions: Int = 4
    @Option(help: "Seed of the layout and texture.") var seed: UInt64 = 1
    @Option(help: "Also write the lesions as GeoJSON here.") var annotation: String?
    @Option(help: "Blue pen stroke across the glass at this x (level-0 pixels).") var penX: Int?
    @Option(help: "JPEG quality (0: lossless Deflate).") var quality: Int = 85

    func validate() throws {
        guard width >= 256, height >= 256, width <= 1 << 20, height <= 1 << 20 else {
            throw ValidationError("--width and --height must be 256...1048576 pixels")
        }
        guard pieces >= 1, pieces <= 64 else { throw ValidationError("--pieces must be 1...64") }
        guard lesions >= 0, lesions <= 1000 else { throw ValidationError("--lesions must be 0...1000") }
        guard (0...100).contains(quality) else { throw ValidationError("--quality must be 0...100") }
    }

    func run() throws {
        try guarded {
            var slide = SyntheticSlide.layout(width: width, height: height, pieceCount: pieces, lesionsPerPiece: lesions, seed: seed)
            if let penX {
                slide = SyntheticSlide(width: width, height: height, pieces: slide.pieces, lesions: slide.lesions,
                                       pen: (Double(penX), Double(height) * 0.05, Double(penX), Double(height) * 0.95), seed: seed)
            }
            let writer = PyramidWriter(mpp: SyntheticSlide.mpp, tileSize: 256, compression: quality == 0 ? .deflate : .jpeg(quality: quality))
            let levels = try writer.write(to: out, width: width, height: height) { x, y, w, h, d in
                slide.render(x: x, y: y, width: w, height: h, downsample: d)
            }
            if let annotation { try Data(slide.lesionGeoJSON.utf8).write(to: URL(fileURLWithPath: annotation)) }
            print("\(out): \(width)x\(height) at \(SyntheticSlide.mpp) µm/px, \(levels.count) levels, \(slide.pieces.count) pieces, "
                  + "\(slide.lesions.count) lesions")
        }
    }
}
