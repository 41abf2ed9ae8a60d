"""The laptop budget: how much of the host one grading may use.

One place for the numbers, so the grader's containers, image builds, the
namespace quota of a grading and the checks' messages agree. Sized for a
2-core, 8 GiB laptop running the grader, the pods, the proxies and ``hey`` at
once; a class grading gives each submission the same namespace budget.
"""
from __future__ import annotations

GiB = 2**30
MiB = 2**20

# One container (Lab 01's containers, image build RUN steps, sim pods).
CONTAINER_MEMORY_BYTES = 1 * GiB
CONTAINER_CPUS = 2.0
CONTAINER_PIDS = 512

# One pod's ceiling: a limit above this cannot run on a laptop.
POD_MAX_MEMORY_BYTES = 2 * GiB
POD_MAX_CPU_MILLI = 2000

# The namespace of one grading (ResourceQuota + LimitRange, applied by the lab
# context before the submission, on every backend). Labs scale to at most 6-8
# pods plus rollout surge; 16 leaves room for both and stops floods.
# CPU is deliberately not in the quota: a quota on requests.cpu/limits.cpu makes
# the API server refuse every pod without a cpu request ("must specify
# requests.cpu"), and a LimitRange cpu default would give them one. Either would
# hide what Lab 03 and the hpa practice teach (an HPA without requests shows
# <unknown>). Pods and memory bound the footprint; CPU is shared by cgroups.
NAMESPACE_QUOTA = {
    "pods": "16",
    "requests.memory": "8Gi",
    "limits.memory": "16Gi",
}
# The LimitRange (type Container): memory defaults for a container that sets none
# (so the memory quota never refuses it) and the per-container ceiling.
CONTAINER_DEFAULT_REQUEST = {"memory": "128Mi"}
CONTAINER_DEFAULT_LIMIT = {"memory": "1Gi"}
CONTAINER_MAX = {"memory": "2Gi"}
QUOTA_NAME = "grading-quota"
LIMITRANGE_NAME = "grading-limits"


def describe() -> str:
    """One line for messages: the budget a learner must fit in."""
    return (f"the laptop budget is at most {POD_MAX_CPU_MILLI // 1000} CPUs and "
            f"{POD_MAX_MEMORY_BYTES // GiB} GiB of memory per container, "
            f"{NAMESPACE_QUOTA['pods']} pods per grading")
