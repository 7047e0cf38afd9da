# AlertLab's two front-door commands: `make demo` and `make test`.
# Both install what is missing first (Debian packages, the Python venv, npm
# tools), so they work on a fresh Debian machine as root and are fast to re-run.

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
export ALERTLAB_HOME ?= $(CURDIR)/.alertlab
# program:Debian package; a program already on PATH (from any source) is not reinstalled.
PREREQS := mariadbd:mariadb-server mariadb:mariadb-client java:openjdk-17-jre-headless mvn:maven node:nodejs npm:npm chromium:chromium
NPM_PREFIX := $(CURDIR)/node_modules

.PHONY: install system venv npm demo demo-down test clean

install: system venv npm

# Debian packages: only those missing are installed (needs root or sudo).
system:
	@missing=$$(for pp in $(PREREQS); do command -v $${pp%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${pp%%:*} ] || echo $${pp#*:}; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The virtualenv, rebuilt only when requirements.txt or pyproject.toml change.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	@touch $@

# configurable-http-proxy for JupyterHub, from the npm registry.
npm: node_modules/.bin/configurable-http-proxy
node_modules/.bin/configurable-http-proxy: package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

demo: install
	@$(VENV)/bin/alertlab demo

demo-down:
	@$(VENV)/bin/alertlab demo --down

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	-$(VENV)/bin/alertlab services down
	rm -rf $(VENV) node_modules test-artifacts
