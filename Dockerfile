# The article and its API with the bundled models, on CPU.
#
#   docker build -t rnn-connectivity .
#   docker run -p 8000:8000 rnn-connectivity
#   docker run -p 8000:8000 -v "$PWD/my-checkpoints:/checkpoints:ro" -e RNN_CHECKPOINT_DIR=/checkpoints rnn-connectivity
#
# Every install step and the entry command repeat a Makefile step word for word (`make install`,
# `make run`), which CI runs; tests/test_dockerfile.py fails when the two drift apart. CI also builds
# this file as it is and runs the image (`make image-test`, tests/image/checks.py).

# Front-end dependencies (D3), exactly as package-lock.json pins them.
FROM node:20-slim AS frontend
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim AS runtime
# constraints.txt pins torch==2.13.0. On PyPI that version is the CUDA build for Linux (gigabytes
# of NVIDIA libraries); PyTorch's CPU index carries the same version as 2.13.0+cpu, which the pin
# also matches and pip prefers, so the image gets CPU PyTorch. Point this at a mirror if needed.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL} \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 reader
WORKDIR /srv/rnn-connectivity

# An editable install, as in the Makefile: the app finds templates/, static/, node_modules/ and
# models/checkpoints/ beside its own source, so they must stay in this folder.
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY models ./models
COPY training ./training
COPY app ./app
RUN python -m pip install --quiet --upgrade pip
# PyTorch's C++ headers and C++ test programs (about 145 MB) are for compiling extensions and for
# testing PyTorch; the server needs neither, and this image has no compiler. Removed in the install's
# own layer, or they would still take space; `rm` without -f fails the build if PyTorch moves them.
RUN python -m pip install --quiet -c constraints.txt -e . \
    && rm -r /usr/local/lib/python3.11/site-packages/torch/include /usr/local/lib/python3.11/site-packages/torch/test
# The vanilla RNN, minGRU and mLSTM, units from their own packages through the public entry point, as `make install` adds them.
COPY examples/vanilla-rnn ./examples/vanilla-rnn
RUN python -m pip install --quiet -c constraints.txt -e examples/vanilla-rnn
COPY examples/mingru ./examples/mingru
RUN python -m pip install --quiet -c constraints.txt -e examples/mingru
COPY examples/mlstm ./examples/mlstm
RUN python -m pip install --quiet -c constraints.txt -e examples/mlstm
COPY templates ./templates
COPY static ./static
COPY --from=frontend /src/node_modules ./node_modules

# torch.func (connectivity for plug-in units) imports torch._dynamo, which opens a cache folder at import and
# would otherwise make one under a temporary directory: the container may have no writable path at all.
ENV TORCHINDUCTOR_CACHE_DIR=/srv/rnn-connectivity/.torch-cache
RUN mkdir -p /srv/rnn-connectivity/.torch-cache
USER reader
# Listen on every interface inside the container; all other settings keep their defaults
# (see the README's "Self-hosting" section). RNN_CHECKPOINT_DIR overrides the bundled checkpoints.
ENV RNN_HOST=0.0.0.0 \
    RNN_PORT=8000
EXPOSE 8000
# Probed every 10 s, so an orchestrator sees it healthy within about 10 s of the app answering
# (start-up takes 5 to 10 s on 2 cores); failures in the first 60 s do not count.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['RNN_PORT'], timeout=4)"
CMD ["python", "-m", "app"]
