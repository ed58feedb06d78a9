#!/usr/bin/env bash
# The dist tarball on a machine without Swift (docs/install.md): the checksum holds; the binary
# loads no Swift library and every library it loads is in DEPENDENCIES; then, in a mount
# namespace where the Swift toolchain's folder is an empty tmpfs and with PATH and the library
# path stripped of it, the extracted binary prints its version and runs a slice of the demo
# audit (shard 1 of 16: four slides, every explainer, metric, gate and the report).
# Usage: Tests/dist/run.sh DIST.tar.gz
set -u
TARBALL=$(realpath "$1")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0
check() { local name=$1; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $name"; fi; }

check checksum bash -c "cd '$(dirname "$TARBALL")' && sha256sum --quiet -c '$(basename "$TARBALL").sha256'"
tar -C "$TMP" -xzf "$TARBALL"
DIST=$(echo "$TMP"/candela-*)
BIN=$DIST/bin/candela
. "$(dirname "$0")/../../tools/dist/elf.sh"
needed=$(needed_libraries "$BIN")
check no-swift-libraries bash -c "! grep -qE '$SWIFT_LIBRARIES' <<< '$needed'"
check no-swift-runpath test -z "$(swift_run_path "$BIN")"
for lib in $needed; do
  pkg=$(package_of "$(library_path "$lib")")
  check "dependency-$lib" grep -qx "$pkg" "$DIST/DEPENDENCIES"
done
check dockerfile-installs-dependencies grep -q 'apt-get install .*DEPENDENCIES' "$DIST/Dockerfile"

# The toolchain: the folder three levels above the real swift-driver (/opt/swift for
# /opt/swift/usr/bin/swift-driver).
SWIFT_BIN=$(command -v swift || true)
[ -n "$SWIFT_BIN" ] || { echo "Tests/dist: no swift on PATH: nothing to hide, so the check would prove nothing" >&2; exit 1; }
TOOLCHAIN=$(dirname "$(dirname "$(dirname "$(readlink -f "$SWIFT_BIN")")")")
case "$TOOLCHAIN" in
  /|/usr) echo "Tests/dist: swift is installed in $TOOLCHAIN/usr with the system; it cannot be hidden alone here" >&2; exit 1 ;;
esac
[ "$(id -u)" = 0 ] || { echo "Tests/dist: hiding $TOOLCHAIN needs a mount namespace: run as root (as CI does)" >&2; exit 1; }
cat > "$TMP/inside.sh" <<INSIDE
set -u
mount -t tmpfs none "$TOOLCHAIN" || exit 90
[ -z "\$(ls -A "$TOOLCHAIN")" ] || exit 91
! command -v swift >/dev/null || exit 92
cd "$DIST"
bin/candela --version > "$TMP/version" || exit 93
bin/candela run pipelines/demo.yaml --shard 1/16 --db "$TMP/demo.sqlite" --report "$TMP/report" > "$TMP/run.out" 2> "$TMP/run.err"
echo \$? > "$TMP/run.rc"
INSIDE
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$TMP" unshare --mount --propagation private bash "$TMP/inside.sh"
rc=$?
check toolchain-hidden test "$rc" -eq 0
[ "$rc" -eq 0 ] || echo "    inside the namespace: exit $rc (90 mount, 91 not empty, 92 swift still found, 93 --version failed)"
check version grep -qE "^[0-9]+\.[0-9]+\.[0-9]+ \(engine-" "$TMP/version"
check demo-slice-exit test "$(cat "$TMP/run.rc" 2>/dev/null)" = 0
check demo-slice-items grep -q "run 1: 4 items, 0 failures, complete" "$TMP/run.out"
check demo-slice-report test -s "$TMP/report/index.html"
check demo-slice-gates grep -q "verdict: PASS" "$TMP/run.out"
[ "$fail" -eq 0 ] || { echo "--- run output"; tail -5 "$TMP/run.out"; tail -5 "$TMP/run.err"; }
echo "dist: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
