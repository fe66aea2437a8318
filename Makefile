# System Design Masterclass: Go companion code. `make` (or `make help`) lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
CHAPTERS  := $(sort $(wildcard part[0-9][0-9]-*))
NN        := 01 02 03 04 05 06 07 08 09 10 11 12
COUNT     ?= 5
BENCH     ?= .
PKG       ?= ./...
REPORT    := $(GO) run ./internal/cmd/testreport

STATICCHECK_VERSION := v0.8.2
ACTIONLINT_VERSION  := v1.7.12
GOLANGCI_VERSION    := v2.15.0

.PHONY: help up down status test test-unit bench lint generate tools \
        $(addprefix test-part,$(NN)) $(addprefix run-part,$(NN))

help: ## list the targets
	@echo "System Design Masterclass (Go). Chapters: $(CHAPTERS)"
	@echo
	@grep -hE '^[a-zA-Z%_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  make test-partNN     unit + integration tests of one chapter (stack up, -race)"
	@echo "  make run-partNN      go run ./partNN-*"

# The stack: Docker Compose when a Docker engine answers, else native processes.
up: ## start every service (Compose if a Docker engine answers, else scripts/stack)
	@if docker info >/dev/null 2>&1; then docker compose up -d --wait; else scripts/stack up; fi

down: ## stop the services `make up` started
	@if docker info >/dev/null 2>&1; then docker compose down; else scripts/stack down; fi

status: ## one line per service
	@if docker info >/dev/null 2>&1; then docker compose ps; else scripts/stack status; fi

# Unit + integration tests of the packages in $(1), -race, no skips allowed. TestFault*
# tests break shared services, so they run after the rest, one package at a time.
define run_tests
	export STACK_REQUIRED=1; t0=$$(date +%s); \
	fault=$$(grep -rl --include='*_test.go' '^func TestFault' $(patsubst %/...,%,$(1)) | xargs -r -n1 dirname | sort -u || true); \
	{ $(GO) test -race -count=1 -tags integration -json -skip '^TestFault' $(1); \
	  if [ -n "$$fault" ]; then $(GO) test -race -count=1 -tags integration -json -run '^TestFault' -p 1 $$fault; fi; \
	} | $(REPORT); \
	echo "tests took $$(( $$(date +%s) - t0 ))s"
endef

test: up ## stack up, then every unit and integration test with -race (no test may skip)
	@$(call run_tests,./...)
	@cd tools && $(GO) test -count=1 ./... # docker-compose.yml checks (own module: compose-go stays out of go.mod)

test-unit: ## unit tests only (no services needed), with -race
	$(GO) test -race ./... -json | $(REPORT)

define chapter_targets
test-part$(1):
	@$(if $(wildcard part$(1)-*),,echo "part$(1) is not written yet (see ../shared/spec/part$(1).md)"; exit 1)
	@$(MAKE) --no-print-directory up
	@$$(call run_tests,./$(firstword $(wildcard part$(1)-*))/...)

run-part$(1):
	@$(if $(wildcard part$(1)-*),,echo "part$(1) is not written yet (see ../shared/spec/part$(1).md)"; exit 1)
	$(GO) run ./$(firstword $(wildcard part$(1)-*)) $(ARGS)
endef
$(foreach n,$(NN),$(eval $(call chapter_targets,$(n))))

bench: ## benchmarks, -count 5, benchstat-ready in bench/out/ (COUNT=, BENCH=regexp, PKG=./part09/...)
	@mkdir -p bench/out
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKG) | tee bench/out/root.txt
	cd bench && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKG) | tee out/anchors.txt
	@echo "compare runs with: go run golang.org/x/perf/cmd/benchstat@latest bench/out/anchors.txt"

tools: $(GOBIN)/staticcheck $(GOBIN)/actionlint $(GOBIN)/golangci-lint ## install the lint tools (once per machine)
$(GOBIN)/staticcheck:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(GOBIN)/actionlint:
	$(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
$(GOBIN)/golangci-lint:
	$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

lint: tools ## gofmt, go vet, staticcheck, golangci-lint (both modules, with and without tags), actionlint
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(GO) vet ./... && $(GO) vet -tags integration ./...
	cd bench && $(GO) vet ./...
	cd tools && $(GO) vet ./...
	$(GOBIN)/staticcheck ./... && $(GOBIN)/staticcheck -tags integration ./...
	cd bench && $(GOBIN)/staticcheck ./...
	cd tools && $(GOBIN)/staticcheck ./...
	$(GOBIN)/golangci-lint run --build-tags integration ./...
	$(GOBIN)/actionlint
	@echo "lint: clean"

generate: ## regenerate generated code (protobuf, charts) and fail if the tree changed
	$(GO) generate ./...
	@git diff --exit-code --stat || (echo "generated files were out of date; commit the result"; exit 1)
