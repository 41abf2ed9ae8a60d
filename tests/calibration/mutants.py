"""Mutants: small patches of a reference solution, each aimed at one check.

A mutant is (name, expected failed check ids, patch function). The patch gets
the path of a fresh copy of the solution and edits files there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Mutant:
    name: str
    fails: frozenset[str]
    patch: Callable[[Path], None]
    note: str = ""


def edit(rel: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def _patch(root: Path) -> None:
        p = root / rel
        text = p.read_text()
        if old not in text:
            raise AssertionError(f"mutant patch target not found in {rel}: {old!r}")
        p.write_text(text.replace(old, new, count))
    return _patch


def sub(rel: str, pattern: str, new: str) -> Callable[[Path], None]:
    def _patch(root: Path) -> None:
        p = root / rel
        text, n = re.subn(pattern, new, p.read_text(), flags=re.M | re.S)
        if n == 0:
            raise AssertionError(f"mutant pattern not found in {rel}: {pattern!r}")
        p.write_text(text)
    return _patch


def write(rel: str, content: str) -> Callable[[Path], None]:
    def _patch(root: Path) -> None:
        (root / rel).write_text(content)
    return _patch


def both(*patches: Callable[[Path], None]) -> Callable[[Path], None]:
    def _patch(root: Path) -> None:
        for p in patches:
            p(root)
    return _patch


LAB01_BUILD_DEPENDENTS = frozenset({
    "image.builds", "image.layer-order", "image.size", "image.no-secrets", "container.healthy",
    "container.ready", "predict.labels", "container.non-root", "container.graceful-stop"})

# The reference as a plain single-stage build (what most tutorials show).
NAIVE_DOCKERFILE = """FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORT=8000
WORKDIR /srv
COPY requirements.txt .
RUN pip install -r requirements.txt
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY model/ model/
COPY app/ app/
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=2s --start-period=10s --retries=3 \\
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["gunicorn", "--config", "app/gunicorn.conf.py", "--chdir", "/srv", "app.server:app"]
"""

# The BentoML reference as it was before it had two stages: one stage, pip's
# default compile step, every test suite in the image.
NAIVE_BENTOML_DOCKERFILE = """FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    BENTOML_HOME=/srv/bentoml_home BENTOML_DO_NOT_TRACK=True PORT=8000
WORKDIR /srv
COPY requirements.txt .
RUN pip install -r requirements.txt
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app \\
 && mkdir -p "$BENTOML_HOME" && chown 10001:10001 "$BENTOML_HOME"
