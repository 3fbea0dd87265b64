# The two commands of the README:
#   make synth   set everything up (.venv, npm packages) and synthesize the reference app
#   make test    set everything up the same way and run the whole suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The pinned CDK CLI and Node 22 come from package.json (npm's latest aws-cdk, 3.x, cannot read
# aws-cdk-lib 2.275's cloud assembly; the machine's Node 20 is end of life). jsii uses JSII_NODE.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export JSII_NODE := $(CURDIR)/node_modules/.bin/node
export CDK_DISABLE_CLI_TELEMETRY := true
# OS tools the runtime tests use: shellcheck (lint), systemd-analyze (unit verification),
# bwrap and curl (sandboxes: unit verification, the boot check), nginx (the proof's stand-in ALB),
# logrotate (the boot check rotates Gunicorn's logs with the config the instances receive).
SYSTEM_TOOLS := shellcheck:shellcheck systemd-analyze:systemd bwrap:bubblewrap curl:curl nginx:nginx logrotate:logrotate

.PHONY: setup synth test lint bench render boot-check proof clean system-tools

setup: $(VENV)/.installed node_modules/.installed system-tools

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Installs missing tools with apt-get where there is one (CI, Debian/Ubuntu); elsewhere says what
# is missing and carries on (the tests that need a missing tool fail and name it).
system-tools:
	@missing=""; for pair in $(SYSTEM_TOOLS); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing OS packages:$$missing (install them for the runtime tests)"; fi; \
	fi

synth: setup
	npx cdk synth --no-notices --quiet
	@echo "synthesized to cdk.out/ (GunicornAlbReference.template.json)"

test: setup
	$(PY) -m pytest

# Lint: ruff (also run by the test suite) and mypy --strict (about a minute: aws-cdk-lib is large).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) tools/bench/bench.py

# Boots the reference stack's user data as root in a bubblewrap sandbox (tools/bootcheck/):
# the way to try a change to the boot script before deploying it.
boot-check: setup
	$(PY) tools/bootcheck/bootcheck.py

# Gunicorn's default keep-alive against the generated one, behind nginx standing in for the ALB
# (about 2 minutes), then the transitions (reload, scale-in, recycling, a raised idle timeout with
# and without the coupling agent; about 1.5 minutes). `make test` runs the short versions.
proof: setup
	$(PY) tools/proof/proof.py
	$(PY) tools/proof/transitions.py

render: setup
	$(PY) -m gunicorn_alb render --out build/instance-files

clean:
	rm -rf cdk.out build .pytest_cache
