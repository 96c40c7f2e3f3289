# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install swain (editable) with its test extras first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml setup.py tests/example_plugin_pkg/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -e tests/example_plugin_pkg
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/swain demo

test: install
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
