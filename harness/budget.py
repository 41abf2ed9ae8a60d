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

# The namespace of one grading (ResourceQuota). Labs scale to at most 6-8 pods,
# plus surge during rollouts; 16 leaves room for both and stops floods.
NAMESPACE_QUOTA = {
    "pods": "16",
    "requests.cpu": "8",
    "requests.memory": "8Gi",
    "limits.cpu": "16",
    "limits.memory": "16Gi",
}
# The LimitRange: a container that sets no resources gets these defaults
# (it is not refused), and no container may exceed the pod ceiling.
CONTAINER_DEFAULT_REQUEST = {"cpu": "100m", "memory": "128Mi"}
CONTAINER_DEFAULT_LIMIT = {"cpu": "1", "memory": "512Mi"}
CONTAINER_MAX = {"cpu": "2", "memory": "2Gi"}


def describe() -> str:
    """One line for messages: the budget a learner must fit in."""
    return (f"the laptop budget is at most {POD_MAX_CPU_MILLI // 1000} CPUs and "
            f"{POD_MAX_MEMORY_BYTES // GiB} GiB of memory per container, "
            f"{NAMESPACE_QUOTA['pods']} pods per grading")
