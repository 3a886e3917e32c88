# `make demo` and `make test` work on a fresh clone: they create .venv, install tlgan,
# fetch the pretrained weights (once, into $TLGAN_HOME or ~/.cache/tlgan) and run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TLGAN := $(VENV)/bin/tlgan
STAMP := $(VENV)/.installed
DEMO_N ?= 10000
DEMO_OUT ?= runs/demo

.PHONY: setup models demo test check-dist bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch; any torch>=2.1 works if you install your own (e.g. a CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	# the Ray release tested here (a wheel of it lies on this disk); any ray>=2.9 should work
	$(PY) -m pip install -q 'ray==2.58.0'
	$(PY) -m pip install -q -e '.[app,test,browser,ray,notebook]'
	touch $@

setup: $(STAMP)

models: setup
	$(TLGAN) models fetch

demo: models
	$(TLGAN) discover -n $(DEMO_N) --out $(DEMO_OUT)
	# the encoder that starts `tlgan edit --image` / `tlgan invert` from a guess, not the mean latent (trained once)
	test -f $(DEMO_OUT)/encoder.safetensors || $(TLGAN) train-encoder $(DEMO_OUT)/run -n $(DEMO_N)
	@echo "traversal figure: $(DEMO_OUT)/traversal.png"
	@echo "explore the axes in your browser: $(TLGAN) serve $(DEMO_OUT)/axes.safetensors   (then open http://127.0.0.1:7860)"

test: models
	# a test photo of the face detector (from the same npm package as the face models), so no test is skipped
	$(TLGAN) models fetch human-test-photos
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src
	$(PY) -m pytest -q

# the sdist and wheel, installed into a fresh venv in a temporary folder outside the checkout, run the user's verbs
# (models fetch, discover -n 300, edit, serve, invert); .ci/run calls it after `make test`
check-dist: models
	PY=$(abspath $(PY)) tests/dist_check.sh

# benchmarks write benchmarks/results/*.json; evaluate and app_latency use the demo's run and axes
bench: models
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/evaluate.py --run $(DEMO_OUT)/run
	$(PY) benchmarks/app_latency.py --axes $(DEMO_OUT)/axes.safetensors
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/photo_edits.py --axes $(DEMO_OUT)/axes.safetensors

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
