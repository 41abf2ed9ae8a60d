"""Weighted routing (Gateway API HTTPRoute, Istio VirtualService) through the sim's real L7 router.

FakeRuntime + fake clock for the control plane; the data plane is real: the router listens on
127.0.0.1 and forwards to tiny local HTTP servers standing in for the pods. Statistical checks use
a 4.5-sigma binomial bound (and the router's RNG is seeded, so they are deterministic anyway).
"""
from __future__ import annotations

import json
import math

import pytest

from harness.cluster.base import Invalid, NotFound
from harness.cluster.sim import FakeClock, SimCluster
from harness.cluster.sim.apiserver import BadRequest
from harness.crds.validate import field_errors, validate_custom

from .routing_helpers import GW, AddrRuntime, Backend, app, gateway, ref, route, send, tally


def within(count: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


@pytest.fixture
def backends():
    bs = {"app:v1": Backend("v1"), "app:v2": Backend("v2")}
    yield bs
    for b in bs.values():
        b.close()


def make(backends, seed: int = 0) -> SimCluster:
    clock = FakeClock()
    sim = SimCluster(runtime=AddrRuntime(clock, backends), clock=clock, propagation_delay=1.0, router_seed=seed)
    sim.start()
    sim.apply(app("v1", "app:v1") + app("v2", "app:v2") + [gateway()])
    return sim


@pytest.fixture
def sim(backends):
    s = make(backends)
    yield s
    s.stop()


def apply_route(sim, *backends_or_rules, rules=None):
    sim.apply([route(rules=rules, backends=list(backends_or_rules) if rules is None else None)])
    sim.step(2)
    return sim.gateway_url("gw")


# ---- weights ---------------------------------------------------------------------------------------
def test_weights_90_10_binomial_bound(sim):
    url = apply_route(sim, ref("v1", 90), ref("v2", 10))
    n = 2000
    t = tally(send(url, n))
    assert t[(200, "v1")] + t[(200, "v2")] == n
    assert within(t[(200, "v2")], n, 0.10), t


def test_weights_are_deterministic_for_a_seed(backends):
    seqs = []
    for _ in range(2):
        s = make(backends, seed=42)
        try:
            url = apply_route(s, ref("v1", 90), ref("v2", 10))
            seqs.append([b for _, b, _ in send(url, 300)])
        finally:
            s.stop()
    assert seqs[0] == seqs[1] and set(seqs[0]) == {"v1", "v2"}


def test_reseed_restarts_the_sequence(sim):
    url = apply_route(sim, ref("v1", 1), ref("v2", 1))
    sim.routing.server.reseed(7)
    a = [b for _, b, _ in send(url, 100)]
    sim.routing.server.reseed(7)
    assert [b for _, b, _ in send(url, 100)] == a


def test_default_weight_is_1(sim):
    url = apply_route(sim, ref("v1"), ref("v2"))
    stored = sim.get("HTTPRoute", "canary")["spec"]["rules"][0]["backendRefs"]
    assert [r["weight"] for r in stored] == [1, 1] and stored[0]["kind"] == "Service" and stored[0]["group"] == ""
    t = tally(send(url, 600))
    assert within(t[(200, "v2")], 600, 0.5), t


def test_weight_0_gets_nothing(sim):
    url = apply_route(sim, ref("v1", 100), ref("v2", 0))
    assert tally(send(url, 200)) == {(200, "v1"): 200}


def test_all_weights_zero_is_500(sim):
    url = apply_route(sim, ref("v1", 0), ref("v2", 0))
    res = send(url, 5)
    assert {s for s, _, _ in res} == {500}
    body = json.loads(res[0][2])
    assert body["status"] == 500 and "weight 0" in body["error"] and body["route"] == "lab/canary/0"


def test_empty_backend_refs_is_500(sim):
    url = apply_route(sim, rules=[{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}])
    res = send(url, 3)
    assert {s for s, _, _ in res} == {500} and json.loads(res[0][2])["error"] == "no backendRefs"


def test_invalid_backend_gets_500_for_its_share(sim):
    url = apply_route(sim, ref("v1", 1), ref("missing", 1))
    n = 800
    t = tally(send(url, n))
    assert set(t) == {(200, "v1"), (500, "missing")}
    assert within(t[(500, "missing")], n, 0.5), t
    parent = sim.get("HTTPRoute", "canary")["status"]["parents"][0]
    conds = {c["type"]: c for c in parent["conditions"]}
    assert conds["Accepted"]["status"] == "True"
    assert conds["ResolvedRefs"]["status"] == "False" and conds["ResolvedRefs"]["reason"] == "BackendNotFound"
    assert 'Service "lab/missing" not found' in conds["ResolvedRefs"]["message"]


def test_wrong_kind_and_wrong_port_are_invalid_backends(sim):
    url = apply_route(sim, ref("v1", 1, port=81))
    assert {s for s, _, _ in send(url, 3)} == {500}
    sim.apply([route(backends=[{"name": "x", "kind": "ConfigMap", "group": ""}])])
    sim.step(2)
    assert {s for s, _, _ in send(url, 3)} == {500}
    cond = sim.get("HTTPRoute", "canary")["status"]["parents"][0]["conditions"][1]
    assert cond["reason"] == "InvalidKind"


def test_service_without_endpoints_is_503_for_its_share(sim):
    sim.apply([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty"},
                "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80, "targetPort": 8000}]}}])
    url = apply_route(sim, ref("v1", 1), ref("empty", 1))
    t = tally(send(url, 400))
    assert set(t) == {(200, "v1"), (503, "empty")} and within(t[(503, "empty")], 400, 0.5), t
    cond = sim.get("HTTPRoute", "canary")["status"]["parents"][0]["conditions"][1]
    assert cond["status"] == "True"    # the reference resolves; it just has no endpoints


def test_no_rule_match_is_404_and_exact_beats_prefix(sim):
    rules = [{"matches": [{"path": {"type": "PathPrefix", "value": "/predict"}}], "backendRefs": [ref("v1")]},
             {"matches": [{"path": {"type": "Exact", "value": "/predict/v2"}}], "backendRefs": [ref("v2")]}]
    url = apply_route(sim, rules=rules)
    assert send(url, 1, "/other")[0][0] == 404
    assert send(url, 1, "/predictx")[0][0] == 404            # prefix matches whole path elements
    assert send(url, 1, "/predict/a?x=1")[0][:2] == (200, "v1")
    assert send(url, 1, "/predict/v2")[0][:2] == (200, "v2")
    assert json.loads(send(url, 1, "/predict", method="POST")[0][2])["path"] == "/predict"


def test_header_match(sim):
    rules = [{"matches": [{"headers": [{"name": "x-canary", "value": "yes"}]}], "backendRefs": [ref("v2")]},
             {"backendRefs": [ref("v1")]}]
    url = apply_route(sim, rules=rules)
    assert send(url, 1, headers={"X-Canary": "yes"})[0][1] == "v2"
    assert send(url, 1)[0][1] == "v1"


def test_weight_patch_takes_effect_after_the_propagation_delay(sim):
    url = apply_route(sim, ref("v1", 100), ref("v2", 0))
    sim.patch("HTTPRoute", "canary", {"spec": {"rules": [{"backendRefs": [ref("v1", 0), ref("v2", 100)]}]}})
    sim.step(0.5)
    assert tally(send(url, 20)) == {(200, "v1"): 20}         # not programmed yet
    sim.step(0.6)
    assert tally(send(url, 20)) == {(200, "v2"): 20}


def test_route_and_gateway_status(sim):
    apply_route(sim, ref("v1", 90), ref("v2", 10))
    r = sim.get("HTTPRoute", "canary")
    p = r["status"]["parents"][0]
    assert p["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}
    assert {c["type"]: (c["status"], c["reason"]) for c in p["conditions"]} == \
        {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    assert p["conditions"][0]["observedGeneration"] == r["metadata"]["generation"]
    g = sim.get("Gateway", "gw")["status"]
    assert {c["type"]: c["status"] for c in g["conditions"]} == {"Accepted": "True", "Programmed": "True"}
    assert g["listeners"][0]["attachedRoutes"] == 1
    rv = sim.get("HTTPRoute", "canary")["metadata"]["resourceVersion"]
    sim.step(5)
    assert sim.get("HTTPRoute", "canary")["metadata"]["resourceVersion"] == rv   # status writes are idempotent


def test_section_name_mismatch_is_not_accepted(sim):
    r = route(backends=[ref("v1")])
    r["spec"]["parentRefs"][0]["sectionName"] = "https"
    sim.apply([r])
    sim.step(2)
    cond = sim.get("HTTPRoute", "canary")["status"]["parents"][0]["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "NoMatchingParent")
    assert send(sim.gateway_url("gw"), 1)[0][0] == 404


def test_gateway_url_errors(sim):
    with pytest.raises(NotFound):
        sim.gateway_url("nope")
    sim.apply([gateway("tcp", [{"name": "t", "port": 9000, "protocol": "TCP"}])])
    sim.step(1)
    with pytest.raises(NotFound, match="no HTTP listener"):
        sim.gateway_url("tcp")
    st = sim.get("Gateway", "tcp")["status"]
    assert st["listeners"][0]["conditions"][0]["reason"] == "UnsupportedProtocol"


def test_router_stats_and_keep_alive(sim):
    url = apply_route(sim, ref("v1"))
    res = send(url, 50)                      # one client connection, 50 requests
    assert len(res) == 50 and all(s == 200 for s, _, _ in res)
    st = sim.routing.server.stats()
    assert st["requests"] >= 50 and st["by_status"][200] >= 50 and st["cpu_seconds"] > 0


# ---- apply-time validation (CRD schema + CEL) ------------------------------------------------------------
def test_negative_weight_is_refused_with_the_api_servers_message(sim):
    with pytest.raises(Invalid) as e:
        sim.apply([route(backends=[ref("v1", -1)])])
    assert str(e.value) == ('HTTPRoute.gateway.networking.k8s.io "canary" is invalid: spec.rules[0].backendRefs[0].'
                            'weight: Invalid value: -1: spec.rules[0].backendRefs[0].weight in body should be greater '
                            'than or equal to 0')


def test_service_backend_ref_needs_a_port(sim):
    with pytest.raises(Invalid, match=r'spec.rules\[0\].backendRefs\[0\]: Invalid value: "object": '
                                      "Must have port for Service reference"):
        sim.apply([route(backends=[{"name": "v1"}])])


def test_unknown_field_is_a_strict_decoding_error(sim):
    with pytest.raises(BadRequest, match=r'strict decoding error: unknown field "spec.rules\[0\].backendRefs\[0\]'
                                         r'.wieght"'):
        sim.apply([route(backends=[{"name": "v1", "port": 80, "wieght": 5}])])


def test_validate_custom_paths_and_messages():
    obj = route(rules=[{"backendRefs": [ref("a", 2_000_000), {"name": "b", "port": "80"}],
                        "matches": [{"path": {"type": "Regex", "value": "/x"}}]}])
    errs = validate_custom(obj)
    assert ("spec.rules[0].backendRefs[0].weight: Invalid value: 2000000: spec.rules[0].backendRefs[0].weight in "
            "body should be less than or equal to 1000000") in errs
    assert ('spec.rules[0].backendRefs[1].port: Invalid value: "string": spec.rules[0].backendRefs[1].port in body '
            'must be of type integer: "string"') in errs
    assert ('spec.rules[0].matches[0].path.type: Unsupported value: "Regex": supported values: "Exact", '
            '"PathPrefix", "RegularExpression"') in errs
    fe = field_errors(obj)
    assert ("spec", "rules", 0, "backendRefs", 0, "weight") in [e.path for e in fe]
    assert validate_custom(route(backends=[ref("a", 5)])) == []
    gw = gateway(listeners=[{"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "a", "port": 81, "protocol": "HTTP"}])
    assert 'spec.listeners: Invalid value: "array": Listener name must be unique within the Gateway' in validate_custom(gw)
    assert validate_custom({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "g"}, "spec": {}}) == \
        ["spec.gatewayClassName: Required value", "spec.listeners: Required value"]
    assert "no matches for kind" in validate_custom({**route(), "apiVersion": "gateway.networking.k8s.io/v1alpha1"})[0]


# ---- Istio VirtualService ---------------------------------------------------------------------------------
ISTIO = "networking.istio.io/v1"


def istio_gateway(name: str = "igw") -> dict:
    return {"apiVersion": ISTIO, "kind": "Gateway", "metadata": {"name": name},
            "spec": {"selector": {"istio": "ingressgateway"},
                     "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}


def vs(routes: list, name: str = "canary", gateways=("igw",), match: list | None = None) -> dict:
    http = {"route": routes}
    if match:
        http["match"] = match
    return {"apiVersion": ISTIO, "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": ["*"], "gateways": list(gateways), "http": [http]}}


def dest(host: str, weight: int | None = None, **kw) -> dict:
    d = {"destination": {"host": host, **kw}}
    if weight is not None:
        d["weight"] = weight
    return d


def test_istio_and_gateway_api_gateways_coexist(sim):
    sim.apply([istio_gateway("gw")])
    assert sim.get("Gateway", "gw")["apiVersion"] == GW
    assert sim.get("gateways.networking.istio.io", "gw")["apiVersion"] == ISTIO
    sim.delete("gateways.networking.istio.io", "gw")
    assert sim.get("Gateway", "gw")["apiVersion"] == GW


def test_virtualservice_relative_weights_90_20(sim):
    sim.apply([istio_gateway(), vs([dest("v1", 90), dest("v2", 20)])])
    sim.step(2)
    assert any("total destination weight 110 != 100" in w for w in sim.warnings)
    n = 2200
    t = tally(send(sim.gateway_url("igw"), n))
    assert t[(200, "v1")] + t[(200, "v2")] == n
    assert within(t[(200, "v2")], n, 20 / 110), t


def test_virtualservice_single_destination_gets_everything(sim):
    sim.apply([istio_gateway(), vs([dest("v2.lab.svc.cluster.local")])])
    sim.step(2)
    assert tally(send(sim.gateway_url("igw"), 10)) == {(200, "v2"): 10}


def test_virtualservice_match_and_no_match(sim):
    sim.apply([istio_gateway(), vs([dest("v1")], match=[{"uri": {"prefix": "/api"}}])])
    sim.step(2)
    url = sim.gateway_url("igw")
    assert send(url, 1, "/api/x")[0][:2] == (200, "v1")
    assert send(url, 1, "/other")[0][0] == 404


def test_virtualservice_subsets_and_unknown_host(sim):
    dr = {"apiVersion": ISTIO, "kind": "DestinationRule", "metadata": {"name": "all"},
          "spec": {"host": "v1", "subsets": [{"name": "one", "labels": {"version": "v1"}},
                                             {"name": "none", "labels": {"version": "zzz"}}]}}
    sim.apply([istio_gateway(), dr, vs([dest("v1", 50, subset="one"), dest("v1", 50, subset="none")])])
    sim.step(2)
    t = tally(send(sim.gateway_url("igw"), 200))
    assert set(t) == {(200, "v1"), (503, "v1")}
    sim.apply([vs([dest("nosuch")])])
    sim.step(2)
    assert {s for s, _, _ in send(sim.gateway_url("igw"), 3)} == {503}


@pytest.mark.parametrize("routes,message", [
    ([dest("v1", -1), dest("v2", 101)], "weight -1 < 0"),
    ([dest("v1", 0), dest("v2", 0)], "total destination weight = 0"),
    ([dest("v1"), dest("v2")], "total destination weight = 0"),
])
def test_virtualservice_webhook_refusals(sim, routes, message):
    with pytest.raises(BadRequest) as e:
        sim.apply([vs(routes)])
    assert str(e.value).startswith('admission webhook "validation.istio.io" denied the request: '
                                   "configuration is invalid: ")
    assert message in str(e.value)


def test_virtualservice_schema_errors(sim):
    bad = vs([{"destination": {"host": "v1"}, "weight": "ten"}])
    with pytest.raises(Invalid, match=r'VirtualService.networking.istio.io "canary" is invalid: spec.http\[0\]'
                                      r'.route\[0\].weight: Invalid value: "string"'):
        sim.apply([bad])
    with pytest.raises(BadRequest, match=r'unknown field "spec.http\[0\].route\[0\].destination.weight"'):
        sim.apply([vs([{"destination": {"host": "v1", "weight": 5}}])])
