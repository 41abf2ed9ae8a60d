"""The sim's Kubernetes REST API on 127.0.0.1, for the real ``kubectl`` and ``kubernetes`` client.

:class:`ApiHttpServer` (``server.py``) serves a :class:`~harness.cluster.sim.cluster.SimCluster`.
Layers: ``resources`` (what is served) -> ``schemas``/``discovery`` (OpenAPI, discovery) ->
``rest``/``patching``/``convert``/``fields`` (verbs over the sim's one write path) ->
``watch``/``tables``/``podlogs`` (streams and printing) -> ``server`` (HTTP). FIDELITY.md,
"The API server", lists what differs from kube-apiserver.
"""
from .server import ApiHttpServer

__all__ = ["ApiHttpServer"]
