# typedmaps: every target does its own set-up on a fresh Debian 12 machine (as root):
# system packages, bpffs, the .venv with `pip install -e '.[dev,docs]'`, and the BPF objects.
#   make demo    run the main job (load a flow-accounting XDP program, show typed maps)
#   make test    pytest on real kernel maps + mypy --strict + ruff
#   make bench   the benchmark suite (bench/), C vs MapHandle vs TypedMap vs BCC, then event streams
#   make docs    the documentation site, strictly (any warning fails), into build/site
#   make docs-check   open it in headless Chromium: render checks + screenshots (build/docs-check)
#   make dist    sdist + wheel into build/dist (the wheel is built from the sdist)
#   make wheel-check  install that wheel into a fresh venv and smoke-test it there

SHELL      := /bin/bash
# The venv's interpreter: Debian's own python3 when there is one, as on the fresh
# Debian 12 machine the README starts from, even where another python3 (pyenv, a
# self-built one) comes first on PATH. Debian builds it with PGO and LTO: on the
# benchmark machine it runs typedmaps' hot paths about a third faster than a
# --enable-shared build without PGO (docs/performance.md). Choose another with
# `make PYTHON=python3.11 ...`; an existing .venv keeps the interpreter it was made
# with (remove .venv to switch).
PYTHON     ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV       := .venv
PY         := $(VENV)/bin/python
ARCH       := $(shell uname -m)
CLANG      ?= clang
BPF_CFLAGS := -g -O2 -target bpf -Wall -Werror -I/usr/include/$(ARCH)-linux-gnu -Ibpf
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,build/bpf/%.bpf.o,$(BPF_SRCS))
# Debian packages the project needs at run time and build time. python3-bpfcc is
# only for the side-by-side BCC benchmark and its tests; iproute2 (ip, tc) makes
# the network namespaces and veth pairs of the attach tests and the demo.
APT_PKGS   := clang llvm libbpf1 libbpf-dev bpftool python3-bpfcc make strace iproute2
STAMP_SYS  := build/.system-deps
# Only for `make docs-check`: a real browser and its WebDriver.
DOCS_APT_PKGS := chromium chromium-driver
STAMP_DOCS_SYS := build/.docs-system-deps
# The editable install's extras: everything the tests and the docs build import.
VENV_EXTRAS := dev,docs,prometheus
STAMP_VENV := $(VENV)/.installed

.PHONY: all setup system-deps docs-system-deps bpffs tracefs bpf venv test pytest net-cleanup typecheck lint demo bench docs docs-check dist wheel-check clean

all: test

setup: system-deps venv bpf bpffs tracefs

# Install whatever of the packages $(1) is missing (one `apt-get update` only when needed).
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p build && touch $@
endef

system-deps: $(STAMP_SYS)
$(STAMP_SYS): Makefile
	$(call apt_install,$(APT_PKGS))

docs-system-deps: $(STAMP_DOCS_SYS)
$(STAMP_DOCS_SYS): Makefile
	$(call apt_install,$(DOCS_APT_PKGS))

# bpffs must be mounted for pinning; mount it when absent.
bpffs:
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# tracefs gives tracepoint ids (attach_tracepoint); mount it when absent.
tracefs:
	@test -d /sys/kernel/tracing/events || mountpoint -q /sys/kernel/tracing || \
	  mount -t tracefs tracefs /sys/kernel/tracing

venv: $(STAMP_VENV)
$(STAMP_VENV): pyproject.toml Makefile $(STAMP_SYS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(VENV_EXTRAS)]'
	@touch $@

bpf: $(BPF_OBJS)
build/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(STAMP_SYS)
	@mkdir -p build/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The network namespaces, veths, cgroups and pins of a failed or interrupted
# run are removed afterwards (only those whose creating process is gone).
test: setup
	@rc=0; $(MAKE) --no-print-directory pytest || rc=$$?; \
	  $(MAKE) --no-print-directory net-cleanup; \
	  [ $$rc -eq 0 ] && $(MAKE) --no-print-directory typecheck lint

net-cleanup:
	@$(PY) -c 'from tests.attach_support import clean_leftovers as c; [print("removed", n) for n in c()]'
	@$(PY) -m typedmaps.testing cleanup tmv tmd

# Both cores by default (pytest-xdist); PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
pytest:
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

typecheck:
	$(PY) -m mypy --strict src tests tools

lint:
	$(PY) -m ruff check src tests bench tools
	$(PY) -m ruff format --check src tests bench tools

demo: setup
	$(PY) examples/demo.py

bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/lifetime.py
	$(PY) bench/data.py
	$(PY) bench/events.py $(EVENTS_BENCH_ARGS)
	$(PY) bench/cli_dump.py $(CLI_BENCH_ARGS)

# The site: mkdocs.yml sets strict mode (every warning fails) and build/site;
# tools/mkdocs_hooks.py generates the API reference from __all__.
export NO_MKDOCS_2_WARNING := 1
docs: venv
	$(PY) -m mkdocs build --strict --quiet

# Headless Chromium on the built site: navigation, code, search, an API page;
# screenshots in build/docs-check/.
docs-check: docs docs-system-deps
	$(PY) tools/docs_check.py --site build/site --out build/docs-check

# `python -m build` with no target flags builds the sdist, then the wheel from
# that sdist: a wheel that works proves the sdist is complete.
DIST := build/dist
dist: venv
	rm -rf $(DIST)
	$(PY) -m build --outdir $(DIST) .

# A fresh venv with the wheel (not editable) and its extras; the smoke script
# runs isolated (-I) so nothing from the source tree can be imported.
WHEEL_VENV := build/wheel-venv
wheel-check: dist bpffs
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install -q --upgrade pip
	$(WHEEL_VENV)/bin/pip install -q "$$(ls $(DIST)/typedmaps-*.whl)[prometheus]"
	$(WHEEL_VENV)/bin/python -I tools/wheel_smoke.py $(DIST)

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache
