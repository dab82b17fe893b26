# cae — two entry points: `make book` (the main job) and `make test`. Each sets up .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.cae-installed

.PHONY: setup system-packages browser-packages test test-fast book book-smoke book-check dryrun corpus reference-codec reference-model reference-mel bench ci-time clean

setup: $(STAMP)

# FluidSynth and the General MIDI soundfont render the reference corpus (Debian packages; needs root or sudo).
SF2 := /usr/share/sounds/sf2/FluidR3_GM.sf2
system-packages:
	@if ! command -v fluidsynth >/dev/null || [ ! -f $(SF2) ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends fluidsynth fluid-soundfont-gm; \
	fi

# Headless Chromium for the built book's browser check (Debian packages; needs root or sudo).
browser-packages:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	fi

# torch first and pinned (a bare `torch` requirement would pull a multi-GB CUDA build); audiocraft without its
# unsatisfiable pins, then its import-time dependencies (the `audiocraft` extra).
$(STAMP): pyproject.toml Makefile | system-packages browser-packages
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Debian: apt-get install python3.11 python3.11-venv)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,audiocraft,sweep,book]'
	$(PIP) install -q --no-deps audiocraft==1.3.0 xformers==0.0.35 torchaudio==2.11.0
	@# the PyPI torchaudio wheel is a CUDA build: drop its compiled parts so the pure-Python parts audiocraft uses import
	rm -f $$($(PY) -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('torchaudio').origin))")/lib/*.so
	$(PY) -W ignore -c "import cae.models, audiocraft.models.lm; print('environment ready')"
	touch $@

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow"

# The reference corpus (rendered audio, cached in $$CAE_DATA_DIR or ./data; deterministic, minutes on 2 cores).
corpus: $(STAMP)
	$(PY) -m cae.data.corpus

# The shipped reference model, from scratch: its neural codec (EnCodec architecture; about 50 minutes on 2 idle cores,
# resumable: rerun after an interruption), then its decoder on the codec's tokens (about 40 minutes, resumable).
# Both write cae/reference/weights/reference/.
reference-codec: corpus
	$(PY) -m cae.reference.codec

reference-model: reference-codec
	$(PY) -m cae.reference.train

# The ablation model reference-mel (mel-RVQ tokenizer fitted here, decoder stopped at step 1000 of 2200 as shipped).
reference-mel: corpus
	$(PY) -m cae.reference.train --codec mel --stop-at 1000

# The book: render the corpus if missing, execute every notebook with the `default` parameters (papermill;
# unchanged notebooks are not re-executed, sweeps are cached), then jupyter-book → _build/html/index.html.
book: $(STAMP)
	$(PY) -m cae.data.corpus
	$(PY) -m cae.book build --set default

# The same with the `smoke` parameters (seconds; synthetic clips).
book-smoke: $(STAMP)
	$(PY) -m cae.book build --set smoke

# The paper set's code paths at the real MusicGen architectures with seeded random weights (`@random`, no
# download): every notebook with the `dryrun` parameters into _build/dryrun/ (not the book). Its numbers mean
# nothing about music; it proves the `paper` set runs (see the book's "Reproducing" page). One lane: real-size
# matrix products use both cores well, so notebooks side by side would only halve each one's threads.
dryrun: $(STAMP)
	$(PY) -m cae.data.corpus
	$(PY) -m cae.book build --set dryrun --out-dir _build/dryrun --lanes 1

# Open every built page in headless Chromium with the network off: charts rendered, audio present, no console
# error, no request leaving the machine.
book-check: $(STAMP)
	$(PY) -m cae.book.check _build/html --charts 'notebooks/*.html' --audio 'notebooks/rq2_token_dynamics.html'

# CI's duration, measured: a fresh clone of HEAD, then every `make` stage of .ci/run timed (about 50 minutes on
# 2 cores); writes ci-time.json (seconds per stage). The book's performance page shows the last measurement.
ci-time:
	bash .ci/time

# Benchmark of the sweep engine against the naive baseline (not a test; minutes).
bench: $(STAMP)
	$(PY) -m cae.bench

clean:
	rm -rf _build .pytest_cache .hypothesis notebooks/*.ipynb _static/cae-vega.js
