# Every target installs what it needs first, so each works on a fresh clone: `run` the runtime alone,
# `test` and `image-test` the test extra on top of it, `deploy-test` the deploy extra on top of that.
# The Dockerfile repeats the runtime install steps and `run` below word for word (with `python` for
# $(PY)); tests/test_dockerfile.py keeps them in step.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.test-installed
CORPUS ?= ../shared/data/wiki100m.txt.xz

.PHONY: install browser run test image-test deploy-test bundled bench clean

$(INSTALLED): pyproject.toml examples/vanilla-rnn/pyproject.toml examples/mingru/pyproject.toml examples/mlstm/pyproject.toml constraints.txt package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e .
	$(PY) -m pip install --quiet -c constraints.txt -e examples/vanilla-rnn
	$(PY) -m pip install --quiet -c constraints.txt -e examples/mingru
	$(PY) -m pip install --quiet -c constraints.txt -e examples/mlstm
	npm ci --no-audit --no-fund
	touch $@

$(TEST_INSTALLED): $(INSTALLED)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(INSTALLED)

# The browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

run: install
	$(PY) -m app

# Lint and types first (settings in pyproject.toml): they take seconds, the tests minutes.
test: $(TEST_INSTALLED) browser
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

# Builds the Dockerfile as it is (with local stand-ins of its base images) and runs the image with podman,
# installing podman first if needed: tests/image/checks.py. CI runs it after `test`.
image-test: $(TEST_INSTALLED)
	$(PY) -m pytest tests/image/checks.py

# Runs deploy/compose.yaml (two replicas behind the nginx cache, with podman-compose) and deploy/kubernetes/
# (schemas, `podman kube play`) on the image `image-test` built and kept: tests/deploy/checks.py.
# CI runs it after `image-test`.
deploy-test: $(TEST_INSTALLED)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,deploy]'
	$(PY) -m pytest tests/deploy/checks.py

# Retrain the bundled models from scratch or resume them: hours on a 2-core CPU.
# CORPUS's default is where the bundled models' corpus lies on the machines that trained them (README, "Data").
bundled: install
	@test "$(CORPUS)" = text8 || test -f "$(CORPUS)" || { echo "make bundled: $(CORPUS) does not exist (the default is the bundled models' corpus, wiki100m.txt.xz, which is not distributed: README, \"Data\"); pass CORPUS=text8 to download text8, or CORPUS=<a .txt, .xz or .zip file of text>" >&2; exit 2; }
	$(PY) -m training prepare --corpus $(CORPUS)
	for unit in gru lstm nlstm mingru mlstm rnn; do $(PY) -m training train --unit $$unit --preset bundled --resume || exit 1; done
	$(PY) -m training evaluate --preset bundled
	$(PY) -m training export --preset bundled

# Every script runs, whatever the one before it found; then the target fails if any of them did, naming them.
bench: install
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	@missed=""; \
	for script in train_throughput serve_latency load; do $(PY) bench/$$script.py || missed="$$missed bench/$$script.py"; done; \
	test -z "$$missed" || { echo "make bench: exit 1 from$$missed (each says why above)" >&2; exit 1; }

clean:
	rm -rf $(VENV) node_modules
