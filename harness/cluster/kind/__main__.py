"""``python -m harness.cluster.kind up|down|status`` (``make cluster-up``/``cluster-down``).

Exit codes: 0 done, 1 failed, 2 a tool is missing.
"""
from __future__ import annotations

import argparse
import os
import sys

from harness.cluster.base import BackendUnavailable
from harness.errors import CommandError
from harness.waiting import DEFAULT_TIMEOUTS

from .addons import ADDONS
from .backend import KindCluster


class _Print:
    def info(self, msg: str) -> None:
        print(msg, file=sys.stderr)

    def warn(self, msg: str) -> None:
        print("warning: " + msg, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.cluster.kind")
    ap.add_argument("action", choices=("up", "down", "status"))
    ap.add_argument("--name", default=None, help="cluster name (default: $KIND_CLUSTER_NAME or mlops-labs)")
    args = ap.parse_args(argv)
    # `up` prepares the cluster for every lab: all addons (metrics-server; Gateway API + Traefik).
    # HARNESS_TIMEOUT_SCALE stretches every named timeout, as it does for grading (slow CI runners).
    timeouts = DEFAULT_TIMEOUTS.scaled(float(os.environ.get("HARNESS_TIMEOUT_SCALE", "1") or "1"))
    kc = KindCluster(cluster_name=args.name, log=_Print(), addons=tuple(ADDONS), timeouts=timeouts)
    try:
        if args.action == "up":
            kc.ensure_cluster()
            print(f"kind cluster {kc.cluster_name} is ready (context {kc.lifecycle.context}). "
                  "Your ~/.kube/config is left as it was; for kubectl:\n"
                  f"  export KUBECONFIG={kc.lifecycle.kubeconfig}")
        elif args.action == "down":
            if kc.lifecycle.exists():
                kc.lifecycle.delete()
                print(f"kind cluster {kc.cluster_name} deleted")
            else:
                print(f"no kind cluster {kc.cluster_name}")
        else:
            print(f"kind cluster {kc.cluster_name}: {'exists' if kc.lifecycle.exists() else 'absent'}")
    except BackendUnavailable as exc:
        print(f"cannot {args.action}: {exc}", file=sys.stderr)
        return 2
    except (CommandError, RuntimeError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
