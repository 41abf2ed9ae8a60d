"""The kind backend: a local kind cluster driven by ``kind`` and ``kubectl`` from PATH.

One module per concern (kind's provider packages): :mod:`.cli` (running the
tools, errors with argv and output), :mod:`.api` (REST through the kubernetes
client), :mod:`.real` (the ``Cluster`` protocol over any API server, shared
with ``harness/cluster/kubeconfig.py``), :mod:`.cluster` (create/reuse/delete,
nodes Ready, the fake GPU worker), :mod:`.images`, :mod:`.addons`,
:mod:`.diagnostics` and :mod:`.backend` (``KindCluster``).

Nothing here downloads a binary. pytest-kind(-ng) is not used; ``backend.py``
says why. The shared real-cluster code (api, real, diagnostics, cli) lives in
this package only because of file ownership; it could move to a
``harness/cluster/_real/`` package that both backends import.
"""
from .backend import KindCluster
from .cli import BadRequest
from .cluster import CONFIG, DEFAULT_NAME, KindLifecycle
from .diagnostics import Stuck

__all__ = ["KindCluster", "KindLifecycle", "BadRequest", "Stuck", "CONFIG", "DEFAULT_NAME"]
