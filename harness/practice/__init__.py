"""Interview practice: break-fix incidents on a live cluster (``make practice``).

Data path, top to bottom:

* :mod:`.catalog` reads the scenario folders (``practice/<id>/scenario.yaml``, the broken
  manifests, ``debrief.md``): scenarios are data, never code;
* :mod:`.target` connects to the current cluster (a running sim cluster, kind, or any
  kubeconfig context) through the kubeconfig backend, and builds the images scenarios run;
* :mod:`.observe` measures: real traffic with ``hey`` through the scenario's entry point,
  pods, HPAs, endpoints, conditions;
* :mod:`.verify` judges: each criterion of a scenario's ``verify`` list, met or unmet, in
  the incident's words (never the answer's);
* :mod:`.session` keeps the running scenario, its timer and the hints used;
* :mod:`.cli` is the front door (``python -m harness.practice``), behind the Makefile.
"""
