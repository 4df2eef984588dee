# Two commands set everything up on a machine with only Python 3.11:
#   make test   - create .venv, install the package with its test, sfm and video extras, run the suite
#   make demo   - same set-up, then run the end-to-end demo
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: test demo venv clean

venv: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test,sfm,video]'
	touch $(STAMP)

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(VENV)/bin/python -m pytest -q tests

demo: $(STAMP)
	$(VENV)/bin/python scripts/demo.py --output_dir demo_output

clean:
	rm -rf $(VENV) demo_output *.egg-info
