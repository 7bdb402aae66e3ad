# Developer shortcuts; the README's two commands are all a fresh machine needs.
.PHONY: install test test-slow lint typecheck schema bench-cli

install:
	uv sync --all-packages

test:
	uv run pytest

test-slow:
	uv run pytest -m slow

lint:
	uv run ruff check packages tests benchmarks

typecheck:
	uv run basedpyright

schema:
	uv run router-cli schema --output training_specs/schema.json

bench-cli:
	uv run python benchmarks/cli.py
