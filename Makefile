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
RUN       ?=
REPORT    := $(GO) run ./internal/cmd/testreport

STATICCHECK_VERSION := v0.8.2
ACTIONLINT_VERSION  := v1.7.12
GOLANGCI_VERSION    := v2.15.0

# The services each chapter's integration and fault tests need (scripts/stack and
# internal/stack names; redlock and redis-cluster are groups). `make test-partNN`
# starts only these; the GitHub workflow reads them with `make -s services-partNN`.
SERVICES_01 := postgres
SERVICES_02 := redis
SERVICES_03 := redis postgres
SERVICES_04 := postgres
SERVICES_05 := kafka postgres
SERVICES_06 := redis redlock redis-cluster etcd postgres
SERVICES_07 := redis postgres
SERVICES_08 := temporal postgres kafka
SERVICES_09 := redis-cluster
SERVICES_10 :=
SERVICES_11 := redis redis-cluster
SERVICES_12 := postgres

# SERVICES= picks services for up (empty: all). Compose names the cluster's one-shot
# init job and each Redlock master separately.
SERVICES  ?=
compose_services = $(foreach s,$(1),$(if $(filter redlock,$(s)),redlock-1 redlock-2 redlock-3,$(if $(filter redis-cluster,$(s)),redis-cluster-1 redis-cluster-2 redis-cluster-3 redis-cluster-init,$(s))))

.PHONY: help up down status test test-unit bench lint generate tools \
        $(addprefix test-part,$(NN)) $(addprefix test-unit-part,$(NN)) $(addprefix run-part,$(NN)) \
        $(addprefix bench-part,$(NN)) $(addprefix services-part,$(NN))

help: ## list the targets
	@echo "System Design Masterclass (Go). Chapters: $(CHAPTERS)"
	@echo
	@grep -hE '^[a-zA-Z%_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'
	@echo "  make test-partNN [RUN=re]   one chapter: its services up, unit + integration tests, -race"
	@echo "  make test-unit-partNN       one chapter's unit tests, no services"
	@echo "  make run-partNN ARGS=...    go run ./partNN-* ARGS"
	@echo "  make bench-partNN [COUNT=n] one chapter's benchmarks (its package + bench/partNN), ratios vs the anchors"
	@echo "                              (with -tags integration: benchmarks on real services run when the stack is up)"
	@echo "                              SAVE=1 also writes bench/results/partNN.txt"

# The stack: Docker Compose when a Docker engine answers, else native processes.
up: ## start the services (SERVICES="redis postgres" for some; Compose if a Docker engine answers, else scripts/stack)
	@if docker info >/dev/null 2>&1; then \
	  docker compose up -d --wait $(call compose_services,$(SERVICES)); \
	else \
	  if command -v docker >/dev/null; then echo "make up: the docker client is here but no Docker engine answers; starting the native stack (scripts/stack)"; \
	  else echo "make up: no Docker; starting the native stack (scripts/stack)"; fi; \
	  scripts/stack up $(SERVICES); \
	fi

down: ## stop the services `make up` started
	@if docker info >/dev/null 2>&1; then docker compose down; else scripts/stack down; fi

status: ## one line per service
	@if docker info >/dev/null 2>&1; then docker compose ps; else scripts/stack status; fi

# Unit + integration tests of the packages in $(1), -race, no skips allowed. TestFault*
# tests break shared services, so they run after the rest, one package at a time.
# RUN=regexp runs only the matching tests, in one pass, one package at a time.
define run_tests
	$(if $(TEST),$(error TEST= is not a variable here: use RUN=regexp))
	$(if $(ARGS),$(error ARGS= is for run-partNN: use RUN=regexp to pick tests))
	export STACK_REQUIRED=1; t0=$$(date +%s); \
	fault=$$(grep -rl --include='*_test.go' '^func TestFault' $(patsubst %/...,%,$(1)) | xargs -r -n1 dirname | sort -u || true); \
	{ if [ -n "$(RUN)" ]; then \
	    $(GO) test -race -count=1 -tags integration -json -run '$(RUN)' -p 1 $(1); \
	  else \
	    echo "== unit and integration tests"; \
	    $(GO) test -race -count=1 -tags integration -json -skip '^TestFault' $(1); \
	    if [ -n "$$fault" ]; then echo "== fault tests (TestFault*: they break services, so one package at a time)"; \
	      $(GO) test -race -count=1 -tags integration -json -run '^TestFault' -p 1 $$fault; fi; \
	  fi; \
	} | $(REPORT); \
	echo "tests took $$(( $$(date +%s) - t0 ))s"
endef

