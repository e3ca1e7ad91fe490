# deployd-ts — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
NODE_FLAGS := --no-node-snapshot
PORT ?= 2403
# The example app has a Go hook: the Go toolchain's usual install path joins PATH when it exists.
ifneq ($(wildcard /usr/local/go/bin/go),)
export PATH := $(PATH):/usr/local/go/bin
endif

.PHONY: run cluster stop test build install bench peers clean proto proto-check ferretdb client-package go-warm go-env

# Install dependencies when package-lock.json is newer than node_modules (or it is missing).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed

## make build: compile the server (tsc → dist/), bundle the browser client (/dpd.js, esbuild) and the
##   dashboard (type-check, then Vite → dist/dashboard)
build: install
	npx tsc -p tsconfig.json
	node scripts/build-client.mjs
	npx tsc -p dashboard/tsconfig.json
	npx vite build --config dashboard/vite.config.mjs
	@$(MAKE) --no-print-directory go-warm

# The go command: on PATH, else the official install location.
GO ?= $(shell command -v go 2>/dev/null || ls /usr/local/go/bin/go 2>/dev/null)

## make go-warm: compile the Go hook SDK, its dependencies and deployd-gofix once (run by make
##   build), so a first Go hook build only compiles the hooks and links; skipped without Go
go-warm:
	@if [ -z "$(GO)" ]; then echo "go-warm: no Go toolchain found: skipped (only Go hooks need it)"; \
	else cd hooks-go && GOFLAGS='-mod=readonly -buildvcs=false' GOWORK=off "$(GO)" build ./hooks/... ./proto/... ./internal/... ./cmd/... && echo "go-warm: Go hook SDK compiled (Go build cache warm)"; fi

## make run: install, build and serve the example app on http://localhost:$(PORT) (live page,
##   a JavaScript and a Go AfterCommit hook; its first start builds the Go hook in the background)
## make run cluster: Redis, three instances (2403, 2404, 2405) sharing examples/todos and its
##   database, HAProxy on http://localhost:2400 in front; Ctrl-C or `make stop` stops all of it
run: build
ifneq ($(filter cluster,$(MAKECMDGOALS)),)
	bash scripts/cluster.sh start
else
	cd examples/todos && ../../bin/deployd --port $(PORT)
endif

# The second word of `make run cluster`: `run` does the work.
cluster:
	@:

## make stop: stop every process `make run cluster` started
stop:
	bash scripts/cluster.sh stop

## make client-package: the client as its own npm package (dist/client-package/*.tgz, no dependencies)
client-package: build
	node scripts/client-package.mjs

## make test: install, build and run every test, then print the coverage of src/ per folder (c8:
##   every process the tests start counts; per file and line: coverage/index.html).
##   COVERAGE=0 make test runs the tests alone.
COVERAGE ?= 1
test: build ferretdb
ifeq ($(COVERAGE),0)
	node $(NODE_FLAGS) --test --test-concurrency=2 dist/test/
else
	@rm -rf coverage
	npx c8 --all --include 'dist/src/**' --exclude 'dist/src/client/browser-client.js' --merge-async --reporter=json-summary --reporter=html --report-dir coverage \
	  node $(NODE_FLAGS) --test --test-concurrency=2 dist/test/; status=$$?; \
	  node scripts/coverage-summary.mjs; rm -rf coverage/tmp; exit $$status
endif

## make bench: paired benchmarks against raw baselines (see bench/README.md)
## make bench peers: side by side with PocketBase on issue #19's rows (bench/peers.js; builds
##   PocketBase from the Go module proxy once, cached in ~/.cache/deployd-ts; not part of make test)
bench: build
ifneq ($(filter peers,$(MAKECMDGOALS)),)
	node $(NODE_FLAGS) bench/peers.js
else
	node $(NODE_FLAGS) bench/run.js
endif

# The second word of `make bench peers`: `bench` does the work.
peers:
	@:

## make ferretdb: build the tests' MongoDB-wire server once (cached in ~/.cache/deployd-ts; skipped with MONGODB_URL)
ferretdb:
	@if [ -z "$$MONGODB_URL" ]; then bash scripts/ferretdb.sh >/dev/null; fi

clean:
	rm -rf dist node_modules/.installed

## make proto: regenerate the Go code of the hook protocol (hooks-go/proto/hooksv1) from proto/
proto:
	bash scripts/gen-proto.sh

## make proto-check: fail if the committed generated code is not what proto/ generates (run by make test)
proto-check:
	bash scripts/gen-proto.sh --check
