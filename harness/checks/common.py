"""Helpers shared by the cluster labs' checks: object lookups, pod state, and
the fixed sentences every lab's /predict must label correctly."""
from __future__ import annotations

from kubernetes.utils.quantity import parse_quantity

from .registry import CheckFailed

# Fixed sentences and the label both model versions give them with a margin.
SENTENCES = {
    "I love this, it is wonderful and amazing!": "positive",
    "This is the best day ever, thank you so much": "positive",
    "What a great idea, I am so excited": "positive",
    "This is terrible, I hate it": "negative",
    "Worst experience ever, totally disappointed and angry": "negative",
    "I would never trust this, it is awful": "negative",
    "Self-driving cars will be tested on highways next year": "neutral",
}


def quantity(value) -> float:
    return float(parse_quantity(str(value)))


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def restarts(pod: dict) -> int:
    return sum(cs.get("restartCount", 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])


def pod_state(pod: dict) -> str:
    """``name: Running, ready`` / ``name: Waiting (ImagePullBackOff: ...)``."""
    name = pod["metadata"]["name"]
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not statuses:
        conds = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}
        sched = conds.get("PodScheduled")
        if sched and sched.get("status") == "False":
            return f"{name}: Pending ({sched.get('reason')}: {sched.get('message')})"
        return f"{name}: {(pod.get('status') or {}).get('phase', 'Pending')}"
    parts = []
    for cs in statuses:
        state = cs.get("state") or {}
        if "waiting" in state:
            w = state["waiting"]
            parts.append(f"Waiting ({w.get('reason')}: {(w.get('message') or '')[:160]})")
        elif "terminated" in state:
            parts.append(f"Terminated ({state['terminated'].get('reason')})")
        else:
            parts.append("Running" + (", ready" if cs.get("ready") else ", not ready"))
        if cs.get("restartCount"):
            parts[-1] += f", {cs['restartCount']} restarts"
    return f"{name}: " + "; ".join(parts)


def containers(deployment: dict) -> list[dict]:
    return (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []


def need(value, message: str):
    if not value:
        raise CheckFailed(message)
    return value
