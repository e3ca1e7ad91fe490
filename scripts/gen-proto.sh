#!/usr/bin/env bash
# Regenerates the Go code for the hook protocol, hooks-go/proto/hooksv1/, from proto/.
#
#   bash scripts/gen-proto.sh           write hooks-go/proto/hooksv1/*.pb.go
#   bash scripts/gen-proto.sh --check   regenerate into a temporary directory and fail (exit 1, with
#                                       a diff) when the committed files differ
#
# Reproducible: protoc-gen-go and protoc-gen-go-grpc are the pinned versions below, installed with
# `go install` into a cache directory named after them (override with DPD_PROTOC_GEN_BIN). The
# generated header's protoc version line is removed, so any protoc 3.x/2x gives the same bytes.
# Needs protoc (`apt-get install -y protobuf-compiler`) and Go.
set -euo pipefail

# Keep PROTOC_GEN_GO_VERSION equal to google.golang.org/protobuf in hooks-go/go.mod.
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PROTO_DIR="$ROOT/proto"
PROTO_FILE=deployd/hooks/v1/hooks.proto
GO_MODULE=github.com/deployd-ts/deployd-ts/hooks-go
TARGET="$ROOT/hooks-go/proto/hooksv1"

check=0
case "${1:-}" in
  --check) check=1 ;;
  '') ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v protoc >/dev/null || { echo "gen-proto: protoc not found (apt-get install -y protobuf-compiler)" >&2; exit 1; }
command -v go >/dev/null || { echo "gen-proto: go not found" >&2; exit 1; }

BIN="${DPD_PROTOC_GEN_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/deployd-ts/protoc-gen-go-$PROTOC_GEN_GO_VERSION-grpc-$PROTOC_GEN_GO_GRPC_VERSION}"
if [ ! -x "$BIN/protoc-gen-go" ] || [ ! -x "$BIN/protoc-gen-go-grpc" ]; then
  mkdir -p "$BIN"
  (cd "$ROOT" \
    && GOBIN="$BIN" GOFLAGS= go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION" \
    && GOBIN="$BIN" GOFLAGS= go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION")
fi

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
PATH="$BIN:$PATH" protoc -I "$PROTO_DIR" \
  --go_out="$OUT" --go_opt="module=$GO_MODULE" \
  --go-grpc_out="$OUT" --go-grpc_opt="module=$GO_MODULE" \
  "$PROTO_FILE"
GEN="$OUT/proto/hooksv1"
# The protoc version depends on the machine, not on the input: drop it from the header comments.
for f in "$GEN"/*.go; do
  sed -i -e '/^\/\/ \tprotoc  *v\{0,1\}[0-9(]/d' -e '/^\/\/ - protoc  *v\{0,1\}[0-9(]/d' "$f"
done

if [ "$check" = 1 ]; then
  if ! diff -ru "$TARGET" "$GEN"; then
    echo "gen-proto: hooks-go/proto/hooksv1 is out of date; run: bash scripts/gen-proto.sh" >&2
    exit 1
  fi
  echo "gen-proto: hooks-go/proto/hooksv1 is up to date"
else
  mkdir -p "$TARGET"
  rm -f "$TARGET"/*.pb.go
  cp "$GEN"/*.go "$TARGET"/
  echo "gen-proto: wrote $(cd "$ROOT" && ls hooks-go/proto/hooksv1/*.go | tr '\n' ' ')"
fi
