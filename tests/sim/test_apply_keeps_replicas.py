"""Apply and ``spec.replicas``: the one place the sim's apply follows kubectl's three-way merge.

A manifest that omits ``spec.replicas`` (an HPA, or ``kubectl scale``, owns the count) must
not reset the live count to the API default of 1 when it is applied again: neither the last
applied configuration nor the new one set the field, so the merge leaves it. A manifest that
does set it still wins. (Lab 05's blue/green switch re-applies both colours' Deployments.)
"""
from __future__ import annotations

import copy

from .helpers import deployment


def _without_replicas(dep: dict) -> dict:
    d = copy.deepcopy(dep)
    d["spec"].pop("replicas", None)
    return d


def test_reapplying_without_replicas_keeps_the_live_count(sim):
    dep = _without_replicas(deployment("web", 1))
    sim.apply([dep])
    assert sim.get("Deployment", "web")["spec"]["replicas"] == 1          # the API default on create
    sim.patch("Deployment", "web", {"spec": {"replicas": 4}})                # what an HPA or kubectl scale does
    changed = copy.deepcopy(dep)
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = "api"        # an upgrade of the template
    changed["spec"]["selector"] = dep["spec"]["selector"]
    sim.apply([changed])
    live = sim.get("Deployment", "web")
    assert live["spec"]["replicas"] == 4
    assert live["spec"]["template"]["metadata"]["labels"]["tier"] == "api"


def test_a_manifest_that_sets_replicas_still_wins(sim):
    sim.apply([deployment("web", 2)])
    sim.patch("Deployment", "web", {"spec": {"replicas": 5}})
    sim.apply([deployment("web", 3)])
    assert sim.get("Deployment", "web")["spec"]["replicas"] == 3
