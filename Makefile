# poptune developer commands. Both targets build .venv from scratch when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench venv clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch from this machine's disk (an unpinned torch pulls a CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,examples]'
	# nevergrad pins an old bayesian-optimization; install it beside the new one (see NevergradSearch)
	$(PY) -m pip install -q --no-deps nevergrad==1.0.12 cma directsearch
	# HEBO declares numpy<1.25 and pymoo==0.6.0 but runs on today's (see HEBOSearch)
	$(PY) -m pip install -q --no-deps HEBO==0.3.6
	# bayes_opt 1.x (Ray 2.60's API) aside, for tests/search/test_bayesopt_versions.py
	$(PY) -m pip install -q --no-deps --target $(VENV)/bayes-opt-1 bayesian-optimization==1.4.0
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	bash .ci/install-browser.sh   # Debian's chromium + chromedriver for the dashboard browser test
	$(PY) -m pytest -q -p no:cacheprovider tests
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules poptune   # the docstring examples
	$(PY) -m mypy poptune   # types stay checked (DESIGN: typed, mypy-clean)

demo: $(STAMP)
	$(PY) examples/pbt_convnet_example.py

bench: $(STAMP)
	bash bench/setup.sh   # .venv-bench: Ray Tune and Optuna live beside, never inside, .venv
	.venv-bench/bin/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
