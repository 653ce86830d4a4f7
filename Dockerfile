# syntax=docker/dockerfile:1
# The salad-vk image: the project's wheel on a slim Python, run as a non-root user.
#
#   docker build -t salad-vk:0.1.0 .
#
# scripts/check-image repeats this file's steps without a Docker engine (hadolint, the
# wheel built from exactly what the builder copies, installed into a fresh virtual
# environment the way the final stage installs it); keep the two in step.

# The Python version CI tests with.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
WORKDIR /src
# Only what the wheel is built from: a change elsewhere (tests, charts, docs) does not
# invalidate this layer.
COPY pyproject.toml README.md ./
COPY config ./config
COPY nodes ./nodes
COPY supervisor ./supervisor
# The build backend comes from pyproject.toml's [build-system], in pip's isolated build
# environment, which is thrown away with this stage.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheel is bind-mounted from the builder, not copied: no layer of this image keeps
# it. No pip cache is written, and the installers and build tools the base image ships
# are removed once the wheel is in. The dependencies' versions are the ranges
# pyproject.toml declares.
RUN --mount=type=bind,from=builder,source=/dist,target=/dist \
    python -m pip install --no-cache-dir /dist/*.whl \
    && python -m pip uninstall --yes setuptools wheel pip \
    && groupadd --system --gid 65532 salad-vk \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin salad-vk
# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 65532:65532
# /metrics, /healthz and /readyz.
EXPOSE 8080
ENTRYPOINT ["salad-vk"]
CMD ["run"]
