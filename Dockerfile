# Herd for CPU: web, CPU workers and beat all run this image (see docker-compose.yml).
# Debian 12 with Debian's own Python 3.11: a base that exists on any registry mirror, and one
# that debootstrap can make where no registry answers (BASE_IMAGE names another).
# llama-cpp-python has no wheels on PyPI: it is compiled once, in the build stage (minutes).
# Few instructions: with some storage drivers (vfs) every step copies the whole image.

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
# Besides the version, read by pip when given (docker build --build-arg, or compose's
# build.args): another package index (PIP_INDEX_URL), a directory URL of wheels built before,
# llama-cpp-python's among them (PIP_FIND_LINKS), or those wheels alone (PIP_NO_INDEX=1).
# Given none, pip compiles llama-cpp-python here; GGML_NATIVE=off, for the image may run on
# other CPUs than the one that built it.
ARG LLAMA_CPP_PYTHON_VERSION=0.3.36 PIP_INDEX_URL PIP_FIND_LINKS PIP_NO_INDEX
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake git python3 python3-dev python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /venv \
 && CMAKE_ARGS="-DGGML_NATIVE=off" /venv/bin/pip wheel --no-cache-dir --wheel-dir /wheels \
      "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}"

FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HERD_HOME=/data \
    PATH=/venv/bin:$PATH
EXPOSE 11434
CMD ["herd", "web"]
# libgomp: llama.cpp's OpenMP threads. /data is owned by herd, so the volumes compose mounts
# there start out writable by it.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /venv \
 && useradd --create-home --uid 1000 herd \
 && mkdir -p /data && chown herd:herd /data
VOLUME ["/data"]
ARG PIP_INDEX_URL PIP_FIND_LINKS PIP_NO_INDEX
COPY --from=build /wheels /wheels
COPY . /app
# Editable, so that templates/ and static/ (beside the packages) are found where settings
# expect them.
RUN pip install /wheels/*.whl && pip install -e /app && rm -rf /wheels
USER herd
