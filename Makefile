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
# bwrap and curl (sandboxes: unit verification), nginx (the proof's stand-in ALB),
# systemd-nspawn, nsenter and mmdebstrap (the boot check's container and its root filesystem),
# chromium (the docs site opened headless: tests/docs/test_browser.py).
SYSTEM_TOOLS := shellcheck:shellcheck systemd-analyze:systemd bwrap:bubblewrap curl:curl nginx:nginx \
	systemd-nspawn:systemd-container nsenter:util-linux mmdebstrap:mmdebstrap chromium:chromium

.PHONY: setup synth test docs docs-check lint bench render boot-check boot-time bootcheck-rootfs proof integ integ-snapshot clean system-tools

setup: $(VENV)/.installed node_modules/.installed system-tools

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-docs.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt \
		-r requirements-docs.txt
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

test: setup bootcheck-rootfs
	$(PY) -m pytest

# The docs site (MkDocs, Material, mkdocstrings) built strictly into build/site: a warning, a
# broken link or anchor, or a missing snippet fails it. make test builds it too
# (tests/docs/test_site.py) and runs every snippet.
export NO_MKDOCS_2_WARNING := 1
docs: setup
	$(VENV)/bin/mkdocs build --strict --quiet
	@echo "built the docs site into build/site/ (open build/site/index.html)"

# Opens every page of the built site in headless Chromium (Debian's chromium, offline): no console
# errors, every diagram rendered. make test runs the same check (tests/docs/test_browser.py).
docs-check: docs
	$(PY) -m tools.docs.browser_check build/site

# Lint: ruff (also run by the test suite) and mypy --strict (about a minute: aws-cdk-lib is large).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) tools/bench/bench.py

# Boots the reference stack's user data under a real systemd (systemd-nspawn -b, no network): the
# way to try a change to the boot script before deploying it. tools/bootcheck synthesizes each
# variant and boots it with the machinery of `gunicorn-alb boot-check` (gunicorn_alb.bootcheck),
# which boots a user's own stack. Prints each variant's boot-to-signal seconds, the median of RUNS.
RUNS ?= 3
boot-check: setup bootcheck-rootfs
	$(PY) -m tools.bootcheck --runs $(RUNS)

# What the wheelhouse changes in the boot time: the reference app and the Django example, each
# booted from the wheelhouse (no network) and as before it (pip from PyPI at boot, the host's
# network), one boot at a time; prints the medians side by side.
BOOT_TIME_VARIANTS ?= --variant default --variant example-django
boot-time: setup bootcheck-rootfs
	$(PY) -m tools.bootcheck $(BOOT_TIME_VARIANTS) --before-wheelhouse --runs $(RUNS)

# The boot check's Debian 12 root filesystem (mmdebstrap), built once per machine and cached in
# ~/.cache/gunicorn-alb/bootcheck-rootfs/ by a hash of its recipe (minutes, cold).
bootcheck-rootfs: setup
	$(PY) -m gunicorn_alb.bootcheck.rootfs --if-possible

# Gunicorn's default keep-alive against the generated one, behind nginx standing in for the ALB
# (about 2 minutes), then the transitions (reload, scale-in, recycling, a raised idle timeout with
# and without the coupling agent; about 1.5 minutes). `make test` runs the short versions.
proof: setup
	$(PY) tools/proof/proof.py
	$(PY) tools/proof/transitions.py

# The integration test on AWS (tools/integ.py): deploys the reference stack, checks the health
# path, updates IdleTimeoutSeconds, checks again, destroys. Needs AWS credentials and a
# bootstrapped account/region; without credentials it says so and fails. make test checks its
# snapshot offline; integ-snapshot rewrites the snapshot after a reviewed change.
integ: setup
	$(PY) tools/integ.py

integ-snapshot: setup
	$(PY) -m tests.integ.snapshot --update

render: setup
	$(PY) -m gunicorn_alb render --out build/instance-files

clean:
	rm -rf cdk.out build .pytest_cache
