# One-command set-up: `make test` and `make demo` both run the idempotent `make setup` first.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

.PHONY: setup test demo bench grc iio-contexts clean-venv
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/isac-testbed demo

bench: setup
	$(PY) benchmarks/run_all.py

# register grc/ in ~/.gnuradio/config.conf and make `blocks` importable by the Python GRC runs
grc: setup
	$(PY) -m blocks.grc_install

# download the real libiio contexts of a stock Pluto and an AD9361 2R2T (pinned, sha256-checked) into
# ~/.cache/ris-isac-testbed/iio so that tests/test_iio_contexts.py runs instead of skipping (needs network)
iio-contexts:
	bash scripts/get_iio_contexts.sh

clean-venv:
	rm -rf $(VENV)
