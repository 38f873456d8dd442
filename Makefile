# raftka — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/raftka-target
BIN := $(CARGO_TARGET_DIR)/debug/raftka
VENV := .venv/clients
VENV2 := .venv/kafka-python-2
PYTEST_ARGS ?=

.PHONY: run stop test deps build rust-test client-test fmt-check lint fmt bench bench-tools bench-node bench-cluster bench-groups bench-http bench-edge bench-log bench-faults fuzz fuzz-corpus venv

## A local cluster on this machine (Ctrl-C stops it).
run: build
	scripts/cluster up 3 && trap 'scripts/cluster down' INT TERM EXIT && scripts/cluster logs

stop:
	scripts/cluster down

## Fuzzing on stable Rust (tests/it/fuzz): FUZZ_INPUTS inputs per target
## (Kafka requests through dispatch, record batches, Raft frames); `make test`
## runs a 100,000-input slice of each.
FUZZ_INPUTS ?= 10000000
fuzz: build
	FUZZ_INPUTS=$(FUZZ_INPUTS) cargo test --test it fuzz::targets -- --nocapture --test-threads=1

## Captures the fuzz corpus (tests/corpus/kafka) from every client.
fuzz-corpus: venv build
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python tests/corpus/capture.py

## Everything CI runs: system packages, the build, Rust tests, client suites.
## (clippy is `make lint`, which .ci/run runs after this: its check build of
## RocksDB's C++ is a second ~20-minute compile on a fresh machine.)
test: deps build fmt-check rust-test client-test

deps:
	scripts/setup-deps

build:
	# One invocation shape everywhere: a different feature set would rebuild RocksDB.
	cargo build --tests

fmt-check:
	cargo fmt --check

lint: fmt-check
	cargo clippy --all-targets -- -D warnings

rust-test:
	cargo test -- --test-threads=2

venv: $(VENV)/.ok $(VENV2)/.ok

$(VENV)/.ok: tests/clients/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/clients/requirements.txt
	touch $@

$(VENV2)/.ok: tests/clients/requirements-kp2.txt
	python3 -m venv $(VENV2)
	$(VENV2)/bin/pip install -q -r tests/clients/requirements-kp2.txt
	touch $@

client-test: venv build
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python -m pytest -q tests/clients $(PYTEST_ARGS)
	# A -k that selects nothing among the seed tests is not a failure (pytest's 5).
	RAFTKA_BIN=$(BIN) $(VENV2)/bin/python -m pytest -q tests/clients/test_seed.py $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: bench-node bench-cluster bench-groups bench-http bench-edge bench-log bench-faults

bench-tools: deps venv build
	cargo build --release --manifest-path bench/consume-perf/Cargo.toml

## One node (issue 2).
bench-node: bench-tools
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python bench/bench.py

## Three nodes, RF=3: throughput, failover, idle CPU (issue 3).
bench-cluster: bench-tools
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python bench/cluster.py

## Consumer groups: rebalance time, commit throughput (issue 4).
bench-groups: deps venv build
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python bench/groups.py

## The Kafka listener under load and under attack (issue 12).
bench-edge: bench-tools
	bench/tools/build-rdkafka-performance $(CARGO_TARGET_DIR)/bench/rdkafka_performance
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python bench/edge.py

## The partition log: throughput with librdkafka's rdkafka_performance, broker
## CPU per million records, idle memory, catch-up (issue 14).
bench-log: bench-tools
	bench/tools/build-rdkafka-performance $(CARGO_TARGET_DIR)/bench/rdkafka_performance
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python bench/log.py

## Failover as default-settings clients see it: 100 faults of five kinds,
## per-partition outage and stall, lost/duplicated/reordered (issue 15).
bench-faults: deps venv build
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python bench/faults.py

fmt:
	cargo fmt

## Admin HTTP API: topic create/describe latency, REST produce (issue 5).
bench-http: deps venv build
	RAFTKA_BIN=$(BIN) $(VENV)/bin/python bench/admin.py
