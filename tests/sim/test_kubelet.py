"""Kubelet behaviour on the fake clock: probes, restarts, back-off, images, termination."""
from __future__ import annotations

import pytest

from harness.cluster.base import Invalid
from harness.cluster.sim import FakeApp
from harness.cluster.sim.clock import FAKE_EPOCH, rfc3339

from .helpers import IMAGE, container_status, elapsed, pod


def ready(p) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])


def reasons(sim, name="p"):
    return [(e["reason"], e["message"]) for e in sim.events(involved_name=name)]


def test_readiness_initial_delay_and_period(sim):
    sim.runtime.set_app(IMAGE, FakeApp(ready_after=12))
    sim.apply([pod(readinessProbe={"httpGet": {"path": "/", "port": 8000}, "initialDelaySeconds": 5,
                                   "periodSeconds": 10})])
    sim.step(0)
    p = sim.get("Pod", "p")
    assert p["status"]["phase"] == "Running" and not ready(p)
    assert container_status(p)["state"]["running"]["startedAt"] == rfc3339(FAKE_EPOCH)
    sim.step(14.9)   # probes at 5 (app not up yet: failure) and next at 15
    assert not ready(sim.get("Pod", "p"))
    assert ("Unhealthy", 'Readiness probe failed: Get "http://10.244.1.2:8000/": dial tcp 10.244.1.2:8000: '
                         "connect: connection refused") in reasons(sim)
    sim.step(0.1)
    p = sim.get("Pod", "p")
    assert ready(p) and container_status(p)["ready"]
    cond = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
    assert cond["lastTransitionTime"] == rfc3339(FAKE_EPOCH + 15)


def test_readiness_success_threshold(sim):
    sim.apply([pod(readinessProbe={"tcpSocket": {"port": 8000}, "periodSeconds": 2, "successThreshold": 3})])
    sim.step(3.9)
    assert not ready(sim.get("Pod", "p"))   # successes at 0 and 2
    sim.step(0.1)
    assert ready(sim.get("Pod", "p"))       # third success at 4


def test_liveness_failure_restarts_after_threshold_times_period(sim):
    sim.runtime.set_app(IMAGE, FakeApp(http={"/healthz": 500}))
    sim.apply([pod(livenessProbe={"httpGet": {"path": "/healthz", "port": 8000}, "periodSeconds": 10,
                                  "failureThreshold": 3})])
    sim.step(19.9)   # failures at 0 and 10
    assert container_status(sim.get("Pod", "p"))["restartCount"] == 0
    sim.step(0.1)    # third failure at 20: killed and, first time, restarted at once
    cs = container_status(sim.get("Pod", "p"))
    assert cs["restartCount"] == 1 and "running" in cs["state"]
    assert cs["lastState"]["terminated"]["reason"] == "Completed"
    assert ("Killing", "Container c failed liveness probe, will be restarted") in reasons(sim)
    assert ("Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500") in reasons(sim)
    sim.step(20)     # second instance fails at 20, 30, 40: back-off 10 s
    cs = container_status(sim.get("Pod", "p"))
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" and cs["restartCount"] == 1
    sim.step(10)
    assert container_status(sim.get("Pod", "p"))["restartCount"] == 2


