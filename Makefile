# The two commands of the README:
#   make demo   set up .venv if needed, then run the main job on the built-in demo data
#   make test   set up .venv if needed, then run the test suite
PYTHON := .venv/bin/python

.PHONY: env demo test lint data

env:
	bash tools/setup_env.sh

demo: env
	$(PYTHON) tools/demo.py

# The config checks (one run per file in configs/ and per MMRazor zoo config, about half of the suite's time) run in
# two pytest-xdist workers of one torch thread each; the rest runs in one process (its torchrun tests start two ranks
# of their own).
CHECKS := tests/test_config_check.py tests/compat/test_mmrazor_zoo.py
test: env
	$(PYTHON) -m pytest tests $(addprefix --ignore=,$(CHECKS))
	$(PYTHON) -m pytest $(CHECKS) -n 2

lint: env
	$(PYTHON) -m ruff check mmkd_ext tools tests benchmarks configs

data: env
	$(PYTHON) tools/misc/make_demo_data.py
