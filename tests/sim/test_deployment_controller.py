"""The Deployment and ReplicaSet controllers end to end, on the fake clock."""
from __future__ import annotations

import pytest

from harness.cluster.base import Invalid, NotFound
from harness.cluster.sim import FakeApp
from harness.cluster.sim import rollout as ru

from .helpers import deployment, elapsed, with_image

PROBE = {"httpGet": {"path": "/", "port": 8000}, "initialDelaySeconds": 2, "periodSeconds": 1}


def active(sim, app="web"):
    return [p for p in sim.list("Pod", label_selector=f"app={app}") if not p["metadata"].get("deletionTimestamp")]


def ready_count(pods):
    return sum(1 for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                      for c in p["status"].get("conditions") or []))


def new_rs(sim, name="web"):
    d = sim.get("Deployment", name)
    rev = d["metadata"]["annotations"][ru.REVISION]
    return next(rs for rs in sim.list("ReplicaSet") if rs["metadata"]["annotations"][ru.REVISION] == rev)


def roll_out(sim, d, limit=300):
    for _ in range(limit):
        st = sim.get("Deployment", d["metadata"]["name"])["status"]
        if ru.deployment_complete(sim.get("Deployment", d["metadata"]["name"]), st):
            return
        sim.step(1)
    raise AssertionError(f"rollout did not complete: {st}")


@pytest.mark.parametrize("replicas,surge,unavail", [
    (10, "25%", "25%"), (3, 1, 0), (4, 1, 1), (4, 0, "100%"), (5, "50%", 0), (1, "25%", "25%"),
])
def test_rolling_update_respects_surge_and_unavailable(sim, replicas, surge, unavail):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail}}
    d = deployment(replicas=replicas, probe=PROBE, strategy=strategy)
    sim.apply([d])
    roll_out(sim, d)
    max_surge, max_unavail = ru.resolve_fenceposts(surge, unavail, replicas)
    max_unavail = min(max_unavail, replicas)
    sim.apply([with_image(d, "app:v2")])
    seen_new_ready = []
    for _ in range(200):
        sim.step(1)
        pods = active(sim)
        rss = sim.list("ReplicaSet")
        assert sum(rs["spec"]["replicas"] for rs in rss) <= replicas + max_surge
        assert len(pods) <= replicas + max_surge
        assert ready_count(pods) >= replicas - max_unavail, f"t={elapsed(sim)} ready={ready_count(pods)}"
        seen_new_ready.append(ready_count([p for p in pods if p["spec"]["containers"][0]["image"] == "app:v2"]))
        dep = sim.get("Deployment", "web")
        if ru.deployment_complete(dep, dep["status"]) and len(sim.list("Pod")) == replicas:
            break
    else:
        raise AssertionError("rollout did not finish")
    assert seen_new_ready == sorted(seen_new_ready)   # new pods only ever accumulate
    assert all(p["spec"]["containers"][0]["image"] == "app:v2" for p in sim.list("Pod"))
    dep = sim.get("Deployment", "web")
    assert dep["metadata"]["annotations"][ru.REVISION] == "2"
    prog = ru.get_condition(dep["status"], "Progressing")
    assert prog["reason"] == "NewReplicaSetAvailable"
    assert prog["message"] == f'ReplicaSet "{new_rs(sim)["metadata"]["name"]}" has successfully progressed.'


def test_first_sync_of_ten_replica_rollout_matches_upstream_trace(sim):
    d = deployment(replicas=10, probe=PROBE)
    sim.apply([d])
    roll_out(sim, d)
    sim.apply([with_image(d, "app:v2")])
    sim.step(0)
    new_name = new_rs(sim)["metadata"]["name"]
    old_name = next(rs["metadata"]["name"] for rs in sim.list("ReplicaSet") if rs["metadata"]["name"] != new_name)
    msgs = [e["message"] for e in sim.events(involved_kind="Deployment")][1:]   # [0]: the first rollout
    # new RS created at 3 (surge), old 10 -> 8 (maxUnavailable 2), then new grows into the freed surge
    assert msgs[:3] == [f"Scaled up replica set {new_name} from 0 to 3",
                        f"Scaled down replica set {old_name} from 10 to 8",
                        f"Scaled up replica set {new_name} from 3 to 5"]
    assert sorted(rs["spec"]["replicas"] for rs in sim.list("ReplicaSet")) == [5, 8]