test: up ## stack up, then every unit and integration test with -race (no test may skip); RUN=regexp for some
	@$(call run_tests,./...)
	@$(if $(RUN),,cd tools && $(GO) test -count=1 ./... # docker-compose.yml checks (own module: compose-go stays out of go.mod))

test-unit: ## unit tests only (no services needed), with -race
	$(GO) test -race ./... -json | $(REPORT)

define chapter_targets
test-part$(1):
	@$(if $(wildcard part$(1)-*),,echo "part$(1) is not written yet"; exit 1)
	@$(if $(strip $(SERVICES_$(1))),$(MAKE) --no-print-directory up SERVICES="$(SERVICES_$(1))",echo "part$(1) needs no services")
	@$$(call run_tests,./$(firstword $(wildcard part$(1)-*))/...)

test-unit-part$(1):
	@$(if $(wildcard part$(1)-*),,echo "part$(1) is not written yet"; exit 1)
	$(GO) test -race -count=1 $$(if $$(RUN),-run '$$(RUN)') -json ./$(firstword $(wildcard part$(1)-*))/... | $(REPORT)

run-part$(1):
	@$(if $(wildcard part$(1)-*),,echo "part$(1) is not written yet"; exit 1)
	$(GO) run ./$(firstword $(wildcard part$(1)-*)) $$(ARGS)

services-part$(1):
	@echo $(SERVICES_$(1))

bench-part$(1):
	@$(if $(wildcard part$(1)-*),,echo "part$(1) is not written yet"; exit 1)
	@mkdir -p bench/out
	@{ $(GO) test -run '^$$$$' -tags integration -bench '$$(BENCH)' -benchmem -count $$(COUNT) ./$(firstword $(wildcard part$(1)-*))/...; \
	   if [ -d bench/part$(1) ]; then cd bench && for round in $$$$(seq $$(COUNT)); do \
	     $(GO) test -run '^$$$$' -tags integration -bench '$$(BENCH)' -benchmem -count 1 ./part$(1)/...; done; fi; \
	   if [ -x $$(CURDIR)/bench/part$(1)/extra.sh ]; then $$(CURDIR)/bench/part$(1)/extra.sh $$(COUNT); fi; \
	 } | tee bench/out/part$(1).txt
	@echo
	@cd bench && if [ -f results/part$(1).txt ]; then $(GO) run ./cmd/benchratio -baseline results/part$(1).txt out/part$(1).txt; \
	  else $(GO) run ./cmd/benchratio out/part$(1).txt; fi || true
	@$$(if $$(SAVE),mkdir -p bench/results && cp bench/out/part$(1).txt bench/results/part$(1).txt && echo "saved bench/results/part$(1).txt")
	@echo "raw output: bench/out/part$(1).txt (benchstat-ready; committed run: bench/results/part$(1).txt)"
endef
$(foreach n,$(NN),$(eval $(call chapter_targets,$(n))))

bench: ## every benchmark, both modules, -count COUNT (BENCH=regexp); raw output in bench/out/
	@mkdir -p bench/out
	$(GO) test -run '^$$' -tags integration -bench '$(BENCH)' -benchmem -count $(COUNT) ./... | tee bench/out/root.txt
	cd bench && $(GO) test -run '^$$' -tags integration -bench '$(BENCH)' -benchmem -count $(COUNT) ./... | tee out/anchors.txt
	@cd bench && $(GO) run ./cmd/benchratio out/anchors.txt || true

tools: $(GOBIN)/staticcheck $(GOBIN)/actionlint $(GOBIN)/golangci-lint ## install the lint tools (once per machine)
$(GOBIN)/staticcheck:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(GOBIN)/actionlint:
	$(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
$(GOBIN)/golangci-lint:
	$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

# part12's code generators and grpcurl are tools of part12-protocols/proto/go.mod
# (pinned there); `go tool -n` builds each once into the build cache.
PART12_TOOLS := buf protoc-gen-go protoc-gen-go-grpc protoc-gen-connect-go grpcurl
.PHONY: part12-tools
tools: part12-tools
part12-tools:
	@cd part12-protocols/proto && for t in $(PART12_TOOLS); do $(GO) tool -n $$t >/dev/null; done
# built before part12's tests run them: buf takes minutes of CPU to build cold, longer than
# a test's command may wait
test-part12 test: part12-tools

MODULES := . bench tools

lint: tools ## gofmt, go vet, staticcheck, golangci-lint (every module, with and without tags), actionlint
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do ( cd $$m && echo "lint: $$m" && \
	  $(GO) vet ./... && $(GO) vet -tags integration ./... && \
	  $(GOBIN)/staticcheck ./... && $(GOBIN)/staticcheck -tags integration ./... && \
	  $(GOBIN)/golangci-lint run --allow-parallel-runners --build-tags integration ./... ); done
	$(GOBIN)/actionlint
	@echo "lint: clean"

generate: ## regenerate generated code (protobuf, charts) and fail if the tree changed
	$(GO) generate ./...
	@git diff --exit-code --stat || (echo "generated files were out of date; commit the result"; exit 1)
