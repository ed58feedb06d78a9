# What a binary loads and where it comes from: shared by tools/dist/make_dist.sh (which writes
# DEPENDENCIES from it) and Tests/dist/run.sh (which checks the tarball against it). Sourced.

# The libraries of the Swift runtime and Foundation (a dist binary must load none of them).
SWIFT_LIBRARIES='^lib(swift|Foundation|dispatch|BlocksRuntime|_Foundation)'

# needed_libraries BINARY: its ELF NEEDED entries, one a line.
needed_libraries() { readelf -d "$1" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'; }

# swift_run_path BINARY: its RPATH/RUNPATH entries that point into a Swift toolchain (empty: none).
swift_run_path() { readelf -d "$1" | grep -E 'R(UN)?PATH' | grep swift || true; }

# library_path LIBRARY: where the dynamic loader finds the x86-64 LIBRARY (empty: nowhere).
library_path() { ldconfig -p | awk -v l="$1" '$1 == l && /x86-64/ && !found { print $NF; found = 1 }'; }

# package_of PATH: the Debian package that owns the library file (through its symlinks), empty
# when none does.
package_of() {
  local pkg
  pkg=$(dpkg -S "$(readlink -f "$1")" 2>/dev/null | sed -n '1s/:.*//p' || true)
  [ -n "$pkg" ] || pkg=$(dpkg -S "$1" 2>/dev/null | sed -n '1s/:.*//p' || true)
  echo "$pkg"
}
