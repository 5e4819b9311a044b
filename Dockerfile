# videoqa: the same steps as `make install` (tests/test_deploy.py keeps the two in step).
#
#   docker build -t videoqa:cpu .
#   docker build -t videoqa:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#
# The CUDA torch wheels bring the CUDA runtime and cuDNN as nvidia-* pip packages: the host
# needs only the NVIDIA driver and the NVIDIA Container Toolkit. See docs/DEPLOY.md.
FROM python:3.11-slim-bookworm

# Where torch and torchvision come from: .../whl/cpu (the default) or a CUDA build (.../whl/cu128).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# The pair the Makefile pins (its TORCH := line).
ARG TORCH="torch==2.14.1 torchvision==0.29.1"
# The user the app runs as; 1000 is the first user of most hosts, who can then read a mounted folder.
ARG UID=1000

# faster-whisper's CTranslate2 loads libcublas.so.12 and cuDNN 9 by name: point the loader at the
# copies torch's nvidia-* wheels install. The folders do not exist in the CPU image, which is harmless.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/data/models/huggingface \
    VIDEOQA_CACHE_DIR=/data/models/videoqa \
    VIDEOQA_INDEX_DIR=/data/index \
    VIDEOQA_LIBRARY_DIR=/data/library \
    VIDEOQA_HOST=0.0.0.0 \
    VIDEOQA_PORT=7860 \
    LD_LIBRARY_PATH=/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib:/usr/local/lib/python3.11/site-packages/nvidia/cudnn/lib

# torch and torchvision first, as a matching pair, in their own layer (the largest one).
RUN python -m pip install -q --upgrade pip \
 && python -m pip install -q --index-url "$TORCH_INDEX" $TORCH

WORKDIR /opt/videoqa
COPY pyproject.toml README.md ./
COPY models models
COPY indexer indexer
COPY retriever retriever
COPY app app
# The Makefile's extras without `test`; the torch pins again, so pip keeps the builds installed above.
RUN python -m pip install -q '.[packaged,full,cluster]' $TORCH \
 && python -m pip uninstall -q -y opencv-python \
 && python -m pip install -q --force-reinstall --no-deps "$(python -m pip list --format=freeze | grep '^opencv-python-headless==')"

# A user of its own, owning /data: fresh named volumes mounted there take this ownership.
RUN useradd --create-home --uid "$UID" videoqa \
 && mkdir -p /data/index /data/library /data/models/huggingface /data/models/videoqa \
 && chown -R videoqa:videoqa /data
USER videoqa
WORKDIR /data

EXPOSE 7860
# slim has no curl: ask /healthz with Python. Startup (imports, the page) takes a while.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VIDEOQA_PORT', '7860'), timeout=4)"]
CMD ["videoqa", "serve"]
