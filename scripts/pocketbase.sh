#!/usr/bin/env bash
# Prints the path of the PocketBase binary that `make bench peers` runs (bench/peers/pocketbase:
# PocketBase as a Go framework, from the Go module proxy), building it on first use. Cached outside
# the repository under a key of the main package's source, so an edit there rebuilds; concurrent
# callers wait on a lock.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)/bench/peers/pocketbase"
key=$(cat "$here/main.go" "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)
cache_dir="${DEPLOYD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/deployd-ts}/pocketbase-$key"
binary="$cache_dir/pocketbase"

if [ -x "$binary" ]; then echo "$binary"; exit 0; fi

[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "scripts/pocketbase.sh: the Go toolchain is needed to build PocketBase" >&2; exit 1; }

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.lock"
flock 9
if [ ! -x "$binary" ]; then
  started=$(date +%s)
  echo "scripts/pocketbase.sh: building PocketBase once into $cache_dir ..." >&2
  # CGO off: PocketBase's default SQLite driver is pure Go (modernc.org/sqlite), as its releases ship.
  (cd "$here" && CGO_ENABLED=0 GOWORK=off GOFLAGS='-mod=readonly -buildvcs=false' go build -trimpath -ldflags='-s -w' -o "$cache_dir/.pocketbase.tmp" .) >&2
  mv "$cache_dir/.pocketbase.tmp" "$binary"
  echo "scripts/pocketbase.sh: built in $(( $(date +%s) - started ))s" >&2
fi
echo "$binary"
