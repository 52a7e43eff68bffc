# Every target creates the virtualenv when it is missing, so a fresh clone needs only `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint unit e2e demo bench protos clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check sidecar fakes tests tools bench
	$(VENV)/bin/mypy sidecar fakes tools bench

test: lint
	$(VENV)/bin/pytest tests

unit: venv
	$(VENV)/bin/pytest tests --ignore=tests/e2e

e2e: venv
	$(VENV)/bin/pytest tests/e2e

demo: venv
	$(PY) -m tools.demo

bench: venv
	$(PY) -m bench.notification_cost

# Regenerate the checked-in gRPC/protobuf code after editing sidecar/teleport/wire/*.proto.
protos: venv
	$(PY) -m tools.gen_protos

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
