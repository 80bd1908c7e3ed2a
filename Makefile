# rivetr: `make run` starts the daemon with local defaults, `make test` runs
# every test (the end-to-end ones against a real container engine).
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin/rivetr
DATA_DIR  ?= $(CURDIR)/.rivetr

.PHONY: build run test test-podman test-unit lint fuzz bench engine clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rivetr

# Local defaults from the CONTRACT: data in ./.rivetr, SSH :2222, proxy HTTP
# :8080, HTTPS off, API :8000, domain localhost.
run: build engine
	RIVETR_DATA_DIR=$(DATA_DIR) RIVETR_SSH_ADDR=:2222 RIVETR_HTTP_ADDR=:8080 \
	RIVETR_HTTPS_ADDR= RIVETR_API_ADDR=:8000 RIVETR_DOMAIN=localhost \
	./$(BIN) serve

# Installs (when missing) and starts the container engine, saying what it does.
engine:
	@scripts/engine.sh

test: build engine
	$(GO) test -count=1 -timeout 20m ./...
	@$(MAKE) --no-print-directory test-podman

# The engine and push-to-live tests again, against Podman's Docker-compatible
# API. Skipped (with a message) when podman is not installed, except in CI.
test-podman:
	@rc=0; scripts/podman.sh || rc=$$?; \
	if [ $$rc -eq 3 ] && [ "$${CI:-}" != "true" ]; then echo "test-podman: skipped, podman is not installed"; exit 0; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	RIVETR_TEST_RUNTIME=podman $(GO) test -count=1 -timeout 15m ./runtime/ && \
	RIVETR_TEST_RUNTIME=podman $(GO) test -count=1 -timeout 15m -run 'TestPush|TestGitSources' ./e2e/

test-unit:
	$(GO) test -count=1 -short ./...

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# Random bodies and headers against each webhook handler (gitserver), and
# random plugin output against the docker-args parser (apps).
fuzz:
	$(GO) test -run XXX -fuzz FuzzWebhooks -fuzztime 60s -fuzzminimizetime 5s ./gitserver
	$(GO) test -run XXX -fuzz FuzzSplitWords -fuzztime 30s -fuzzminimizetime 5s ./apps
	$(GO) test -run XXX -fuzz FuzzExtractArchive -fuzztime 60s -fuzzminimizetime 5s ./gitserver

bench: build
	bench/run.sh
	bench/push.sh
	bench/redeploy.sh
	bench/proxy.sh
	bench/builders.sh

clean:
	rm -rf bin
