# Sourcebook — quick start: `make demo`, then `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

SITE_DIR := var/site/westlake-leaf

demo: install
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py loaddemo
	$(BIN)/python manage.py publish westlake-leaf --out $(SITE_DIR) --reason "make demo"
	@echo ""
	@echo "  Site:      http://$(HOST):$(PORT)/   (llms.txt, sitemap.xml, robots.txt, /zh-Hans/)"
	@echo "  Admin:     http://$(HOST):$(PORT)/admin/"
	@echo "  Login:     demo / sourcebook-demo  (brand admin of the demo brand)"
	@echo ""
	SOURCEBOOK_SERVE_SITE=$(SITE_DIR)/current $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache
