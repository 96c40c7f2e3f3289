# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install swain (editable) with its test extras first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install clean typecheck

$(VENV)/.installed: pyproject.toml setup.py tests/example_plugin_pkg/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -e tests/example_plugin_pkg
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/swain demo

test: typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

# ruff, then mypy --strict over the swain.* namespace: the four folders are
# linked into one package tree, since mypy cannot follow setuptools' editable
# mapping.
typecheck: install
	$(BIN)/ruff check .
	rm -rf build/typecheck && mkdir -p build/typecheck/swain
	for d in core plugins dialects contrib; do ln -s "$(CURDIR)/$$d" build/typecheck/swain/$$d; done
	cd build/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml \
		--explicit-package-bases -p swain
