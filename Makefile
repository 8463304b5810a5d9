# The two commands of the README:
#   make demo   set up .venv if needed, then run the main job on the built-in demo data
#   make test   set up .venv if needed, then run the test suite
PYTHON := .venv/bin/python

.PHONY: env demo test durations lint data

env:
	bash tools/setup_env.sh

demo: env
	$(PYTHON) tools/demo.py

# One pytest call, two pytest-xdist workers (work stealing) of one torch thread each: the tests of tests/durations.json
# that take 5 s or more go first, longest first (tests/conftest.py), the config checks among them. A torchrun test
# starts two ranks of its own on a free port. `make durations` re-records the file.
test: env
	$(PYTHON) -m pytest tests -n 2 --dist worksteal

durations: env
	$(PYTHON) -m pytest tests -n 2 --dist worksteal --store-durations

lint: env
	$(PYTHON) -m ruff check mmkd_ext tools tests benchmarks configs

data: env
	$(PYTHON) tools/misc/make_demo_data.py
