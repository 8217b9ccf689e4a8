# hirestate — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
KAFKA := deploy/kafka/kafka.sh

.PHONY: all build demo test test-unit lint fmt bench soak kafka-up kafka-down clean-kafka

all: build

build:
	$(CARGO) build --release --bin hirestate

## The main job on the embedded default (no broker needed).
demo: build
	./target/release/hirestate demo

## Unit, property and integration tests against a real single-node Kafka broker (KRaft),
## started here if it is not already up and stopped after if this target started it.
test:
	HIRESTATE_REQUIRE_KAFKA=1 $(KAFKA) with $(CARGO) test --all-targets

## Tests that need no broker.
test-unit:
	$(CARGO) test --lib --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Benchmarks (ratios, side by side in one run; see README "Benchmarks"): the criterion bench
## `fold`, the codec bench `codec` (direct Avro paths vs the `Value` path), then the
## end-to-end bench `e2e` against the test broker, started here if it is not
## already up and stopped after if this target started it (HIRESTATE_BENCH_EVENTS=<n> sizes it).
bench:
	$(CARGO) bench --bench fold
	$(CARGO) bench --bench codec
	$(KAFKA) with $(CARGO) bench --bench e2e

kafka-up:
	$(KAFKA) up

kafka-down:
	$(KAFKA) down

## Removes the test broker's jars and data (the next `make test` resolves them again).
clean-kafka: kafka-down
	rm -rf target/kafka

## The hard-kill test at soak scale: a bigger stream and many more kills (HIRESTATE_SOAK=1;
## HIRESTATE_TEST_SEED=<n> replays a kill schedule). Starts the test broker if needed.
soak:
	HIRESTATE_REQUIRE_KAFKA=1 HIRESTATE_SOAK=1 $(KAFKA) with $(CARGO) test --test processor_kills -- --nocapture
