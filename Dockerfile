# Herd for CPU: web, CPU workers and beat all run this image (see docker-compose.yml).
# llama-cpp-python has no wheels on PyPI: it is compiled once, in the build stage.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG LLAMA_CPP_PYTHON_VERSION=0.3.36
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*
# GGML_NATIVE=off: the image may run on other CPUs than the one that built it.
ENV CMAKE_ARGS="-DGGML_NATIVE=off"
RUN pip wheel --no-cache-dir --wheel-dir /wheels "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}"

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    HERD_HOME=/data
# libgomp: llama.cpp's OpenMP threads.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY . /app
# Editable, so that templates/ and static/ (beside the packages) are found where settings
# expect them.
RUN pip install -e /app
RUN useradd --create-home --uid 1000 herd && mkdir -p /data && chown herd:herd /data
USER herd
VOLUME ["/data"]
EXPOSE 11434
CMD ["herd", "web"]
