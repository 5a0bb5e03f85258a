# Two commands for a newcomer: `make run` and `make test`. Everything else is here for them.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MO := credits/translations/en/LC_MESSAGES/messages.mo
export FLASK_APP := wsgi
# `make run PORT=5001` when 5000 is taken (macOS's AirPlay receiver holds it, for one).
PORT ?= 5000

.PHONY: run test lint translations extract-messages clean-db

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3.11 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(MO): $(STAMP) credits/translations/en/LC_MESSAGES/messages.po
	$(BIN)/pybabel compile --statistics -d credits/translations

translations: $(MO)

run: $(STAMP) $(MO)
	$(BIN)/flask db upgrade
	$(BIN)/flask credits seed-demo
	@echo "SMS texts go to: $${SMS_BACKEND:-console} (console: this terminal's log, lines 'SMS to …'; SMS_BACKEND=file:instance/sms.jsonl collects them in a file)"
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

test: $(STAMP) $(MO)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

extract-messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -o credits/translations/messages.pot .
	$(BIN)/pybabel update -i credits/translations/messages.pot -d credits/translations -l en --no-fuzzy-matching

clean-db:
	rm -f instance/credits.sqlite instance/credits.sqlite-*
