# The two commands of the README:
#   make demo   set up .venv if needed, then run the main job on the built-in demo data
#   make test   set up .venv if needed, then run the test suite
PYTHON := .venv/bin/python

.PHONY: env demo test lint data

env:
	bash tools/setup_env.sh

demo: env
	$(PYTHON) tools/demo.py

test: env
	$(PYTHON) -m pytest tests

lint: env
	$(PYTHON) -m ruff check mmkd_ext tools tests benchmarks configs

data: env
	$(PYTHON) tools/misc/make_demo_data.py
