#!/usr/bin/env bash
# Packages a Candela binary built with --static-swift-stdlib into a folder and a tarball that run
# without a Swift toolchain (docs/install.md):
#   DIST/bin/candela         the binary (Swift runtime and Foundation linked in)
#   DIST/DEPENDENCIES        the Debian packages of the shared libraries it loads (from its
#                            ELF NEEDED entries, resolved by dpkg on this machine)
#   DIST/Dockerfile          the build machine's system (Debian 12 slim here) + those packages +
#                            this folder; runs the demo audit
#   DIST/pipelines/demo.yaml, models/demo.onnx, datasets/demo/   the demo audit
#   DIST/README.md, docs/    the documentation
# and DIST.tar.gz with DIST.tar.gz.sha256 (sha256sum format) beside it.
# Refuses a binary that still loads a Swift library or has a run path into the toolchain.
# Usage: tools/dist/make_dist.sh BINARY DIST_FOLDER
# (No pipefail: grep -q and awk may close their pipe early; results are checked instead.)
set -eu
BIN=$1
DIST=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tools/dist/elf.sh"
needed=$(needed_libraries "$BIN")
swift_libs=$(grep -E "$SWIFT_LIBRARIES" <<< "$needed" || true)
if [ -n "$swift_libs" ]; then
  echo "make_dist: $BIN loads Swift libraries ($(xargs <<< "$swift_libs")); build it with --static-swift-stdlib" >&2
  exit 1
fi
run_path=$(swift_run_path "$BIN")
if [ -n "$run_path" ]; then
  echo "make_dist: $BIN has a run path into the Swift toolchain: $run_path" >&2
  exit 1
fi
# The Dockerfile's base image is the build machine's system (its packages are the ones listed).
. /etc/os-release
case "$ID" in
  debian) base="debian:$VERSION_CODENAME-slim" ;;
  ubuntu) base="ubuntu:$VERSION_ID" ;;
  *) echo "make_dist: DEPENDENCIES are $ID packages; the Dockerfile needs a Debian or Ubuntu base: build on one" >&2; exit 1 ;;
esac
rm -rf "$DIST" "$DIST.tar.gz" "$DIST.tar.gz.sha256"
mkdir -p "$DIST/bin" "$DIST/pipelines" "$DIST/models" "$DIST/datasets"
cp "$BIN" "$DIST/bin/candela"
strip "$DIST/bin/candela"
packages=()
for lib in $needed; do
  path=$(library_path "$lib")
  [ -n "$path" ] || { echo "make_dist: $lib is not a library this machine knows (ldconfig)" >&2; exit 1; }
  pkg=$(package_of "$path")
  [ -n "$pkg" ] || { echo "make_dist: no Debian package owns $path" >&2; exit 1; }
  packages+=("$pkg")
done
printf '%s\n' "${packages[@]}" | sort -u > "$DIST/DEPENDENCIES"
cp "$ROOT/pipelines/demo.yaml" "$DIST/pipelines/"
cp "$ROOT/models/demo.onnx" "$DIST/models/"
cp -r "$ROOT/datasets/demo" "$DIST/datasets/"
cp -r "$ROOT/README.md" "$ROOT/docs" "$DIST/"
sed "s#^FROM .*#FROM $base#" "$ROOT/tools/dist/Dockerfile" > "$DIST/Dockerfile"
name=$(basename "$DIST")
tar -C "$(dirname "$DIST")" -czf "$DIST.tar.gz" "$name"
(cd "$(dirname "$DIST")" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "dist: $DIST.tar.gz ($(du -h "$DIST.tar.gz" | cut -f1)), checksum $DIST.tar.gz.sha256"
echo "dist: run-time packages: $(xargs < "$DIST/DEPENDENCIES")"