COPY model/ model/
COPY service.py .
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=2s --start-period=10s --retries=3 \\
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["bentoml", "serve", "service:SentimentService", "--host", "0.0.0.0"]
"""

LAB01 = [
    Mutant("dockerignore-empty", frozenset({"docker.dockerignore"}),
           write(".dockerignore", "__pycache__\n")),
    Mutant("dockerignore-keeps-tests", frozenset({"docker.dockerignore"}),
           sub(".dockerignore", r"^tests\n", "")),
    Mutant("requirements-typo", LAB01_BUILD_DEPENDENTS,
           edit("Dockerfile", "-r /tmp/requirements.txt", "-r /tmp/requirement.txt"),
           note="a failed build fails every check that needs the image"),
    Mutant("code-copied-before-deps", frozenset({"image.layer-order"}),
           edit("Dockerfile", "COPY requirements.txt /tmp/requirements.txt\n", "COPY . /tmp/\n")),
    Mutant("forged-cache-log", frozenset({"image.layer-order"}),
           both(edit("Dockerfile", "COPY requirements.txt /tmp/requirements.txt\n", "COPY . /tmp/\n"),
                edit("Dockerfile", "RUN pip install", "RUN echo ' ---> Using cache' && pip install")),
           note="the build log says what the submission prints; the image history does not"),
    Mutant("single-stage-naive", frozenset({"image.size"}),
           write("Dockerfile", NAIVE_DOCKERFILE),
           note="one stage, pip's default compile step: the image carries every test suite and .pyc"),
    Mutant("ballast-layer", frozenset({"image.size"}),
           edit("Dockerfile", "USER 10001\n", "RUN head -c 200000000 /dev/urandom > /srv/ballast.bin\nUSER 10001\n")),
    Mutant("api-key-in-env", frozenset({"image.no-secrets"}),
           edit("Dockerfile", "EXPOSE 8000\n", "EXPOSE 8000\nENV STRIPE_SECRET_KEY=sk-live-4f9a8b7c6d5e4f3a2b1c\n")),
    Mutant("password-in-run", frozenset({"image.no-secrets"}),
           edit("Dockerfile", "USER 10001\n", "RUN DB_PASSWORD=hunter2hunter2 true\nUSER 10001\n")),
    Mutant("no-healthcheck", frozenset({"container.healthy"}),
           sub("Dockerfile", r"^HEALTHCHECK .*?\n\n", "")),
    Mutant("healthcheck-always-true", frozenset({"container.healthy"}),
           sub("Dockerfile", r"^HEALTHCHECK .*?\n\n", "HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD true\n\n"),
           note="a HEALTHCHECK that cannot fail: the hung twin stays healthy"),
    Mutant("healthcheck-too-slow", frozenset({"container.healthy"}),
           sub("Dockerfile", r"--interval=5s --timeout=2s", "--interval=30s --timeout=30s"),
           note="Docker would need minutes to notice a hung server"),
    Mutant("model-not-copied", frozenset({"container.ready", "predict.labels"}),
           edit("Dockerfile", "COPY model/ model/\n", ""),
           note="the model never loads, so /readyz stays 503"),
    Mutant("labels-swapped", frozenset({"predict.labels"}),
           edit("app/server.py", '"label": str(classes[i])', '"label": str(classes[-1 - i])')),
    Mutant("runs-as-root", frozenset({"container.non-root"}),
           edit("Dockerfile", "USER 10001\n", "")),
    Mutant("shell-wrapper-cmd", frozenset({"container.graceful-stop"}),
           sub("Dockerfile", r'^CMD \[.*\]$',
               'CMD ["sh", "-c", "gunicorn --config app/gunicorn.conf.py --chdir /srv app.server:app; echo stopped"]')),
]


# Mutants of the BentoML reference (solutions/01-docker-bentoml): its own size budget.
LAB01_BENTOML = [
    Mutant("bentoml-single-stage-naive", frozenset({"image.size"}),
           write("Dockerfile", NAIVE_BENTOML_DOCKERFILE),
           note="the BentoML reference as one stage: 495 MB against a 460 MB budget (the reference is 421 MB)"),
]


# --- Lab 02 -----------------------------------------------------------------
DEP = "manifests/deployment.yaml"
SVC = "manifests/service.yaml"
LAB02_DYNAMIC = frozenset({"pods.ready", "service.routes", "config.configmap-secret",
                           "probes.readiness-gates-traffic", "probes.startup", "probes.liveness-heals"})
THROUGH_SERVICE = frozenset({"service.routes", "config.configmap-secret",
                             "probes.readiness-gates-traffic", "probes.liveness-heals"})


def drop_block(rel: str, first_line: str) -> Callable[[Path], None]:
    """Remove a YAML block: the line starting with ``first_line`` (stripped) and
    every following line indented deeper than it."""
    def _patch(root: Path) -> None:
        p = root / rel
        lines = p.read_text().splitlines(keepends=True)
        for i, ln in enumerate(lines):
            if ln.strip() == first_line:
                indent = len(ln) - len(ln.lstrip())
                j = i + 1
                while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                    j += 1
                p.write_text("".join(lines[:i] + lines[j:]))
                return
        raise AssertionError(f"block {first_line!r} not found in {rel}")
    return _patch


@dataclass(frozen=True)
class ClusterMutant(Mutant):
    # checks to run for this mutant (the targets and what they require)
    only: tuple[str, ...] = ()
    # text that the failing check's message must contain ("" = not checked)
    says: str = ""


@dataclass(frozen=True)
class Variant:
    """A different but correct answer: it must score what the solution scores."""
    name: str
    patch: Callable[[Path], None]
    note: str = ""


LAB02 = [
    ClusterMutant("unknown-field", frozenset({"manifests.valid"} | LAB02_DYNAMIC),
                  edit(SVC, "  labels:\n", "  lables:\n"),
                  note="kubectl apply --validate=strict refuses it, so nothing runs",
                  only=("manifests.valid", "pods.ready")),
    ClusterMutant("one-replica", frozenset({"deployment.replicas-selector"}),
                  edit(DEP, "replicas: 2", "replicas: 1"), only=("deployment.replicas-selector",)),
    ClusterMutant("selector-mismatch", frozenset({"deployment.replicas-selector", "pods.ready"}),
                  edit(DEP, "    matchLabels:\n      app.kubernetes.io/name: sentiment",
                       "    matchLabels:\n      app.kubernetes.io/name: sentiment-api"),
                  note="the API server refuses the Deployment",
                  only=("deployment.replicas-selector", "manifests.valid", "pods.ready")),
    ClusterMutant("no-requests", frozenset({"deployment.resources"}),
                  drop_block(DEP, "requests:"), only=("deployment.resources",)),
    ClusterMutant("limits-over-budget", frozenset({"deployment.resources"}),
                  edit(DEP, "memory: 512Mi", "memory: 4Gi"), only=("deployment.resources",)),
    ClusterMutant("memory-limit-1Ti", frozenset({"deployment.resources"}),
                  edit(DEP, "memory: 512Mi", "memory: 1Ti"), only=("deployment.resources",),
                  says="the laptop budget is at most"),
    ClusterMutant("cpu-limit-over-budget", frozenset({"deployment.resources"}),
                  edit(DEP, 'cpu: "1"', 'cpu: "4"'), only=("deployment.resources",),
                  says="the laptop budget is at most"),
    ClusterMutant("latest-tag", frozenset({"deployment.image-pinned", "pods.ready"}),
                  edit(DEP, "mlops-labs/sentiment:v1", "mlops-labs/sentiment:latest"),
                  note="ErrImagePull / ImagePullBackOff: nothing is pulled",
                  only=("deployment.image-pinned", "manifests.valid", "pods.ready")),
    ClusterMutant("pull-always", frozenset({"deployment.image-pinned", "pods.ready"}),
                  edit(DEP, "imagePullPolicy: IfNotPresent", "imagePullPolicy: Always"),
                  only=("deployment.image-pinned", "manifests.valid", "pods.ready")),
    ClusterMutant("wrong-readiness-path", frozenset({"pods.ready"}),
                  edit(DEP, "          readinessProbe:\n            httpGet:\n              path: /readyz",
                       "          readinessProbe:\n            httpGet:\n              path: /ready"),
                  note="404: the pods never become Ready", only=("manifests.valid", "pods.ready")),
    ClusterMutant("no-readiness-probe", frozenset({"probes.readiness-gates-traffic"}),
                  drop_block(DEP, "readinessProbe:"),
                  only=("manifests.valid", "pods.ready", "probes.readiness-gates-traffic")),
    ClusterMutant("no-readiness-no-startup", frozenset({"probes.readiness-gates-traffic", "probes.startup"}),
                  both(drop_block(DEP, "readinessProbe:"), drop_block(DEP, "startupProbe:")),
                  note="measured: requests fail with 503 while the new pod loads its model",
                  only=("manifests.valid", "pods.ready", "probes.readiness-gates-traffic", "probes.startup")),
    ClusterMutant("aggressive-liveness", frozenset({"probes.startup"}),
                  # liveness first: once the startupProbe is on /livez, its block matches the liveness edit.
                  # Killed at the first failed probe 6 s after the container starts: a plain start is Ready
                  # 1-3 s after it (the cluster labs' image is precompiled), the grader's 8 s slower model
                  # load 9-11 s after: 3 s of margin each way. 10 s let the slow load live on a fast CI
                  # machine (Ready 10.3 s after the scale-up, about 8.5 s after the container started);
                  # 5 s + 3 x 2 s restarted plain starts when the image compiled its bytecode at each start.
                  both(both(edit(DEP, "              path: /livez\n              port: http\n            periodSeconds: 2",
                                 "              path: /readyz\n              port: http\n            initialDelaySeconds: 6\n"
                                 "            periodSeconds: 2"),
                            edit(DEP, "            failureThreshold: 3\n", "            failureThreshold: 1\n")),
                       edit(DEP, "          startupProbe:\n            httpGet:\n              path: /readyz",
                            "          startupProbe:\n            httpGet:\n              path: /livez")),
                  note="a startupProbe on /livez is done at once; then liveness on /readyz kills the slow model load",
                  only=("manifests.valid", "pods.ready", "probes.startup"), says="was restarted"),
    ClusterMutant("no-startup-probe", frozenset({"probes.startup"}),
                  drop_block(DEP, "startupProbe:"),
                  note="liveness on /livez would not kill the load, but nothing says how long a load may take",
                  only=("probes.startup",), says="no startupProbe"),
    ClusterMutant("startup-budget-20s", frozenset({"probes.startup"}),
                  edit(DEP, "            periodSeconds: 2\n            failureThreshold: 60",
                       "            periodSeconds: 2\n            failureThreshold: 10"),
                  only=("probes.startup",), says="is under 60 s"),
    ClusterMutant("no-liveness-probe", frozenset({"probes.liveness-heals"}),
                  drop_block(DEP, "livenessProbe:"), only=("probes.liveness-heals",)),
    ClusterMutant("liveness-without-own-grace", frozenset({"probes.liveness-heals"}),
                  edit(DEP, "            failureThreshold: 3\n            terminationGracePeriodSeconds: 5",
                       "            failureThreshold: 3"),
                  note="restarted, but after the pod's 30 s grace: 2 of 3 points",
                  only=("manifests.valid", "pods.ready", "probes.liveness-heals"), says="over 30s"),
    ClusterMutant("privileged-pod", frozenset({"pods.ready"}),
                  edit(DEP, "          imagePullPolicy: IfNotPresent\n",
                       "          imagePullPolicy: IfNotPresent\n          securityContext:\n"
                       "            privileged: true\n"),
                  note="Pod Security (baseline) refuses the pods: FailedCreate on the ReplicaSet, failed at once",
                  only=("manifests.valid", "pods.ready"), says="FailedCreate"),
    ClusterMutant("wrong-target-port", THROUGH_SERVICE,
                  edit(SVC, "targetPort: http", "targetPort: 8080"),
                  only=("manifests.valid", "pods.ready", "service.routes", "config.configmap-secret")),
    ClusterMutant("service-selector-typo", THROUGH_SERVICE,
                  edit(SVC, "  selector:\n    app.kubernetes.io/name: sentiment",
                       "  selector:\n    app.kubernetes.io/name: sentimnet"),
                  only=("manifests.valid", "pods.ready", "service.routes")),
    ClusterMutant("secret-inlined", frozenset({"config.configmap-secret"}),
                  edit(DEP, "              valueFrom:\n                secretKeyRef:\n"
                            "                  name: sentiment-api-key\n                  key: API_KEY",
                       '              value: "lab02-demo-key-change-me"'),
                  only=("config.configmap-secret",)),
]


STARTUP = "            periodSeconds: 2\n            failureThreshold: 60"

# Correct answers that differ from the solution's probe timing (issue 10: the
# hang used to start a fixed time after process start, which made some of
# these flaky or failing).
LAB02_VARIANTS = [
    Variant("startup-2x45", edit(DEP, STARTUP, "            periodSeconds: 2\n            failureThreshold: 45")),
    Variant("startup-1x90", edit(DEP, STARTUP, "            periodSeconds: 1\n            failureThreshold: 90")),
    Variant("startup-10x30-docs", edit(DEP, STARTUP, "            periodSeconds: 10\n            failureThreshold: 30"),
            note="the Kubernetes docs' example: the startup probe succeeds up to 10 s after the load"),
    Variant("liveness-initial-delay", both(
        drop_block(DEP, "startupProbe:"),
        edit(DEP, "              path: /livez\n              port: http\n            periodSeconds: 2",
             "              path: /livez\n              port: http\n            initialDelaySeconds: 15\n"
             "            periodSeconds: 2")),
        note="no startupProbe: liveness waits initialDelaySeconds (the README's 15 s) instead"),
]
PROBE_CHECKS = ("manifests.valid", "pods.ready", "probes.readiness-gates-traffic", "probes.startup",
                "probes.liveness-heals")


# --- Lab 03 -----------------------------------------------------------------
HPA = "manifests/hpa.yaml"
ROLLOUT = ("rollout.zero-downtime",)

LAB03 = [
    ClusterMutant("no-cpu-request", frozenset({"hpa.scales-up", "hpa.scales-down"}),
                  # no cpu limit either: a limit alone would default the request to it
                  both(edit(DEP, "            requests:\n              cpu: 200m\n              memory: 256Mi",
                            "            requests:\n              memory: 256Mi"),
                       edit(DEP, '            limits:\n              cpu: "1"\n              memory: 512Mi',
                            "            limits:\n              memory: 512Mi")),
                  note="the HPA reports ScalingActive=False: missing request for cpu",
                  only=("hpa.scales-up", "hpa.scales-down")),
    ClusterMutant("replicas-set", frozenset({"hpa.spec"}),
                  edit(DEP, "  # No spec.replicas: the HorizontalPodAutoscaler owns the replica count.\n",
                       "  replicas: 2\n"),
                  note="a warning and 1 of 2 points", only=("hpa.spec",)),
    ClusterMutant("replicas-above-max", frozenset({"hpa.spec", "hpa.respects-bounds"}),
                  edit(DEP, "  # No spec.replicas: the HorizontalPodAutoscaler owns the replica count.\n",
                       "  replicas: 7\n"),
                  note="applied with 7 replicas until the HPA brings it down to maxReplicas 5",
                  only=("hpa.spec", "hpa.respects-bounds")),
    ClusterMutant("target-80", frozenset({"hpa.spec"}),
                  edit(HPA, "averageUtilization: 50", "averageUtilization: 80"), only=("hpa.spec",)),
    ClusterMutant("default-scale-down-window", frozenset({"hpa.scales-down"}),
                  drop_block(HPA, "behavior:"), only=("hpa.scales-down",)),
    ClusterMutant("no-readiness-no-startup", frozenset({"rollout.zero-downtime"}),
                  both(drop_block(DEP, "readinessProbe:"), drop_block(DEP, "startupProbe:")),
                  note="new pods take traffic before their model is loaded", only=ROLLOUT),
    ClusterMutant("no-prestop", frozenset({"rollout.zero-downtime"}),
                  drop_block(DEP, "lifecycle:"),
                  note="old pods get SIGTERM while the proxy still sends to them", only=ROLLOUT),
    ClusterMutant("max-unavailable-100", frozenset({"rollout.strategy", "rollout.zero-downtime"}),
                  edit(DEP, "maxUnavailable: 1", 'maxUnavailable: "100%"'),
                  only=("rollout.strategy",) + ROLLOUT),
    ClusterMutant("no-progress-deadline", frozenset({"rollout.rollback"}),
                  edit(DEP, "  progressDeadlineSeconds: 20\n", ""), only=("rollout.rollback",)),
]


# --- Lab 04 -----------------------------------------------------------------
CANARY = "manifests/canary.yaml"
STABLE = "manifests/stable.yaml"
ROUTE = "manifests/route.yaml"



def istio_route(stable: int = 90, canary: int = 10) -> str:
    """route.yaml as an Istio Gateway + VirtualService with the same weights (the accepted alternative)."""
    return f"""# Istio: weights on a VirtualService's destinations instead of HTTPRoute backendRefs.
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: vision-gateway
spec:
  selector: {{istio: ingressgateway}}
  servers:
    - port: {{number: 80, name: http, protocol: HTTP}}
      hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: vision
