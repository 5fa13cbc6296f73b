# The two commands: `make demo` (set up, build, stand the topology up, run the sample experiment, write a
# report) and `make test` (set up, build, run the whole test suite). Both work on a fresh machine.
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  ?= python3
TOPOLOGY ?= harness/topologies/standin-ha.yaml

.PHONY: setup host-deps images demo test lint bench clean

host-deps:
	@command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	@command -v cargo >/dev/null || { echo "cargo (Rust) is needed to build the Toxiproxy-API server" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "a running Docker engine is needed" >&2; exit 1; }

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: host-deps $(BIN)/.installed

images: setup
	$(BIN)/resilience images build

demo: images
	$(BIN)/resilience demo --topology $(TOPOLOGY)

lint: setup
	$(BIN)/ruff check .

test: images lint
	$(BIN)/pytest -q -p no:cacheprovider --durations=30

bench: images
	$(BIN)/python benchmarks/bringup.py

clean:
	-$(BIN)/resilience cleanup
