import Engine
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// RISE's estimators against known answers, and the adaptive mode's stopping rule on the demo.
final class RISETests: XCTestCase {
    /// Two pixels, four masks with known probabilities: the paper's Σ P·M / (N·p) and the
    /// adaptive Σ (P − P̄)·M / Σ M, by hand.
    func testEstimatorsByHand() throws {
        var sums = RISEExplainer.Sums(pixels: 2)
        // masks (pixel 0, pixel 1) and probabilities
        let rows: [([Double], Double)] = [([1, 0], 0.9), ([1, 1], 0.8), ([0, 1], 0.2), ([0, 0], 0.1)]
        for (m, p) in rows {
            for i in 0..<2 { sums.pm[i] += p * m[i]; sums.m[i] += m[i] }
            sums.p += p
            sums.n += 1
        }
        let paper = try XCTUnwrap(ExplainerRegistry.make(method: "rise", parameters: ["mode": "paper", "p": "0.5"]) as? RISEExplainer)
        XCTAssertEqual(paper.saliency(sums)[0], Float((0.9 + 0.8) / (4 * 0.5)), accuracy: 1e-6)
        XCTAssertEqual(paper.saliency(sums)[1], Float((0.8 + 0.2) / (4 * 0.5)), accuracy: 1e-6)
        let adaptive = try XCTUnwrap(ExplainerRegistry.make(method: "rise", parameters: [:]) as? RISEExplainer)
        let mean = (0.9 + 0.8 + 0.2 + 0.1) / 4
        XCTAssertEqual(adaptive.saliency(sums)[0], Float((0.9 + 0.8) / 2 - mean), accuracy: 1e-6)
        XCTAssertEqual(adaptive.saliency(sums)[1], Float((0.8 + 0.2) / 2 - mean), accuracy: 1e-6)
    }

    func testDefaultsFollowTheImage() throws {
        XCTAssertEqual(RISEExplainer.autoCells(height: 64, width: 64), 8)
        XCTAssertEqual(RISEExplainer.autoCells(height: 224, width: 200), 16)
        XCTAssertEqual(RISEExplainer.autoCells(height: 12, width: 12), 2)
        let paper = try ExplainerRegistry.make(method: "rise", parameters: ["mode": "paper"])
        XCTAssertEqual(paper.parameters, ["mode": "paper", "masks": "2000", "cells": "7", "p": "0.5", "seed": "0", "output": "probability"])
        XCTAssertEqual(try ExplainerRegistry.make(method: "rise", parameters: [:]).parameters["output"], "logodds")
        XCTAssertThrowsError(try ExplainerRegistry.make(method: "rise", parameters: ["mode": "paper", "stability": "0.9"]))
    }

    /// On the demo's abnormal slide: the adaptive mode stops at its stability target, between
    /// the first round and the budget, and its peak is on the lesion; the paper's estimator,
    /// with the same number of masks, puts it on the border (its mask-density noise).
    func testAdaptiveModeIsStableAndFindsTheLesion() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let x = try NPY.read(Support.fixture("demo/x.npy")).item(1)
        let request = ExplanationRequest(model: model, input: x, target: 1)
        let explainer = try ExplainerRegistry.make(method: "rise", parameters: [:])
        let a = try explainer.explain(request)
        XCTAssertGreaterThanOrEqual(a.diagnostics["stability"]!, 0.9)
        XCTAssertGreaterThanOrEqual(a.diagnostics["samples"]!, 500)
        XCTAssertLessThanOrEqual(a.diagnostics["samples"]!, 4000)
        let mask = try LIMETests.lesionMask("slide_001")
        XCTAssertEqual(PointingGame.hit(heatmap: a.heatmap(height: 64, width: 64), mask: mask, tolerance: 3), true)
        // What stability claims: the correlation with a rerun under another seed.
        let other = try ExplainerRegistry.make(method: "rise", parameters: ["seed": "1"]).explain(request)
        let rerun = Statistics.pearson(a.raw.data, other.raw.data)
        XCTAssertEqual(rerun, (a.diagnostics["stability"]! + other.diagnostics["stability"]!) / 2, accuracy: 0.1,
                       "rerun r \(rerun), \(a.diagnostics), \(other.diagnostics)")
        let n = Int(a.diagnostics["samples"]!)
        let paper = try ExplainerRegistry.make(method: "rise", parameters: ["mode": "paper", "masks": "\(n)"]).explain(request)
        XCTAssertEqual(paper.diagnostics["samples"], Double(n))
        XCTAssertEqual(PointingGame.hit(heatmap: paper.heatmap(height: 64, width: 64), mask: mask, tolerance: 3), false)
    }
}