def test_status_conditions_and_omitempty(sim):
    d = deployment(replicas=2, probe={**PROBE, "initialDelaySeconds": 5})
    sim.apply([d])
    sim.step(0)
    st = sim.get("Deployment", "web")["status"]
    assert "availableReplicas" not in st and st["unavailableReplicas"] == 2   # zero fields are omitted
    av = ru.get_condition(st, "Available")
    assert (av["status"], av["reason"], av["message"]) == ("False", "MinimumReplicasUnavailable",
                                                           "Deployment does not have minimum availability.")
    sim.step(5)
    st = sim.get("Deployment", "web")["status"]
    assert st["availableReplicas"] == st["readyReplicas"] == st["updatedReplicas"] == 2
    av = ru.get_condition(st, "Available")
    assert (av["status"], av["reason"], av["message"]) == ("True", "MinimumReplicasAvailable",
                                                           "Deployment has minimum availability.")
    assert st["observedGeneration"] == 1


def test_min_ready_seconds_delays_availability(sim):
    d = deployment(replicas=1, probe={**PROBE, "initialDelaySeconds": 5}, minReadySeconds=10)
    sim.apply([d])
    sim.step(5)
    st = sim.get("Deployment", "web")["status"]
    assert st.get("readyReplicas") == 1 and "availableReplicas" not in st
    sim.step(10)   # t=15: ready for exactly 10 s, not yet *more* than minReadySeconds
    assert "availableReplicas" not in sim.get("Deployment", "web")["status"]
    sim.step(0.01)
    assert sim.get("Deployment", "web")["status"]["availableReplicas"] == 1


def test_progress_deadline_exceeded(sim):
    sim.runtime.set_app("app:broken", FakeApp(http={"/": 503}))
    d = deployment(replicas=1, image="app:broken", probe=PROBE, progressDeadlineSeconds=30)
    sim.apply([d])
    sim.step(30)
    prog = ru.get_condition(sim.get("Deployment", "web")["status"], "Progressing")
    assert prog["status"] == "True"
    sim.step(1.5)
    prog = ru.get_condition(sim.get("Deployment", "web")["status"], "Progressing")
    rs = new_rs(sim)["metadata"]["name"]
    assert (prog["status"], prog["reason"], prog["message"]) == (
        "False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs}" has timed out progressing.')


def test_recreate_kills_old_pods_before_starting_new(sim):
    sim.runtime.set_app("app:v1", FakeApp(term_delay=3))
    d = deployment(replicas=2, probe=PROBE, strategy={"type": "Recreate"})
    sim.apply([d])
    roll_out(sim, d)
    sim.apply([with_image(d, "app:v2")])
    sim.step(0)
    pods = sim.list("Pod")
    assert all(p["metadata"].get("deletionTimestamp") for p in pods) and len(pods) == 2
    sim.step(2)
    assert not any(p["spec"]["containers"][0]["image"] == "app:v2" for p in sim.list("Pod"))
    sim.step(2)
    pods = sim.list("Pod")
    assert len(pods) == 2 and all(p["spec"]["containers"][0]["image"] == "app:v2" for p in pods)


def test_scale_and_revision_history_limit(sim):
    d = deployment(replicas=2, probe=PROBE, revisionHistoryLimit=1)
    sim.apply([d])
    roll_out(sim, d)
    for tag in ("v2", "v3"):
        sim.runtime.set_app(f"app:{tag}", FakeApp())
        d = with_image(d, f"app:{tag}")
        sim.apply([d])
        roll_out(sim, d)
        sim.step(5)
    assert len(sim.list("ReplicaSet")) == 2          # the new one + 1 of history
    d["spec"]["replicas"] = 5
    sim.apply([d])
    sim.step(5)
    assert len(active(sim)) == 5
    assert any(e["message"].endswith("from 2 to 5") for e in sim.events(involved_kind="Deployment"))


def test_rollout_undo_reuses_old_replica_set_with_new_revision(sim):
    d = deployment(replicas=2, probe=PROBE)
    sim.apply([d])
    roll_out(sim, d)
    first = new_rs(sim)["metadata"]["name"]
    sim.apply([with_image(d, "app:v2")])
    roll_out(sim, d)
    sim.step(3)
    sim.rollout_undo("web")
    sim.step(0)
    assert new_rs(sim)["metadata"]["name"] == first
    roll_out(sim, d)
    ann = sim.get("ReplicaSet", first)["metadata"]["annotations"]
    assert ann[ru.REVISION] == "3" and ann[ru.REVISION_HISTORY] == "1"
    assert sim.get("Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"] == "app:v1"
    with pytest.raises(NotFound, match="unable to find specified revision 7 in history"):
        sim.rollout_undo("web", to_revision=7)


def test_pods_carry_hash_label_and_owner(sim):
    sim.apply([deployment(replicas=1)])
    sim.step(0)
    rs = sim.list("ReplicaSet")[0]
    p = sim.list("Pod")[0]
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}" and p["metadata"]["labels"]["pod-template-hash"] == h
    assert p["metadata"]["name"].startswith(f"web-{h}-") and len(p["metadata"]["name"]) == len(f"web-{h}-") + 5
    assert p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    assert rs["metadata"]["annotations"][ru.DESIRED_REPLICAS] == "1"
    assert rs["metadata"]["annotations"][ru.MAX_REPLICAS] == "2"


