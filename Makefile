# Set-up is two commands on a fresh machine: `make run` (install + start the page) and `make test`
# (install + run the tests). torch==2.13.0 goes first: it is the local CPU build, and installing
# sentence-transformers before it would pull a multi-GB CUDA build instead.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-browser run test eval bench train

install:
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[test]"

install-browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver)
	# a Japanese font, so that screenshots of Japanese questions show text rather than empty boxes
	fc-list :lang=ja 2>/dev/null | grep -q . || (apt-get update && apt-get install -y --no-install-recommends fonts-ipafont-gothic)

run: install
	GRADIO_ANALYTICS_ENABLED=False $(PYTHON) app.py

test: install install-browser
	GRADIO_ANALYTICS_ENABLED=False $(PYTHON) -m pytest -q

eval:
	$(PYTHON) -m eval

bench:
	policyqa bench

# Retrain the shipped retriever (index/trained/minilm-policy-v5) from the packaged base model; needs
# ../shared/benchmarks/policyqa/dev.json. Not run in CI.
train:
	$(PYTHON) -m qa.cli train
