#!/usr/bin/env bash
# Prints the path of a FerretDB binary (MongoDB wire protocol over SQLite), building it on first use.
# The tests' real MongoDB-wire server when MONGODB_URL is not set (see test/helpers/mongo.ts).
# Built once from the Go module proxy and cached outside the repository; concurrent callers wait on a lock.
set -euo pipefail

FERRETDB_VERSION="v1.24.2"
cache_dir="${DEPLOYD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/deployd-ts}/ferretdb-$FERRETDB_VERSION"
binary="$cache_dir/ferretdb"

if [ -x "$binary" ]; then echo "$binary"; exit 0; fi

[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "scripts/ferretdb.sh: the Go toolchain is needed to build FerretDB (or set MONGODB_URL)" >&2; exit 1; }

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.lock"
flock 9
if [ ! -x "$binary" ]; then
  started=$(date +%s)
  echo "scripts/ferretdb.sh: building FerretDB $FERRETDB_VERSION once into $cache_dir ..." >&2
  work=$(mktemp -d "$cache_dir/.build.XXXXXX")
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  # The module's source from the Go module proxy (checked against sum.golang.org), built as the main
  # module with the version file its release process generates (its `go install` panics without it).
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { echo "scripts/ferretdb.sh: could not download FerretDB $FERRETDB_VERSION" >&2; exit 1; }
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  echo "$FERRETDB_VERSION" > "$work/src/build/version/version.txt"
  # -trimpath and a stripped binary: less to link; CGO off: FerretDB's SQLite backend is pure Go.
  (cd "$work/src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags='-s -w' -o "$work/ferretdb" ./cmd/ferretdb) >&2
  mv "$work/ferretdb" "$binary"
  echo "scripts/ferretdb.sh: built in $(( $(date +%s) - started ))s" >&2
fi
echo "$binary"
