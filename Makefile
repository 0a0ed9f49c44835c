# Two entry points, both from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test system-deps lint typecheck pytest clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required: set PYTHON=python3.11")'
	@$(PYTHON) -m venv $(VENV) || { echo "Could not create $(VENV). On Debian install the venv module: apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	IVR_LOG_FORMAT=$${IVR_LOG_FORMAT:-console} \
	IVR_AGI_ALLOW_TIME_OVERRIDE=$${IVR_AGI_ALLOW_TIME_OVERRIDE:-true} \
	$(BIN)/ivr serve

test: $(VENV)/.installed-dev
	$(BIN)/ruff check ivr tests bench
	$(BIN)/ruff format --check ivr tests bench
	$(BIN)/mypy
	$(BIN)/pytest

# Debian tools some tests use (they skip without them; CI installs them so nothing
# skips there): espeak-ng and sox build the prompts, promtool (package prometheus)
# checks the alert rules.
SYSTEM_DEPS := espeak-ng sox prometheus
system-deps:
	@missing=""; for tool in espeak-ng sox promtool; do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(SYSTEM_DEPS) >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
