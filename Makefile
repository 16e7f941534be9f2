# The two commands of the README. Both set up what they need first (scripts/setup.sh).
.PHONY: demo test setup lint bench

setup:
	./scripts/setup.sh

# make demo PORT=8781 DATA=var/demo2: a second demo beside the first (its own port, state and readers).
demo: setup
	.venv/bin/hallctl demo $(if $(PORT),--port $(PORT)) $(if $(DATA),--data $(DATA))

test: setup
	.venv/bin/ruff check hallctl drivers kiosk_ui tests bench
	.venv/bin/ruff format --check hallctl drivers kiosk_ui tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports
	if systemd-analyze --help 2>/dev/null | grep -q -- --offline; then systemd-analyze security --offline=true --threshold=20 --no-pager systemd/hallctl.service >/dev/null || { echo "systemd/hallctl.service: exposure above 2.0"; exit 1; }; fi
	.venv/bin/pytest

bench: setup
	.venv/bin/python bench/run_all.py
