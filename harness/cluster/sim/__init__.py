"""The offline Kubernetes simulator backend: a test double with documented fidelity.

``SimCluster`` implements :class:`harness.cluster.base.Cluster`; see
``FIDELITY.md`` in this package for every known difference from upstream.
"""
from .clock import FakeClock, RealClock
from .cluster import SimCluster
from .nodes import NodeSpec, kind_like
from .runtime import ContainerSpec, FakeApp, FakeRuntime, Runtime, RuntimeStatus

__all__ = ["SimCluster", "FakeClock", "RealClock", "FakeRuntime", "FakeApp", "Runtime", "RuntimeStatus",
           "ContainerSpec", "NodeSpec", "kind_like"]
