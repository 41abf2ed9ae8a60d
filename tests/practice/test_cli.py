"""The practice front door's bad input: exit 2 with one line saying why and what to run."""
from __future__ import annotations

import subprocess
import sys

import pytest

from harness.labs import REPO_ROOT
from harness.practice import catalog, session


def practice(*args, env=None):
    return subprocess.run([sys.executable, "-m", "harness.practice", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=60)


@pytest.fixture
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    import os
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}


def test_the_list_shows_every_scenario_and_at_least_ten():
    proc = practice("list")
    assert proc.returncode == 0
    assert len(catalog.ids()) >= 10
    for sid in catalog.ids():
        assert sid in proc.stdout


def test_every_scenario_file_loads_with_hints_a_debrief_and_a_wrong_fix():
    for sc in catalog.all_scenarios():
        assert sc.hints and sc.debrief.strip() and sc.wrong_fixes, sc.id
        assert "## Root cause" in sc.debrief, sc.id
        for c in sc.verify:
            assert c["unmet"], sc.id


def test_an_unknown_scenario_is_exit_2_with_how_to_list_them(state_home):
    proc = practice("start", "no-such-incident", env=state_home)
    assert proc.returncode == 2
    assert "unknown practice scenario 'no-such-incident'" in proc.stderr and "make practice" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("cmd", ["check", "hint", "reset", "end"])
def test_a_command_without_a_running_scenario_is_exit_2(state_home, cmd):
    proc = practice(cmd, env=state_home)
    assert proc.returncode == 2
    assert "no practice scenario is running" in proc.stderr and "make practice SCENARIO=" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_cluster_that_went_away_is_exit_2_with_what_to_run(state_home, tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster:\n"
                  "    server: http://127.0.0.1:9\ncontexts:\n- name: gone\n  context: {cluster: gone, user: gone}\n"
                  "users:\n- name: gone\n  user: {}\n")
    s = session.Session(scenario=catalog.ids()[0], context="gone", kubeconfig=str(kc), namespace="practice",
                        started=0.0)
    import os
    os.environ["XDG_STATE_HOME"] = state_home["XDG_STATE_HOME"]
    s.save()
    proc = practice("check", env=state_home)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "does not answer" in proc.stderr and "make cluster-up" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_symptom_expectations_read_as_documented():
    from harness.practice.verify import unmet_expectations
    facts = {"rate_504": 0.4, "reasons": ["OOMKilled"], "metric": "<unknown>", "cpu": None}
    assert unmet_expectations(facts, {"rate_504": [">=", 0.3], "reasons": "OOMKilled", "metric": "<unknown>"}) == []
    assert unmet_expectations(facts, {"rate_504": ["<", 0.3]}) == ["rate_504 is 0.4, expected ['<', 0.3]"]
    assert unmet_expectations(facts, {"cpu": ["<", 20]}) == ["cpu is None, expected ['<', 20]"]
    assert unmet_expectations(facts, {"reasons": "Evicted"})


def test_interview_mode_hides_the_name_times_the_candidate_and_writes_a_report_and_debrief(state_home, tmp_path,
                                                                                          monkeypatch):
    import json
    import time

    from harness.practice import cli

    monkeypatch.chdir(tmp_path)
    sc = catalog.load("504-low-cpu")
    s = session.Session(scenario=sc.id, context="c", kubeconfig=None, namespace="practice",
                        started=time.time() - 125, minutes=20, hidden=True, hints_used=2, checks=3)
    assert s.label == "the incident"
    assert s.timer().startswith("2:0") and "of 20:00" in s.timer() and "left" in s.timer()
    s.solved_at = s.started + 1300                            # 21:40: solved, but after the time box
    assert "time is up" in s.timer()
    js, md = cli._write_report(s, sc, None)
    report = json.loads(js.read_text())
    assert report["solved"] is True and report["in_time"] is False and report["hints_used"] == 2
    assert report["time_s"] == 1300 and report["minutes"] == 20
    text = md.read_text()
    assert "## Root cause" in text and "504" in text and "hints used: 2 of 4" in text


def test_on_the_course_kind_cluster_a_gateway_without_an_address_is_reached_on_its_node_port():
    from types import SimpleNamespace

    from harness.cluster.base import BackendUnavailable
    from harness.practice import observe

    def no_address(name):
        raise BackendUnavailable("no address")
    kind = SimpleNamespace(gateway_url=no_address, kubectl=SimpleNamespace(context="kind-mlops-labs"))
    assert observe.entry_url(kind, {"gateway": "public"}) == "http://127.0.0.1:30090"
    other = SimpleNamespace(gateway_url=no_address, kubectl=SimpleNamespace(context="prod"))
    with pytest.raises(BackendUnavailable):
        observe.entry_url(other, {"gateway": "public"})
