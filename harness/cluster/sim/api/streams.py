"""``pods/x/exec``, ``attach`` and ``portforward``: not served yet (FIDELITY.md, "The API server").

kubectl 1.32 speaks them over WebSocket (``v5.channel.k8s.io``, ``SPDY/3.1+portforward.k8s.io``);
until those are implemented the server answers with a 400 Status that says so.
"""
from __future__ import annotations

from harness.cluster.base import ApiError


class NotServed(ApiError):
    code, reason = 400, "BadRequest"


async def serve(request, sim, ns: str, name: str, sub: str):
    sim.store.get("Pod", ns, name)   # NotFound first, as upstream
    raise NotServed(f"pods/{sub} is not served by the sim's API server yet: use the grader's checks, or "
                    "`docker exec` on the pod's container (see `kubectl get pod -o wide`)")
