# Quick start: `make demo` (the embedded CPU demo) and `make test` (the test suite).
# Both create the environment on first use (tools/setup_env.sh) and reuse it afterwards.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vpetl_mm-installed

.PHONY: env demo test clean-demo

env: $(STAMP)

$(STAMP): setup.py tools/setup_env.sh
	bash tools/setup_env.sh $(VENV)
	touch $@

demo: $(STAMP)
	$(PY) demo/digits_transfer.py

test: $(STAMP)
	$(PY) -m pytest tests

clean-demo:
	rm -rf work_dirs/demo
