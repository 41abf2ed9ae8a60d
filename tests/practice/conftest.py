from __future__ import annotations

import pytest

from harness.cluster.sim import daemon


@pytest.fixture(scope="module")
def sim_api_kubeconfig(tmp_path_factory):
    """The sim cluster that ``make cluster-up BACKEND=sim`` runs (its API, NodePorts and Gateway
    listeners on 127.0.0.1), in this process; yields (context, kubeconfig file)."""
    sim, server, nodeports = daemon.start_cluster()
    try:
        kc = tmp_path_factory.mktemp("practice") / "kubeconfig"
        daemon.write_context(server.url, kc)
        yield daemon.CONTEXT, str(kc)
    finally:
        daemon.stop_cluster(sim, server, nodeports)
