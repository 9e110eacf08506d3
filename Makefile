# Sourcebook — quick start: `make demo`, then `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_ENGINE_PORT ?= 8765
MCP_PORT ?= 8001
DEMO_ENGINE_URL := http://127.0.0.1:$(DEMO_ENGINE_PORT)/v1
# Outbound calls reach only public addresses; the demo server allows the scripted demo engine's
# loopback port, and that port only (see config/egress.py).
DEMO_ENGINE_ALLOW := 127.0.0.1:$(DEMO_ENGINE_PORT)

.PHONY: install demo test bench bench-profile lint format messages clean

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
	SOURCEBOOK_DEMO_ENGINE_URL=$(DEMO_ENGINE_URL) $(BIN)/python manage.py loaddemo
	$(BIN)/python manage.py publish westlake-leaf --out $(SITE_DIR) --reason "make demo"
	@echo ""
	@echo "  Site:      http://$(HOST):$(PORT)/   (llms.txt, sitemap.xml, robots.txt, /zh-Hans/)"
	@echo "  Admin:     http://$(HOST):$(PORT)/admin/"
	@echo "  Login:     demo / sourcebook-demo  (brand admin of the demo brand)"
	@echo "  Ask:       http://$(HOST):$(PORT)/ask?site=westlake-leaf&query=gaiwan&streaming=false  (NLWeb)"
	@echo "  MCP:       http://$(HOST):$(MCP_PORT)/mcp  (streamable HTTP; tools search_products, get_entity, ...)"
	@echo "  AI visibility: http://$(HOST):$(PORT)/admin/visibility/  (demo engines: local, scripted,"
	@echo "             on $(DEMO_ENGINE_URL); ask them again: SOURCEBOOK_EGRESS_ALLOW=$(DEMO_ENGINE_ALLOW) .venv/bin/python manage.py visibility_run westlake-leaf)"
	@echo ""
	$(BIN)/python -m visibility.scripted_engine --demo --day 14 --port $(DEMO_ENGINE_PORT) & \
	  engine=$$!; \
	  SOURCEBOOK_EGRESS_ALLOW=$(DEMO_ENGINE_ALLOW) $(BIN)/python manage.py serve_mcp --host $(HOST) --port $(MCP_PORT) & \
	  mcp=$$!; \
	  trap 'kill $$engine $$mcp 2>/dev/null' EXIT INT TERM; \
	  SOURCEBOOK_EGRESS_ALLOW=$(DEMO_ENGINE_ALLOW) SOURCEBOOK_SERVE_SITE=$(SITE_DIR)/current \
	  $(BIN)/python manage.py runserver $(HOST):$(PORT)

# The suite in TEST_WORKERS processes (pytest-xdist; a file's tests stay in one process, where
# its module fixtures live): much of it waits on workers, servers and browsers, not the CPU.
TEST_WORKERS ?= 3
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The benchmark suite (1k / 10k / 100k products; 11–20 minutes on 2 cores): needs Debian's hugo and
# wrk, PostgreSQL and Redis on loopback. Writes docs/benchmarks/results.{json,md} and publish.png.
bench: install
	$(BIN)/python -m tests.benchmarks

# py-spy profile of a full publish of 10,000 products: docs/benchmarks/profile-10000.md.
bench-profile: install
	$(BIN)/python -m tests.benchmarks.profile --size 10000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The kb app's Chinese (Simplified) messages: collect the strings wrapped for translation into
# kb/locale/zh_Hans/LC_MESSAGES/django.po (and djangojs.po, its scripts'), then compile them
# (commit the .po and .mo files: msgfmt is not needed to run the project). Needs GNU gettext (xgettext, msgmerge, msgfmt).
messages: install
	cd kb && ../$(BIN)/python ../manage.py makemessages -l zh_Hans
	cd kb && ../$(BIN)/python ../manage.py makemessages -d djangojs -l zh_Hans
	cd kb && ../$(BIN)/python ../manage.py compilemessages -l zh_Hans

clean:
	rm -rf $(VENV) var .pytest_cache
