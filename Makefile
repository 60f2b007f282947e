# `make demo`, `make playground` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall whenever pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Tests and the demo never reach the Hugging Face hub (it is unreachable offline anyway).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false
# playwright (the playground test) drives the system chromium; it never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup demo playground test lint bench clean

setup: $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# Without a visible CUDA GPU, take the local CPU wheel first; an unpinned torch pulls a multi-GB CUDA build.
	if ! nvidia-smi -L >/dev/null 2>&1; then $(BIN)/python -m pip install -q torch==2.13.0; fi
	$(BIN)/python -m pip install -q -e '.[dev,demo,playground]'
	@# The playground test drives Debian's chromium; the store's tests start a real PostgreSQL server (its
	@# initdb). Install what is missing where apt-get is usable (as root or with sudo), else those tests skip
	@# and say why.
	missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then echo "missing:$$missing; apt-get needs root: their tests will skip"; \
		else $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
			|| echo "could not install$$missing: their tests will skip"; fi; \
	fi
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/linernotes demo

# The real bot in a simulated Discord, used from a browser on this machine (prints the page's address).
playground: $(STAMP)
	$(BIN)/linernotes playground

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The ten slowest tests are listed after every run, so the suite's cost stays in view. One worker per core
# (at most four: each loads its own tiny models), one math thread each (tests/conftest.py).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q --durations=10 -n auto --maxprocesses 4

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .linernotes .pytest_cache .ruff_cache .hypothesis
