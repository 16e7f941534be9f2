# The two commands of the README. Both set up what they need first (scripts/setup.sh).
.PHONY: demo test setup lint bench

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/hallctl demo

test: setup
	.venv/bin/ruff check hallctl drivers kiosk_ui tests bench
	.venv/bin/ruff format --check hallctl drivers kiosk_ui tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/pytest

bench: setup
	.venv/bin/python bench/issue_call.py
	.venv/bin/python bench/mqtt_latency.py
	.venv/bin/python bench/devices.py
