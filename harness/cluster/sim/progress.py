"""Deployment status and conditions (k/k ``deployment/progress.go`` and ``sync.go`` calculateStatus).

Why separate: this is the part graders read most (``Available``,
``Progressing`` with its reasons and messages, ``ReplicaFailure``, the
replica counters), and it is independent of how ReplicaSets are scaled.
Zero-valued counters are dropped, as the API's ``omitempty`` JSON does, so a
check must read ``status.get("availableReplicas", 0)`` on sim as on kind.
"""
from __future__ import annotations

import copy
from typing import Any

from harness.cluster.base import Obj

from . import rollout as ru
from .clock import parse_rfc3339

_OMITEMPTY = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas",
              "observedGeneration", "terminatingReplicas", "collisionCount")


def omit_empty(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if not (k in _OMITEMPTY and v == 0)}


class ProgressMixin:
    """Needs ``self.clock``, ``self.timers``, ``self._refresh`` and ``self._write_status``."""

    def _calculate_status(self, all_rss: list[Obj | None], new: Obj | None, d: Obj) -> dict[str, Any]:
        rss = [r for r in all_rss if r]
        available = ru.status_count(rss, "availableReplicas")
        status: dict[str, Any] = {
            "observedGeneration": d["metadata"]["generation"],
            "replicas": ru.status_count(rss, "replicas"),
            "updatedReplicas": ru.status_count([new], "replicas"),
            "readyReplicas": ru.status_count(rss, "readyReplicas"),
            "availableReplicas": available,
            "unavailableReplicas": max(0, ru.spec_replicas(rss) - available),
        }
        if (d.get("status") or {}).get("collisionCount"):
            status["collisionCount"] = d["status"]["collisionCount"]
        status["conditions"] = copy.deepcopy((d.get("status") or {}).get("conditions") or [])
        now = self.clock.now()
        if available >= d["spec"]["replicas"] - ru.max_unavailable(d):
            ru.set_condition(status, ru.new_condition("Available", "True", ru.MIN_AVAILABLE,
                                                      "Deployment has minimum availability.", now))
        else:
            ru.set_condition(status, ru.new_condition("Available", "False", ru.MIN_UNAVAILABLE,
                                                      "Deployment does not have minimum availability.", now))
        return omit_empty(status)

    def _sync_rollout_status(self, all_rss: list[Obj | None], new: Obj | None, d: Obj) -> None:
        """``syncRolloutStatus``: Progressing / Available / ReplicaFailure conditions."""
        now = self.clock.now()
        new = self._refresh([new])[0] if new else None
        status = self._calculate_status(all_rss, new, d)
        deadline = d["spec"].get("progressDeadlineSeconds")
        if deadline is None:
            ru.remove_condition(status, "Progressing")
        cur = ru.get_condition(d.get("status") or {}, "Progressing")
        complete_before = status.get("replicas", 0) == status.get("updatedReplicas", 0) and cur is not None \
            and cur["reason"] == ru.NEW_RS_AVAILABLE
        name = f'"{new["metadata"]["name"]}"' if new else None
        if deadline is not None and not complete_before:
            if ru.deployment_complete(d, status):
                msg = f"ReplicaSet {name} has successfully progressed." if new else \
                    f'Deployment "{d["metadata"]["name"]}" has successfully progressed.'
                ru.set_condition(status, ru.new_condition("Progressing", "True", ru.NEW_RS_AVAILABLE, msg, now))
            elif ru.deployment_progressing(d, status):
                msg = f"ReplicaSet {name} is progressing." if new else \
                    f'Deployment "{d["metadata"]["name"]}" is progressing.'
                cond = ru.new_condition("Progressing", "True", ru.RS_UPDATED, msg, now)
                if cur is not None:
                    if cur["status"] == "True":
                        cond["lastTransitionTime"] = cur["lastTransitionTime"]
                    ru.remove_condition(status, "Progressing")
                status.setdefault("conditions", []).append(cond)
            elif ru.deployment_timed_out(d, status, now):
                msg = f"ReplicaSet {name} has timed out progressing." if new else \
                    f'Deployment "{d["metadata"]["name"]}" has timed out progressing.'
                ru.set_condition(status, ru.new_condition("Progressing", "False", ru.TIMED_OUT, msg, now))
        failure = next((c for c in ((new or {}).get("status") or {}).get("conditions") or []
                        if c["type"] == "ReplicaFailure"), None)
        if failure is None:
            failure = next((c for rs in all_rss if rs for c in (rs.get("status") or {}).get("conditions") or []
                            if c["type"] == "ReplicaFailure"), None)
        if failure is not None:
            ru.set_condition(status, {"type": "ReplicaFailure", "status": failure["status"],
                                      "lastUpdateTime": failure.get("lastTransitionTime"),
                                      "lastTransitionTime": failure.get("lastTransitionTime"),
                                      "reason": failure["reason"], "message": failure["message"]})
        else:
            ru.remove_condition(status, "ReplicaFailure")
        cond = ru.get_condition(status, "Progressing")
        if deadline is not None and cond is not None and cond["reason"] not in (ru.NEW_RS_AVAILABLE, ru.TIMED_OUT):
            self.timers.at(parse_rfc3339(cond["lastUpdateTime"]) + deadline + 0.001)
        if status != d.get("status"):
            d["status"] = status
            self._write_status(d)
