# `make test` is what CI runs (.ci/run): it installs and starts the local Azure stand-ins
# (test/standins), runs every test against them with -count=1, runs go vet, and stops the stand-ins
# again whatever the outcome.
.DEFAULT_GOAL := test
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go
# Flags for every go command. A GOFLAGS from the environment wins (it also replaces `go env GOFLAGS`,
# so keep -buildvcs=false in it: test builds need no VCS stamp, and a clone without commits has none).
GOFLAGS ?= -buildvcs=false
export GOFLAGS
# Flags for go test only, e.g. make test GOTESTFLAGS='-race -run Cosmos'.
GOTESTFLAGS ?=
PKGS ?= ./...

STANDINS := bash test/standins/standins.sh

.PHONY: browser-deps test test-unit bench standins-up standins-down standins-status build run package stage publish deploy fuzz clean bench-capture anomaly-quality

# The deployable handler: a static linux/amd64 binary named as host.json's defaultExecutablePath.
HANDLER := handler
APP ?=
ENV ?= dev
RG ?=
FUZZTIME ?= 20s

# `make run`: build the handler, start it as the Functions host would, drive it with a synthetic
# clickstream on the embedded defaults (no Azure account needed) and show what the site would show.
run: build
	$(GO) run ./cmd/simulate -handler bin/$(HANDLER) $(RUNFLAGS)

build:
	$(GO) build -o bin/$(HANDLER) ./cmd/handler

# `make package`: stage the app for `func azure functionapp publish` in dist/: host.json, the
# executable and one folder per function with its function.json.
TARGET_OS ?= linux
TARGET_ARCH ?= amd64
package:
	rm -rf dist && mkdir -p dist
	CGO_ENABLED=0 GOOS=$(TARGET_OS) GOARCH=$(TARGET_ARCH) $(GO) build -trimpath -ldflags='-s -w' -o dist/$(HANDLER) ./cmd/handler
	cp host.json dist/
	cp .funcignore dist/ 2>/dev/null || true
	for f in functions/*/; do n=$$(basename $$f); mkdir -p dist/$$n && cp $$f/function.json dist/$$n/; done
	@echo "staged $$(ls -d dist/*/ | wc -l) functions in dist/"

# `make stage`: the same staging for `func start` on this machine (native build), with
# local.settings.json (created from the example when missing).
stage:
	$(MAKE) package TARGET_OS=$$($(GO) env GOOS) TARGET_ARCH=$$($(GO) env GOARCH)
	test -f local.settings.json || cp local.settings.json.example local.settings.json
	cp local.settings.json dist/

# `make publish APP=<function app name>`: package, then publish with Azure Functions Core Tools.
publish: package
	@test -n "$(APP)" || { echo "usage: make publish APP=<function app name>"; exit 2; }
	cd dist && func azure functionapp publish $(APP)

# `make deploy ENV=dev|prod RG=<resource group>`: deploy infra/ with the Azure CLI.
deploy:
	@test -n "$(RG)" || { echo "usage: make deploy ENV=dev|prod RG=<resource group>"; exit 2; }
	az deployment group create -g $(RG) -f infra/main.bicep -p infra/main.$(ENV).bicepparam

# Run each fuzz target for FUZZTIME (go test runs their seed corpora in `make test` already).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# `make bench-capture`: a generated day of Capture files through the rollup (EVENTS clicks; a few
# minutes at 10 million): events per second, per CPU-second and peak memory.
EVENTS ?= 10000000
bench-capture:
	$(GO) run ./cmd/capturebench -events $(EVENTS)

# `make anomaly-quality`: precision, recall and detection delay on the synthetic anomaly workload.
anomaly-quality:
	$(GO) test -count=1 -run TestDetectionQuality -v ./pkg/anomaly/synth/

clean:
	rm -rf bin dist .data

# `make browser-deps`: headless Chromium from Debian for the browser tests (internal/browsertest).
# Idempotent: does nothing when /usr/bin/chromium exists (or CHROMIUM names a browser).
browser-deps:
	@if [ -n "$${CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	echo "installing Chromium from Debian (apt-get install chromium)..."; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; \
	chromium --version

# The exit status is go test's if it failed, else go vet's.
test: browser-deps standins-up
	@trap '$(STANDINS) stop' EXIT; \
	eval "$$($(STANDINS) env)"; \
	status=0; \
	echo "$(GO) test -count=1 $(GOTESTFLAGS) $(PKGS)"; \
	$(GO) test -count=1 $(GOTESTFLAGS) $(PKGS) || status=$$?; \
	echo "$(GO) vet $(PKGS)"; \
	$(GO) vet $(PKGS) || status=$$((status ? status : $$?)); \
	exit $$status

# Without the stand-ins: their tests skip (unless CI=true, where they fail).
test-unit:
	$(GO) test $(GOTESTFLAGS) $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(GOTESTFLAGS) $(PKGS)

standins-up:
	$(STANDINS) start

standins-down:
	$(STANDINS) stop

standins-status:
	$(STANDINS) status
