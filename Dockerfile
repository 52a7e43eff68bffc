# teleport-mattermost: the sidecar, plus the fake Teleport Auth / tbot emulator / fake Mattermost used by the
# container test suite (they ship in the same Python package, so one image runs every component).
#
#   docker build -t teleport-mattermost .                         # users: public python:3.11-slim base, PyPI
#   docker run --rm teleport-mattermost version
#   docker run --rm teleport-mattermost configure > teleport-mattermost.toml
#   docker run --read-only --tmpfs /tmp -v "$PWD/teleport-mattermost.toml:/etc/teleport-mattermost.toml:ro" \
#       -v tbot-out:/var/lib/teleport-mattermost/identity:ro teleport-mattermost    # CMD is `start`
#
# CI builds without any registry or network: BASE_IMAGE is a local debootstrap image with python3 and
# python3-venv, and PIP_INSTALL_ARGS points pip at wheels built on the host (tools/ci_containers.sh).
# Both stages must use the same base: the virtualenv links to the base's python3.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_INSTALL_ARGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY . /src
# The wheelhouse is only used when PIP_INSTALL_ARGS names it; it is never copied to the runtime stage.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install ${PIP_INSTALL_ARGS} /src \
 && /opt/venv/bin/teleport-mattermost version

# The compose test runner (docker-compose.test.yml): the installed package plus pytest and the tests.
FROM build AS test-runner
ARG PIP_INSTALL_ARGS=""
RUN /opt/venv/bin/pip install ${PIP_INSTALL_ARGS} "pytest>=8" "pytest-asyncio>=1.0" "pytest-timeout>=2.3"
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /src
USER 10001:10001
ENTRYPOINT ["python3", "-m", "pytest", "-p", "no:cacheprovider"]
CMD ["tests/e2e"]

# pip and setuptools leave the venv: the runtime stage installs nothing.
FROM build AS venv
RUN /opt/venv/bin/pip uninstall --yes pip setuptools

FROM ${BASE_IMAGE} AS runtime
ARG APP_UID=10001
# No home directory and no login shell; numeric USER so Kubernetes can verify runAsNonRoot.
# The directories below are where volumes are mounted; a named Docker volume mounted on them is
# initialised with this ownership, so the non-root user can write there.
RUN echo "teleport-mattermost:x:${APP_UID}:${APP_UID}:teleport-mattermost:/nonexistent:/usr/sbin/nologin" >> /etc/passwd \
 && echo "teleport-mattermost:x:${APP_UID}:" >> /etc/group \
 && mkdir -p /var/lib/teleport-mattermost/identity /var/lib/teleport-mattermost/logs /var/lib/fake-teleport \
 && chown -R ${APP_UID}:${APP_UID} /var/lib/teleport-mattermost /var/lib/fake-teleport
COPY --from=venv /opt/venv /opt/venv
# Bytecode was compiled at install time; nothing is written to the (read-only) root filesystem at run time.
# The sidecar needs a writable /tmp (the TLS-routing bridge keeps the identity's key there): mount a tmpfs.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER ${APP_UID}:${APP_UID}
WORKDIR /var/lib/teleport-mattermost
# /livez, /readyz and /metrics, served when the config (default /etc/teleport-mattermost.toml) sets
# `[health] listen_addr = "0.0.0.0:8080"`, as deploy/kubernetes/configmap.yaml does. No HEALTHCHECK: the
# listener is off unless configured, and orchestrators probe it themselves.
EXPOSE 8080
ENTRYPOINT ["teleport-mattermost"]
CMD ["start"]
