# syntax=docker/dockerfile:1
#
# Gradient-stability service image. CPU build of torch by default; CUDA build on request:
#   docker build -t gradient-stability:latest .
#   docker build --build-arg TORCH_VARIANT=cu126 -t gradient-stability:latest-cu126 .
# TORCH_VARIANT names a PyTorch wheel index (https://download.pytorch.org/whl/<variant>):
# cpu (default), cu126 or cu130 for torch 2.13. Every other dependency is pinned by
# constraints.txt, the same file `make install` and CI install with.
# tests/deploy/ lints this file, checks the torch pin against constraints.txt and runs the
# CMD and HEALTHCHECK below against a checkout; keep the runtime layout under /app equal to
# the repository's (gunicorn.conf.py, deploy/healthcheck.py) so those tests stay exact.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# Must equal constraints.txt's torch pin (a test checks it).
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src
COPY constraints.txt ./

# torch alone first, from the PyTorch index: the local tag (+cpu, +cu126) selects the build
# and still satisfies constraints.txt's torch==2.13.0, so the next step keeps it.
RUN pip install --no-cache-dir -c constraints.txt --extra-index-url "${TORCH_INDEX_URL}" \
        "torch==${TORCH_VERSION}+${TORCH_VARIANT}"

# The project (a wheel, not editable) and the rest of its pinned dependencies, from PyPI.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY service ./service
RUN pip install --no-cache-dir -c constraints.txt . \
    && pip check

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG TORCH_VARIANT=cpu
LABEL org.opencontainers.image.title="gradient-stability" \
      org.opencontainers.image.description="REST service that diagnoses exploding and vanishing gradients of an MLP spec" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT" \
      io.gradstab.torch-variant="${TORCH_VARIANT}"

# HOST/PORT: gunicorn.conf.py binds to them. PROMETHEUS_MULTIPROC_DIR: per-worker metric
# files, on /tmp (writable, and a tmpfs under docker-compose's read-only root).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/gradstab-metrics

RUN groupadd --system --gid 10001 gradstab \
    && useradd --system --uid 10001 --gid gradstab --no-log-init \
        --home-dir /home/gradstab --create-home --shell /usr/sbin/nologin gradstab \
    && install -d -o gradstab -g gradstab -m 0700 /tmp/gradstab-metrics

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY gunicorn.conf.py ./
COPY deploy/healthcheck.py ./deploy/

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

EXPOSE 8000

# The slim image has no curl: a stdlib-only script GETs /readyz (exit 0 on 2xx, 1 otherwise).
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]

# gunicorn handles SIGTERM as a graceful shutdown (finishes in-flight requests).
CMD ["gunicorn", "--config", "gunicorn.conf.py", "service.wsgi:app"]
