# videoqa, CPU image: the same steps as `make install`.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False \
    VIDEOQA_INDEX_DIR=/data/index VIDEOQA_CACHE_DIR=/data/cache VIDEOQA_HOST=0.0.0.0
WORKDIR /opt/videoqa
COPY pyproject.toml README.md ./
COPY models models
COPY indexer indexer
COPY retriever retriever
COPY app app
COPY sample_media sample_media
RUN pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu \
 && pip install '.[packaged,full]' torch==2.14.1 torchvision==0.29.1
EXPOSE 7860
CMD ["videoqa", "serve"]
