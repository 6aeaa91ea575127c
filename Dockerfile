# One image for every service of the project (scorer, api, feedback, retrainer, review).
# Two stages: the build stage compiles the C extensions (cffi) and every wheel; the final
# stage installs only the runtime wheels, so it has no compiler, no dev tools (pytest, ruff,
# Locust...), and runs as an unprivileged user. State (registry, training store, Feast
# repository, API keys) lives in /state, a volume in docker-compose.yml.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip wheel --wheel-dir /wheels -r requirements/runtime.lock
# The product only: loadtest/ (benchmarks, Locust) is not copied, so the wheel leaves it out
# and `fraudctl` in the image has no bench / loadtest commands.
COPY pyproject.toml setup.py README.md ./
COPY streams ./streams
COPY features ./features
COPY models ./models
COPY services ./services
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FRAUD_STATE_DIR=/state
# libgomp1: LightGBM's OpenMP runtime (a shared library, not a compiler)
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels fraud-stream \
    && pip check && rm -rf /wheels
RUN useradd --system --uid 10001 --home-dir /state --shell /usr/sbin/nologin fraud \
    && mkdir -p /state && chown fraud /state
USER 10001
WORKDIR /state
VOLUME ["/state"]
ENTRYPOINT ["fraudctl"]
