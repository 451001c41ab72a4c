# pow.do — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := /usr/local/go/bin:$(shell go env GOPATH 2>/dev/null || echo $(HOME)/go)/bin:$(PATH)

MODULES := . shared relay dvm
BIN := bin
GO_TEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: all setup build frontend test test-go vet fmt-check test-frontend test-browser demo bench clean

all: build

setup:
	@bash scripts/setup.sh

frontend: setup
	cd frontend && npm run build

build: frontend
	mkdir -p $(BIN)
	cd relay && go build -o ../$(BIN)/powdo-relay ./cmd/powdo-relay
	cd dvm && go build -o ../$(BIN)/powdo-dvm ./cmd/powdo-dvm
	go build -o $(BIN)/powdo-tracker ./app/cmd/powdo-tracker

fmt-check:
	@out=$$(gofmt -l $(MODULES:%=%/) 2>/dev/null | grep -v node_modules || true); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	cd frontend && npm run --silent check-format

vet: frontend
	@for m in $(MODULES); do echo "go vet $$m"; (cd $$m && go vet ./...); done

test-go: build
	@for m in $(MODULES); do echo "== go test $$m"; (cd $$m && POWDO_BIN=$(CURDIR)/$(BIN) go test $(GO_TEST_FLAGS) ./...); done

test-frontend: frontend
	cd frontend && npx vitest run

test-browser: build
	bash scripts/test-browser.sh

test: setup fmt-check vet test-go test-frontend test-browser
	@echo "make test: all suites passed"

demo: build
	bash scripts/demo.sh

bench: build
	bash scripts/bench.sh

clean:
	rm -rf $(BIN) build/bin artifacts frontend/dist/assets