spec:
  hosts: ["*"]
  gateways: [vision-gateway]
  http:
    - route:
        - destination: {{host: vision-stable, port: {{number: 80}}}}
          weight: {stable}
        - destination: {{host: vision-canary, port: {{number: 80}}}}
          weight: {canary}
"""


LAB04 = [
    ClusterMutant("route-negative-weight", frozenset({"manifests.valid"}),
                  edit(ROUTE, "weight: 10}", "weight: -10}"), only=("manifests.valid",)),
    ClusterMutant("no-toleration", frozenset({"gpu.placement", "gpu.insufficient-pending"}),
                  drop_block(CANARY, "tolerations:"),
                  note="the GPU probe is Pending for the taint, not for lack of GPUs",
                  only=("gpu.placement", "gpu.insufficient-pending")),
    ClusterMutant("no-affinity", frozenset({"gpu.placement"}),
                  drop_block(CANARY, "affinity:"), only=("gpu.placement",)),
    ClusterMutant("gpu-request-without-limit", frozenset({"gpu.limits"}),
                  edit(CANARY, 'limits: {cpu: "1", memory: 768Mi, nvidia.com/gpu: "1"}',
                       'limits: {cpu: "1", memory: 768Mi}'), only=("gpu.limits",)),
    ClusterMutant("stable-4-replicas", frozenset({"deploy.stable-canary-ready"}),
                  edit(STABLE, "replicas: 3", "replicas: 4"), only=("deploy.stable-canary-ready",)),
    ClusterMutant("weights-50-50", frozenset({"route.split"}),
                  both(edit(ROUTE, "weight: 90}", "weight: 50}"), edit(ROUTE, "weight: 10}", "weight: 50}")),
                  only=("route.split",)),
    ClusterMutant("istio-weights-50-50", frozenset({"route.split"}),
                  write(ROUTE, istio_route(50, 50)), note="the same mistake in an Istio VirtualService",
                  only=("manifests.valid", "route.split")),
    ClusterMutant("canary-weight-0", frozenset({"route.split"}),
                  edit(ROUTE, "weight: 10}", "weight: 0}"), only=("route.split",)),
    ClusterMutant("route-to-wrong-service", frozenset({"route.split"}),
                  edit(ROUTE, "{name: vision-canary, port: 80", "{name: vision-canry, port: 80"),
                  only=("route.split",)),
    ClusterMutant("canary-serves-v1", frozenset({"route.split", "route.model-version"}),
                  edit(CANARY, "image: mlops-labs/vision:v2", "image: mlops-labs/vision:v1"),
                  note="the split cannot be measured when both backends say v1",
                  only=("manifests.valid", "route.split", "route.model-version")),
    ClusterMutant("canary-fails-5pct", frozenset({"route.progressive"}),
                  edit(CANARY, '            - {name: WEB_CONCURRENCY, value: "1"}\n',
                       '            - {name: WEB_CONCURRENCY, value: "1"}\n            - {name: FAIL_RATE, value: "0.05"}\n'),
                  note="the analysis gate (≤ 1 % errors) rolls it back", only=("manifests.valid", "route.split", "route.progressive")),
    ClusterMutant("canary-rolling-update", frozenset({"route.bad-canary-rollback"}),
                  edit(CANARY, "  strategy:\n    type: Recreate\n", ""),
                  note="the FAIL_RATE pod cannot get the one GPU, the old healthy canary keeps serving and is promoted",
                  only=("manifests.valid", "route.split", "route.bad-canary-rollback")),
]


# Lab 05: the chart, judged through Helm's engine (lint and render; no cluster).
L5 = "chart/"
LAB05_ALL = frozenset({"chart.lint", "chart.renders", "values.dev-prod", "secrets.by-reference",
                       "hpa.custom-metric", "bluegreen.selector"})
LAB05_AFTER_RENDER = LAB05_ALL - {"chart.lint", "chart.renders"}
LAB05 = [
    Mutant("hpa-on-cpu", frozenset({"hpa.custom-metric"}),
           sub(L5 + "templates/hpa.yaml", r"    - type: Pods\n.*?averageValue \| quote \}\}\n",
               "    - type: Resource\n      resource:\n        name: cpu\n        target:\n"
               "          type: Utilization\n          averageUtilization: 50\n"),
           "Lab 03's HPA: requests waiting on a slow downstream use no CPU"),
    Mutant("metric-name-typo", frozenset({"hpa.custom-metric"}),
           edit(L5 + "values-prod.yaml", "metric: inference_requests_in_flight", "metric: inference_request_in_flight")),
    Mutant("average-value-too-high", frozenset({"hpa.custom-metric"}),
           edit(L5 + "values-prod.yaml", 'averageValue: "2"', 'averageValue: "100"'),
           "above the 32 requests a pod serves at once"),
    Mutant("secret-in-values-prod", frozenset({"secrets.by-reference"}),
           edit(L5 + "values-prod.yaml", "logLevel: info\n", "logLevel: info\napiKey: sk-live-5f2c9a81\n")),
    Mutant("secret-rendered-as-literal-env", frozenset({"secrets.by-reference"}),
           sub(L5 + "templates/deployment.yaml", r"            - name: API_KEY\n              valueFrom:\n.*?key: API_KEY\n",
               "            - name: API_KEY\n              value: sk-live-5f2c9a81\n")),
    Mutant("selector-matches-both-colours", frozenset({"bluegreen.selector"}),
           edit(L5 + "templates/service.yaml", "    color: {{ .Values.activeColor }}\n", "")),
    Mutant("selector-pinned-to-blue", frozenset({"bluegreen.selector"}),
           edit(L5 + "templates/service.yaml", "    color: {{ .Values.activeColor }}\n", "    color: blue\n"),
           "switching activeColor does not move the Service"),
    Mutant("dev-autoscales", frozenset({"values.dev-prod"}),
           edit(L5 + "values-dev.yaml", "autoscaling:\n  enabled: false", "autoscaling:\n  enabled: true")),
    Mutant("prod-without-pdb", frozenset({"values.dev-prod"}),
           edit(L5 + "values-prod.yaml", "pdb:\n  enabled: true", "pdb:\n  enabled: false")),
    Mutant("chart-api-v1", frozenset({"chart.lint"}),
           edit(L5 + "Chart.yaml", "apiVersion: v2", "apiVersion: v1"), "helm lint: chart type needs apiVersion v2"),
    Mutant("template-error", frozenset({"chart.lint", "chart.renders"}) | LAB05_AFTER_RENDER,
           edit(L5 + "templates/hpa.yaml", "{{ .Values.autoscaling.maxReplicas }}",
                "{{ .Values.autoscaling.maxReplicas | nosuchfunction }}")),
    Mutant("unknown-field", frozenset({"chart.renders"}) | LAB05_AFTER_RENDER,
           edit(L5 + "templates/deployment.yaml", "imagePullPolicy:", "imagePullPolice:"),
           "renders, but kubectl apply --validate=strict refuses it"),
]

# Lab 05 on a live sim (test_lab05_live.py): each runs only the checks it targets (and what
# they require), and the failing message must say what the cluster showed.
LAB05_LIVE = [
    ClusterMutant("metric-name-typo-live", frozenset({"hpa.scales-on-load"}),
                  edit(L5 + "values-prod.yaml", "metric: inference_requests_in_flight",
                       "metric: inference_request_in_flight"),
                  only=("chart.lint", "chart.renders", "release.installs", "hpa.scales-on-load"),
                  says="FailedGetPodsMetric"),
    ClusterMutant("selector-matches-both-colours-live", frozenset({"bluegreen.switch", "release.rollback"}),
                  edit(L5 + "templates/service.yaml", "    color: {{ .Values.activeColor }}\n", ""),
                  only=("chart.lint", "chart.renders", "release.installs", "bluegreen.switch", "release.rollback"),
                  says="answers came from model"),
    # a label that follows activeColor in a Deployment's selector: installs, but every upgrade that
    # switches colour is refused (spec.selector is immutable), so the release cannot move or roll back
    ClusterMutant("selector-follows-active-colour", frozenset({"release.rollback"}),
                  both(edit(L5 + "templates/deployment.yaml", "      color: {{ $color }}\n  template:",
                            "      color: {{ $color }}\n      active: {{ eq $color $root.Values.activeColor | quote }}\n"
                            "  template:"),
                       edit(L5 + "templates/deployment.yaml", "        color: {{ $color }}\n      annotations:",
                            "        color: {{ $color }}\n        active: {{ eq $color $root.Values.activeColor | quote }}"
                            "\n      annotations:")),
                  only=("chart.lint", "chart.renders", "release.installs", "release.rollback"),
                  says="spec.selector: Invalid value"),
]
LAB05_LIVE += [
    ClusterMutant("secret-key-missing", frozenset({"release.installs"}),
                  edit(L5 + "templates/deployment.yaml", "                  key: API_KEY\n",
                       "                  key: TOKEN\n"),
                  only=("chart.lint", "chart.renders", "release.installs"),
                  says="couldn't find key TOKEN"),
    ClusterMutant("slow-scale-down", frozenset({"hpa.scale-down"}),
                  edit(L5 + "values-prod.yaml", "stabilizationWindowSeconds: 30", "stabilizationWindowSeconds: 300"),
                  only=("chart.lint", "chart.renders", "release.installs", "hpa.scales-on-load", "hpa.scale-down"),
                  says="stabilizationWindowSeconds 300"),
]
