#!/usr/bin/env bash
# Regenerates Sources/Engine/ONNX/onnx.pb.swift from onnx.proto.
#
# Run once by hand when the ONNX schema must change; the output is committed so that
# building Candela never needs protoc nor swift-protobuf's build plugin.
# Versions used for the committed file:
#   onnx.proto        from the onnx 1.23.2 wheel (pip install onnx==1.23.2)
#   protoc            Debian bookworm protobuf-compiler (3.21.12)
#   protoc-gen-swift  apple/swift-protobuf 1.39.0 (same as Package.swift's runtime)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${TMPDIR:-/tmp}/candela-protogen"
mkdir -p "$work"
command -v protoc >/dev/null || apt-get install -y -qq protobuf-compiler
if [ ! -x "$work/swift-protobuf/.build/release/protoc-gen-swift" ]; then
  rm -rf "$work/swift-protobuf"
  git clone -q --depth 1 --branch 1.39.0 https://github.com/apple/swift-protobuf "$work/swift-protobuf"
  (cd "$work/swift-protobuf" && swift build -c release --product protoc-gen-swift)
fi
if [ ! -f "$work/onnx.proto" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q onnx==1.23.2
  cp "$("$work/venv/bin/python" -c 'import onnx,os;print(os.path.dirname(onnx.__file__))')/onnx.proto" "$work/onnx.proto"
fi
mkdir -p "$here/Sources/Engine/ONNX"
protoc --plugin="$work/swift-protobuf/.build/release/protoc-gen-swift" \
  --swift_opt=Visibility=Package \
  -I "$work" --swift_out="$here/Sources/Engine/ONNX" "$work/onnx.proto"
echo "wrote Sources/Engine/ONNX/onnx.pb.swift"
