# Two commands for a fresh machine: `make demo` (main job) and `make test` (test suite).
# Both create .venv in the checkout from the pinned lock first if it is missing or stale.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: install system demo test test-fast bench clean-runs

$(STAMP): requirements/lock.txt requirements/studio.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements/lock.txt -r requirements/studio.txt
	$(PIP) --no-deps -r requirements/no-deps.txt
	$(PIP) --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The ssh tests start real OpenSSH servers (one per emulated host): installed here where we are root on Debian or
# Ubuntu; elsewhere those tests are skipped with the reason.
system:
	@if [ ! -x /usr/sbin/sshd ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing openssh-server and openssh-client for the ssh tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q openssh-server openssh-client >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q openssh-server openssh-client >/dev/null; }; \
	fi

demo: install
	$(VENV)/bin/rudder compare --dataset ogbn-arxiv --parts 2 --epochs 3 --controllers none,paper,llm \
		--fractions 0.25 --model llamacpp:smollm2-135m --out runs/demo --overwrite

# Two workers (pytest-xdist): one runs the files of HOST_GROUP (tests/conftest.py: the reference runs, the tests
# that read them, those that make or count network namespaces), the other every other file beside it.
TEST_WORKERS ?= 2

test: install system
	$(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist loadgroup --durations=25

test-fast: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not integration and not llm"

bench: install
	$(PY) benchmarks/bench_buffer.py

clean-runs:
	rm -rf runs
