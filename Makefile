# Two commands do everything on a fresh Debian machine: `make run` and `make test`.
.PHONY: setup run test lint typecheck unit bench conformance clean

PY := .venv/bin/python

setup:
	@bash scripts/setup.sh

run: setup
	@$(PY) -m virtstack run

lint: setup
	@.venv/bin/ruff check src tests $(wildcard bench)

typecheck: setup
	@.venv/bin/mypy

unit: setup
	@$(PY) -m pytest -q

test: lint typecheck unit

bench: setup
	@$(PY) -m bench

conformance: setup
	@$(PY) -m virtstack.testing.conformance qemu-argv ../shared/libvirt/samples/qemu-argv | tail -n 8
	@$(PY) -m virtstack.testing.conformance domain ../shared/libvirt/samples/domain-xml2xml | tail -n 8

clean:
	rm -rf .venv build *.egg-info
