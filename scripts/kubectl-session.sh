#!/usr/bin/env bash
# A learner's kubectl session on the offline cluster, recorded: every command is printed with
# "$ " before its output, as a terminal would show it.
#
#   bash scripts/kubectl-session.sh > session.md      (the project's venv, Docker, and kubectl)
#
# From a fresh `make cluster-up BACKEND=sim`: Lab 02's solution applied, rollout status, get
# pods,svc,hpa with upstream's columns, describe, logs, top pod, scale, set image, rollout undo,
# exec, port-forward, /predict through a NodePort on 127.0.0.1:30080, everything deleted, and
# `make cluster-down`. The kubeconfig is a temporary file unless KUBECONFIG is set, so the
# session never changes the learner's own contexts.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export KUBECONFIG="${KUBECONFIG:-$(mktemp -d)/config}"
pf=""
cleanup() { [ -n "$pf" ] && kill "$pf" 2>/dev/null; }
trap cleanup EXIT

run() {                     # print the command, then what it prints (stdout and stderr)
  printf '$ %s\n' "$*"
  eval "$@" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && printf '(exit %d)\n' "$rc"
  return 0
}

# the images Lab 02 and 03 use (built by the grader too; the layer cache makes this quick)
$PY -c 'from harness.labs.cluster_lab import build_lab_images; build_lab_images(3, log=lambda m: None)' >/dev/null

echo '```console'
run make -s cluster-up BACKEND=sim
run kubectl config use-context mlops-labs-sim
run kubectl get nodes
run kubectl apply -f solutions/02-k8s-basics/manifests/
run kubectl rollout status deployment/sentiment --timeout=120s
run kubectl autoscale deployment sentiment --cpu-percent=50 --min=2 --max=4
run kubectl get pods,svc,hpa
pod=$(kubectl get pods -l app.kubernetes.io/name=sentiment -o jsonpath='{.items[0].metadata.name}')
run kubectl describe pod "$pod"
run kubectl logs deployment/sentiment --tail=5
for i in $(seq 40); do kubectl top pod >/dev/null 2>&1 && break; sleep 1; done   # metrics-server: two scrapes
run kubectl top pod
run kubectl scale deployment/sentiment --replicas=3
run kubectl rollout status deployment/sentiment --timeout=120s
run kubectl set image deployment/sentiment server=mlops-labs/sentiment:v2
run kubectl rollout status deployment/sentiment --timeout=120s
run kubectl rollout history deployment/sentiment
run kubectl rollout undo deployment/sentiment
run kubectl rollout status deployment/sentiment --timeout=120s
run "kubectl get deployment sentiment -o jsonpath='{.spec.template.spec.containers[0].image}{\"\\n\"}'"
run "kubectl exec deployment/sentiment -- python -c 'import os, socket; print(socket.gethostname(), os.getuid())'"
run "echo 'print(6 * 7)' | kubectl exec -i deployment/sentiment -- python -"
kubectl port-forward service/sentiment 18080:80 >/dev/null 2>&1 &
pf=$!
sleep 3
key=$(kubectl get secret sentiment-api-key -o jsonpath='{.data.API_KEY}' | base64 -d)
printf '$ kubectl port-forward service/sentiment 18080:80 &\n'
run "curl -s -XPOST 127.0.0.1:18080/predict -H 'Content-Type: application/json' -H 'Authorization: Bearer $key' -d '{\"text\":\"I love it\"}'; echo"
kill "$pf"; pf=""
run kubectl expose deployment sentiment --name=sentiment-nodeport --type=NodePort --port=80 --target-port=http
run "kubectl patch service sentiment-nodeport -p '{\"spec\":{\"ports\":[{\"port\":80,\"nodePort\":30080}]}}'"
run kubectl get service sentiment-nodeport
sleep 3
run "curl -s -XPOST 127.0.0.1:30080/predict -H 'Content-Type: application/json' -H 'Authorization: Bearer $key' -d '{\"text\":\"I love it\"}'; echo"
run kubectl delete hpa sentiment
run kubectl delete service sentiment-nodeport
run kubectl delete -f solutions/02-k8s-basics/manifests/
run kubectl get all
run make -s cluster-down BACKEND=sim
echo '```'
