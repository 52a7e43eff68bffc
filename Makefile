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

# ruff, mypy --strict, and the layer contracts of docs/architecture.md ([tool.importlinter] in pyproject.toml).
lint: venv
	$(VENV)/bin/ruff check --no-cache sidecar fakes tests tools bench
	$(VENV)/bin/mypy sidecar fakes tools bench tests
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(VENV)/bin/pytest tests

unit: venv
	$(VENV)/bin/pytest tests --ignore=tests/e2e

e2e: venv
	$(VENV)/bin/pytest tests/e2e

demo: venv
	$(PY) -m tools.demo

# Not part of `test`: the end-to-end benchmark starts the stack once per phase and takes several minutes.
bench: venv
	$(PY) -m bench.notification_cost
	$(PY) -m bench.e2e_burst

# Regenerate the checked-in gRPC/protobuf code after editing sidecar/teleport/wire/*.proto.
protos: venv
	$(PY) -m tools.gen_protos

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache

# -- containers (docs/deployment.md). Need a Docker daemon ($DOCKER_HOST); `make test` does not. ---------------
DOCKER ?= docker
COMPOSE ?= docker-compose
IMAGE ?= teleport-mattermost:dev
TEST_RUNNER_IMAGE ?= teleport-mattermost-test-runner:dev
BASE_IMAGE ?= python:3.11-slim
PIP_INSTALL_ARGS ?=
CONTAINER_ENV := TM_IMAGE=$(IMAGE) TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_CONNECTION_MODE=docker_host
COMPOSE_ENV := TM_IMAGE=$(IMAGE) TM_TEST_RUNNER_IMAGE=$(TEST_RUNNER_IMAGE)

.PHONY: images test-containers test-compose

# The legacy builder: BuildKit needs buildx, which Debian's docker.io lacks.
images:
	DOCKER_BUILDKIT=0 $(DOCKER) build --build-arg BASE_IMAGE=$(BASE_IMAGE) \
		--build-arg PIP_INSTALL_ARGS="$(PIP_INSTALL_ARGS)" -t $(IMAGE) .
	DOCKER_BUILDKIT=0 $(DOCKER) build --target test-runner --build-arg BASE_IMAGE=$(BASE_IMAGE) \
		--build-arg PIP_INSTALL_ARGS="$(PIP_INSTALL_ARGS)" -t $(TEST_RUNNER_IMAGE) .

# Image smoke tests and manifest checks, then every e2e scenario with each component in its own container.
test-containers: venv
	$(CONTAINER_ENV) TM_REQUIRE_DOCKER=1 $(VENV)/bin/pytest tests/containers
	$(CONTAINER_ENV) TM_E2E_MODE=containers $(VENV)/bin/pytest tests/e2e

# docker-compose.test.yml for each edition; the exit code is the test runner's, and `down` always runs.
test-compose:
	for edition in oss enterprise; do \
		$(COMPOSE_ENV) TM_COMPOSE_EDITION=$$edition $(COMPOSE) -p tm-compose-$$edition -f docker-compose.test.yml \
			up --abort-on-container-exit --exit-code-from test-runner; rc=$$?; \
		$(COMPOSE_ENV) $(COMPOSE) -p tm-compose-$$edition -f docker-compose.test.yml down --volumes --timeout 20; \
		[ $$rc -eq 0 ] || exit $$rc; \
	done
