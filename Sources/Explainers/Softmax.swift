/// Numerically stable softmax of one row of class scores.
public func softmax(_ scores: [Float]) -> [Float] {
    guard let m = scores.max() else { return [] }
    let e = scores.map { Float(Foundation.exp(Double($0 - m))) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

import Foundation