def test_scale_down_deletes_not_ready_pods_first(sim):
    calls = {"n": 0}

    def app_for(spec):
        calls["n"] += 1
        return FakeApp(http={"/": 200 if calls["n"] <= 2 else 503})
    sim.runtime.app_for = app_for
    d = deployment(replicas=3, probe=PROBE)
    sim.apply([d])
    sim.step(5)
    unready = [p["metadata"]["name"] for p in sim.list("Pod") if not ready_count([p])]
    assert len(unready) == 1
    d["spec"]["replicas"] = 2
    sim.apply([d])
    sim.step(0)
    left = [p["metadata"]["name"] for p in sim.list("Pod")]
    assert len(left) == 2 and unready[0] not in left
    assert f"Deleted pod: {unready[0]}" in [e["message"] for e in sim.events(involved_kind="ReplicaSet")]


def test_deleting_a_deployment_collects_its_replica_sets_and_pods(sim):
    sim.apply([deployment(replicas=2)])
    sim.step(1)
    sim.delete("Deployment", "web")
    sim.step(5)
    assert sim.list("ReplicaSet") == [] and sim.list("Pod") == []


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["spec"]["template"]["metadata"].update(labels={"app": "other"}),
     'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
     'map[string]string{"app":"other"}: `selector` does not match template `labels`'),
    (lambda d: d["spec"].update(strategy={"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
     'Deployment.apps "web" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: '
     "may not be 0 when `maxSurge` is 0"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
        resources={"limits": {"nvidia.com/gpu": "0.5"}}),
     "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]: Invalid value: 0.5: must be an integer"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
        resources={"limits": {"nvidia.com/gpu": 1}, "requests": {"nvidia.com/gpu": 2}}),
     "spec.template.spec.containers[0].resources.requests: Invalid value: 2: "
     "must be equal to nvidia.com/gpu limit of 1"),
    (lambda d: d["spec"].update(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
        livenessProbe={"httpGet": {"port": 8000}, "tcpSocket": {"port": 8000}}),
     "spec.template.spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
        livenessProbe={"httpGet": {"port": 8000}, "successThreshold": 2}),
     "spec.template.spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"),
])
def test_validation_messages(sim, mutate, message):
    d = deployment()
    mutate(d)
    with pytest.raises(Invalid) as err:
        sim.apply([d])
    assert message in err.value.message
    assert err.value.code == 422
