"""The "what to watch" commands of the Lab 02 and 03 READMEs, through the real kubectl against the sim's API.

Blind spot before: the READMEs promise these commands on both backends (``make cluster-up
BACKEND=sim``), but only some were driven by a test (``rollout history`` and ``get endpoints`` not).
"""
from __future__ import annotations

import re

from .test_kubectl import HPA, _rolled_out


def test_lab02_readme_commands(api_env):
    _rolled_out(api_env)
    pods = api_env.kubectl("get", "pods").stdout
    assert re.search(r"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$", pods, re.M), pods
    name = re.search(r"^(sentiment-\S+)\s+1/1\s+Running", pods, re.M).group(1)
    desc = api_env.kubectl("describe", "pod", name).stdout
    assert "Events:" in desc and "Readiness:" in desc and "Liveness:" in desc, desc
    ep = api_env.kubectl("get", "endpoints", "sentiment").stdout
    assert re.search(r"^sentiment\s+\S+:\d+", ep, re.M), ep


def test_lab03_readme_commands(api_env):
    _rolled_out(api_env)
    api_env.kubectl("apply", "-f", "-", input=HPA)
    hpa = api_env.kubectl("get", "hpa", "sentiment").stdout
    assert re.search(r"^NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE$", hpa, re.M), hpa
    assert re.search(r"^sentiment-\S+\s+\d+m\s+\d+Mi", api_env.kubectl("top", "pods").stdout, re.M)
    api_env.kubectl("set", "image", "deploy/sentiment", "server=mlops-labs/sentiment:v2")
    api_env.kubectl("rollout", "status", "deployment/sentiment", "--timeout=60s")
    hist = api_env.kubectl("rollout", "history", "deployment/sentiment").stdout
    assert re.search(r"^REVISION\s+CHANGE-CAUSE$", hist, re.M) and re.search(r"^2\s", hist, re.M), hist
    assert "rolled back" in api_env.kubectl("rollout", "undo", "deployment/sentiment").stdout
