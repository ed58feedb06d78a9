// swift-tools-version:6.0
// Candela: explains image classifiers in batch. See docs/architecture.md for the module map.
import PackageDescription

let package = Package(
    name: "Candela",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "candela", targets: ["candela"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // C libraries, each behind a module map; only one Swift file per library calls into it.
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .target(name: "CJPEG", path: "Sources/CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto"),
        .systemLibrary(name: "COpenSlide", path: "Sources/COpenSlide"),
        .target(name: "CTIFF", path: "Sources/CTIFF", linkerSettings: [.linkedLibrary("tiff")]),
        // Own GEMM micro-kernels (AVX-512 / AVX2), chosen at run time; OpenBLAS is the fallback.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"])]),

        .target(name: "Tensors", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "Engine", dependencies: [
            "Tensors", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .target(name: "Imaging", dependencies: ["Tensors", "CPNG", "CJPEG", "CTIFF"]),
        .target(name: "Explainers", dependencies: ["Engine", "Tensors", "Imaging"]),
        .target(name: "Slides", dependencies: ["Imaging", "COpenSlide", "CTIFF"]),
        .target(name: "Store", dependencies: ["CSQLite"]),
        .target(name: "Analysis", dependencies: ["Explainers", "Imaging", "Store", "Tensors"]),
        .target(name: "Report", dependencies: [
            "Store", "Imaging", "Slides", "Tensors", .product(name: "Mustache", package: "swift-mustache"),
        ], exclude: ["Vendor/leaflet-COPYRIGHT"]),
        .target(name: "Pipeline", dependencies: [
            "Analysis", "Engine", "Explainers", "Imaging", "Slides", "Store", "Report", "Tensors", "Yams", "CCrypto",
        ]),
        .executableTarget(name: "candela", dependencies: [
            "Pipeline", "Engine", "Explainers", "Imaging", "Slides", "Tensors", "Store", "Report",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Tensors", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "Tensors", "TestSupport"]),
        .testTarget(name: "ExplainersTests", dependencies: ["Explainers", "Engine", "Imaging", "Tensors", "TestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Store", "Explainers", "Slides", "TestSupport"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Store", "Imaging", "TestSupport"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Store", "Tensors", "TestSupport"]),
        .testTarget(name: "SlidesTests", dependencies: ["Slides", "Imaging", "Tensors", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
