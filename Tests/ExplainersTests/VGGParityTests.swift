import Engine
import Foundation
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// Every case of Tests/Fixtures/vgg/cases.json (tools/make_vgg_fixtures.py): a VGG-like CNN with
/// BatchNorm, two inputs and two targets, against Zennit (four LRP composites), Captum (gradient
/// family, integrated gradients, occlusion, LayerGradCam, probability and weighted targets) and
/// pytorch-grad-cam (Grad-CAM, Grad-CAM++, Score-CAM final heatmaps). Pearson ≥ 0.99 is the
/// issues' bar; the value tolerance is what float32 reaches.
final class VGGParityTests: XCTestCase {
    struct Case: Decodable {
        struct Call: Decodable {
            let method: String
            let params: [String: String]
        }
        let file: String
        let candela: Call
        let item: Int
        let target: Int
        let compare: String
    }

    struct Cases: Decodable { let cases: [Case] }

    func testEveryCase() throws {
        let model = try Model(path: Support.fixture("vgg/model.onnx"))
        let x = try NPY.read(Support.fixture("vgg/x.npy"))
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: URL(fileURLWithPath: Support.fixture("vgg/cases.json")))).cases
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        var methods = Set<String>()
        var worst = (pearson: 1.0, error: Float(0), pearsonCase: "", errorCase: "")
        for c in cases {
            let ref = try NPY.read(Support.fixture("vgg/\(c.file)"))
            let attribution = try ExplainerRegistry.make(method: c.candela.method, parameters: c.candela.params)
                .explain(ExplanationRequest(model: model, input: x.item(c.item), target: c.target))
            let got: Tensor
            switch c.compare {
            case "heatmap":
                let (h, w) = (ref.shape[0], ref.shape[1])
                got = Tensor(shape: [h, w], data: attribution.heatmap(height: h, width: w).values)
            default:
                got = attribution.raw
            }
            XCTAssertEqual(got.count, ref.count, c.file)
            guard got.count == ref.count else { continue }
            let r = ref.reshaped(got.shape)
            let pearson = FiniteDifference.pearson(got, r), error = FiniteDifference.relativeError(got, r)
            XCTAssertGreaterThanOrEqual(pearson, 0.99, c.file)
            XCTAssertLessThan(error, 1e-3, "\(c.file): Pearson \(pearson)")
            methods.insert(c.candela.method)
            if pearson < worst.pearson { (worst.pearson, worst.pearsonCase) = (pearson, c.file) }
            if error > worst.error { (worst.error, worst.errorCase) = (error, c.file) }
        }
        print("vgg parity: \(cases.count) cases; lowest Pearson \(worst.pearson) (\(worst.pearsonCase)); "
              + "largest relative error \(worst.error) (\(worst.errorCase))")
        XCTAssertEqual(methods, ["lrp", "saliency", "inputxgradient", "guidedbackprop", "deconvnet", "integratedgradients",
                                 "occlusion", "gradcam", "gradcam++", "scorecam", "gradient"])
    }
}
