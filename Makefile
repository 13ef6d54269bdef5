# lts: `make install` builds .venv (CPU torch first), `make test` installs then runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint bench bench-profile bench-search bench-search-overhead bench-generate bench-predictor bench-proxy bench-ray bench-published bench-train clean

install: $(STAMP)

# torch==2.13.0 first: it is the CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check lts_cli tests benchmarks
	$(BIN)/ruff format --check lts_cli tests benchmarks
	$(BIN)/mypy
	@# a module over 400 lines has a second job in it: split it (DESIGN.md)
	$(BIN)/python -c "import pathlib, sys; big = [f'{p}: {len(p.read_text().splitlines())} lines' for p in sorted(pathlib.Path('lts_cli').rglob('*.py')) if len(p.read_text().splitlines()) > 400]; sys.exit('modules over 400 lines: ' + ', '.join(big) if big else 0)"

bench: bench-profile bench-search bench-search-overhead bench-generate bench-predictor bench-ray bench-proxy bench-train bench-published

bench-profile: install
	$(BIN)/python benchmarks/bench_profile.py

bench-search: install
	$(BIN)/python benchmarks/bench_strategies.py $(ARGS)

bench-search-overhead: install
	$(BIN)/python benchmarks/bench_search.py

bench-generate: install
	$(BIN)/python benchmarks/bench_generate.py

bench-predictor: install
	$(BIN)/python benchmarks/bench_predictor.py

bench-proxy: install
	$(BIN)/python benchmarks/bench_proxy.py

bench-ray: install
	$(BIN)/python benchmarks/bench_ray.py

bench-train: install
	$(BIN)/python benchmarks/bench_train.py $(ARGS)

bench-published: install
	$(BIN)/python benchmarks/bench_published.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