def test_startup_probe_gates_liveness(sim):
    sim.runtime.set_app(IMAGE, FakeApp(ready_after=25))
    probe = {"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 10, "failureThreshold": 3}
    sim.apply([pod(startupProbe={**probe, "failureThreshold": 6}, livenessProbe=probe)])
    sim.step(29)   # startup probes fail at 0, 10, 20 (threshold 6): liveness is not run yet
    cs = container_status(sim.get("Pod", "p"))
    assert cs["restartCount"] == 0 and cs["started"] is False
    sim.step(1)
    assert container_status(sim.get("Pod", "p"))["started"] is True
    sim.step(100)
    assert container_status(sim.get("Pod", "p"))["restartCount"] == 0


def test_startup_probe_failure_kills(sim):
    sim.runtime.set_app(IMAGE, FakeApp(http={"/": 503}))
    sim.apply([pod(startupProbe={"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 5, "failureThreshold": 2})])
    sim.step(5)
    assert ("Killing", "Container c failed startup probe, will be restarted") in reasons(sim)
    assert container_status(sim.get("Pod", "p"))["started"] is False


def test_crash_loop_backoff_doubles_to_five_minutes(sim):
    sim.runtime.set_app(IMAGE, FakeApp(exit_after=1, exit_code=1))
    sim.apply([pod()])
    starts = []
    sim.step(0)
    for _ in range(2000):
        cs = container_status(sim.get("Pod", "p"))
        if "running" in cs["state"] and (not starts or starts[-1][0] != cs["restartCount"]):
            starts.append((cs["restartCount"], elapsed(sim)))
        if len(starts) == 10:
            break
        sim.step(1)
    times = [t for _, t in starts]
    waits = [b - a - 1 for a, b in zip(times, times[1:])]   # from the exit (1 s after start) to the next start
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    sim.step(1.5)
    p = sim.get("Pod", "p")
    cs = container_status(p)
    uid = p["metadata"]["uid"]
    assert cs["state"]["waiting"] == {"reason": "CrashLoopBackOff",
                                      "message": f"back-off 5m0s restarting failed container=c pod=p_lab({uid})"}
    assert cs["lastState"]["terminated"]["reason"] == "Error" and cs["lastState"]["terminated"]["exitCode"] == 1
    assert p["status"]["phase"] == "Running"
    assert ("BackOff", f"Back-off restarting failed container c in pod p_lab({uid})") in reasons(sim)


def test_oom_killed(sim):
    sim.runtime.set_app(IMAGE, FakeApp(oom_after=3))
    sim.apply([pod(resources={"limits": {"memory": "16Mi"}})])
    sim.step(3)
    cs = container_status(sim.get("Pod", "p"))
    assert cs["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert cs["lastState"]["terminated"]["exitCode"] == 137 and cs["restartCount"] == 1
    assert sim.get("Pod", "p")["spec"]["containers"][0]["resources"]["requests"] == {"memory": "16Mi"}


@pytest.mark.parametrize("image,policy", [("app:missing", None), ("python:latest", None), ("python", None),
                                          (IMAGE, "Always")])
def test_image_pull_errors(sim, image, policy):
    sim.runtime.images.update({"python:latest", "python"})
    kw = {"imagePullPolicy": policy} if policy else {}
    sim.apply([pod(image=image, **kw)])
    sim.step(0)
    p = sim.get("Pod", "p")
    assert p["spec"]["containers"][0]["imagePullPolicy"] == (policy or ("IfNotPresent" if ":" in image and
                                                                        "latest" not in image else "Always"))
    assert container_status(p)["state"]["waiting"]["reason"] == "ErrImagePull"
    sim.step(1)
    w = container_status(sim.get("Pod", "p"))["state"]["waiting"]
    assert w == {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
    evs = reasons(sim)
    assert ("Failed", "Error: ErrImagePull") in evs and ("Failed", "Error: ImagePullBackOff") in evs
    assert any(r == "Failed" and m.startswith(f'Failed to pull image "{image}": ') for r, m in evs)
    assert sim.get("Pod", "p")["status"]["phase"] == "Pending"


def test_image_never_pull(sim):
    sim.apply([pod(image="app:missing", imagePullPolicy="Never")])
    sim.step(0)
    assert container_status(sim.get("Pod", "p"))["state"]["waiting"] == {
        "reason": "ErrImageNeverPull",
        "message": 'Container image "app:missing" is not present with pull policy of Never'}


def test_missing_configmap_then_created(sim):
    sim.apply([pod(env=[{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}],
                   envFrom=[{"secretRef": {"name": "s"}}])])
    sim.apply([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"TOKEN": "x"}}])
    sim.step(0)
    w = container_status(sim.get("Pod", "p"))["state"]["waiting"]
    assert w == {"reason": "CreateContainerConfigError", "message": 'configmap "cfg" not found'}
    sim.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"other": "1"}}])
    sim.step(10)
    assert container_status(sim.get("Pod", "p"))["state"]["waiting"]["message"] == \
        "couldn't find key mode in ConfigMap lab/cfg"
    sim.patch("ConfigMap", "cfg", {"data": {"mode": "fast"}})
    sim.step(10)
    assert "running" in container_status(sim.get("Pod", "p"))["state"]
    spec = next(c for c in sim.runtime.containers.values()).spec
    assert spec.env == {"TOKEN": "x", "MODE": "fast"}


def test_graceful_termination_with_prestop_sleep(sim):
    sim.runtime.set_app(IMAGE, FakeApp(term_delay=2))
    sim.apply([pod(lifecycle={"preStop": {"sleep": {"seconds": 5}}})])
    sim.step(1)
    sim.delete("Pod", "p")
    t0 = sim.clock.now()
    p = sim.get("Pod", "p")
    assert p["metadata"]["deletionTimestamp"] == rfc3339(t0 + 30) and p["metadata"]["deletionGracePeriodSeconds"] == 30
    sim.step(6.9)
    c = next(iter(sim.runtime.containers.values()))
    assert c.signals == [(t0 + 5, "SIGTERM")]
    assert sim.list("Pod") and ("Killing", "Stopping container c") in reasons(sim)
    sim.step(0.1)
    assert sim.list("Pod") == []


def test_sigkill_after_grace_period(sim):
    sim.runtime.set_app(IMAGE, FakeApp(term_delay=None))     # ignores SIGTERM, like python as PID 1
    sim.apply([pod(pod_spec={"terminationGracePeriodSeconds": 10})])
    sim.step(1)
    sim.delete("Pod", "p")
    t0 = sim.clock.now()
    sim.step(10)
    c = next(iter(sim.runtime.containers.values()))
    assert c.signals == [(t0, "SIGTERM"), (t0 + 10, "SIGKILL")]
    assert sim.list("Pod") == []


def test_prestop_longer_than_grace_gets_two_more_seconds(sim):
    sim.runtime.set_app(IMAGE, FakeApp(term_delay=None))
    sim.runtime.set_app(IMAGE, FakeApp(term_delay=None, exec=lambda cmd, t: (0, "")))
    sim.apply([pod(pod_spec={"terminationGracePeriodSeconds": 10},
                   lifecycle={"preStop": {"sleep": {"seconds": 9}}})])
    sim.step(1)
    sim.delete("Pod", "p")
    t0 = sim.clock.now()
    sim.step(20)
    c = next(iter(sim.runtime.containers.values()))
    assert c.signals == [(t0 + 9, "SIGTERM"), (t0 + 11, "SIGKILL")]   # remaining 1 s raised to the 2 s minimum


def test_prestop_sleep_validation(sim):
    with pytest.raises(Invalid, match=r"must be non-negative and less than terminationGracePeriodSeconds \(30\)"):
        sim.apply([pod(lifecycle={"preStop": {"sleep": {"seconds": 40}}})])


def test_restart_policy_never_fails_the_pod(sim):
    sim.runtime.set_app(IMAGE, FakeApp(exit_after=2, exit_code=3))
    sim.apply([pod(pod_spec={"restartPolicy": "Never"})])
    sim.step(5)
    p = sim.get("Pod", "p")
    assert p["status"]["phase"] == "Failed"
    assert container_status(p)["state"]["terminated"]["exitCode"] == 3


def test_logs_current_and_previous(sim):
    sim.runtime.set_app(IMAGE, FakeApp(exit_after=1, exit_code=1, logs=["boom"]))
    sim.apply([pod()])
    sim.step(1.5)
    assert sim.logs("p") == "boom\n"
    assert sim.logs("p", previous=True) == "boom\n"
