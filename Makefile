# virtlab: the two commands of the README, and a few more for developers.
# `make demo` and `make test` install whatever is missing first (as root).

VENV   := .venv
PY     := $(VENV)/bin/python
VL     := $(VENV)/bin/virtlab
PYTEST := $(VENV)/bin/pytest
TOX    := $(VENV)/bin/tox
# Tests use their own store; the demo uses the default one (or VIRTLAB_ROOT).
TEST_MARKERS ?= not slow and not bench

.PHONY: demo test setup images unit integration vm conformance lint type bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) -m bench.demo

test: setup
	$(PYTEST) -m "$(TEST_MARKERS)" $(PYTEST_ARGS)
	$(TOX) -q -e lint,type

images: setup
	$(VL) image build busybox

unit: setup
	$(PYTEST) tests/unit

integration: setup
	$(PYTEST) tests/integration

vm: setup
	$(PYTEST) tests/vm

conformance: setup
	$(PYTEST) tests/conformance

lint: setup
	$(TOX) -q -e lint

type: setup
	$(TOX) -q -e type

bench: setup
	$(PYTEST) -m bench tests/bench

clean:
	rm -rf .tox build *.egg-info
