"""Scenarios: drive a lab's cluster (apply, load with hey, hang a pod, roll out,
shift canary weights) and return observations. They sit below the checks:
nothing here imports the checks package. When a scenario cannot produce its
observation it raises :class:`harness.errors.ScenarioFailed`, which the grader
records as the failure of the check that asked for it.

* ``common``  - the Deployment and Service of a lab, traffic, slow start, hung pod
* ``hpa``     - an HPA scale-up / scale-down cycle under load
* ``rollout`` - rolling updates under load, a stalled rollout and its undo
* ``canary``  - weighted routing, progressive canary steps and rollback
"""
