"""Pod Security Admission, level ``baseline``, with upstream messages.

Why: the sim runs learners' containers on the grader's own machine. Baseline
is what the grading namespace enforces on kind
(``pod-security.kubernetes.io/enforce=baseline``), and it also keeps a
manifest away from the host: no privileged containers, no host namespaces, no
hostPath volumes, no host ports, no added capabilities beyond the baseline set.

Message format (k8s.io/pod-security-admission ``policy/check_*.go``):
``pods "x" is forbidden: violates PodSecurity "baseline:latest": <reason> (<detail>), ...``
with checks listed in the order of their IDs. For pods created by a
controller with ``generateName`` the name is the prefix (``pods "web-7d4b9-" ...``),
as admission runs before the name is generated.

Not checked: AppArmor, SELinux options and Windows HostProcess (they cannot
reach this machine's host through Docker anyway).
"""
from __future__ import annotations

from typing import Any, Iterator

from harness.cluster.base import Forbidden, Obj

# Capabilities the baseline profile allows in capabilities.add.
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def _quote(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _who(names: list[str]) -> str:
    return ("container " if len(names) == 1 else "containers ") + _quote(names)


def baseline_violations(spec: dict[str, Any]) -> list[str]:
    """``reason (detail)`` strings, in check-ID order; empty when the pod is allowed."""
    out: list[str] = []
    # capabilities_baseline
    bad, caps = [], set()
    for c in _containers(spec):
        add = ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []
        forbidden = [cap for cap in add if cap not in BASELINE_CAPS]
        if forbidden:
            bad.append(c["name"])
            caps.update(forbidden)
    if bad:
        out.append(f"non-default capabilities ({_who(bad)} must not include {_quote(sorted(caps))} "
                   "in securityContext.capabilities.add)")
    # hostNamespaces
    ns = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if ns:
        out.append(f"host namespaces ({', '.join(ns)})")
    # hostPathVolumes
    vols = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if vols:
        out.append(f"hostPath volumes ({'volume' if len(vols) == 1 else 'volumes'} {_quote(vols)})")
    # hostPorts
    bad, ports = [], []
    for c in _containers(spec):
        hp = [str(p["hostPort"]) for p in c.get("ports") or [] if p.get("hostPort")]
        if hp:
            bad.append(c["name"])
            ports.extend(hp)
    if bad:
        verb = "uses hostPort" if len(bad) == 1 and len(ports) == 1 else (
            "uses hostPorts" if len(bad) == 1 else "use hostPorts")
        out.append(f"hostPort ({_who(bad)} {verb} {', '.join(ports)})")
    # privileged
    bad = [c["name"] for c in _containers(spec) if (c.get("securityContext") or {}).get("privileged")]
    if bad:
        out.append(f"privileged ({_who(bad)} must not set securityContext.privileged=true)")
    # procMount
    bad = [c["name"] for c in _containers(spec)
           if (c.get("securityContext") or {}).get("procMount") not in (None, "Default")]
    if bad:
        out.append(f'procMount ({_who(bad)} must not set securityContext.procMount to "Unmasked")')
    # seccompProfile_baseline
    det = []
    if ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type") == "Unconfined":
        det.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    bad = [c["name"] for c in _containers(spec)
           if ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type") == "Unconfined"]
    if bad:
        det.append(f'{_who(bad)} must not set securityContext.seccompProfile.type to "Unconfined"')
    if det:
        out.append(f"seccompProfile ({'; '.join(det)})")
    # sysctls
    bad = [s["name"] for s in (spec.get("securityContext") or {}).get("sysctls") or [] if s["name"] not in SAFE_SYSCTLS]
    if bad:
        out.append(f"forbidden sysctls ({', '.join(bad)})")
    return out


def check_pod(pod: Obj, namespace_labels: dict[str, str]) -> None:
    """Raise :class:`Forbidden` as the API server would when the namespace enforces baseline."""
    level = namespace_labels.get("pod-security.kubernetes.io/enforce")
    if level not in ("baseline", "restricted"):
        return
    violations = baseline_violations(pod.get("spec") or {})
    if violations:
        meta = pod["metadata"]
        name = meta.get("name") or meta.get("generateName", "")
        version = namespace_labels.get("pod-security.kubernetes.io/enforce-version", "latest")
        raise Forbidden(f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": '
                        + ", ".join(violations), kind="Pod", name=name)


def warnings_for_template(kind: str, name: str, spec: dict[str, Any]) -> list[str]:
    """What ``kubectl apply`` prints for a workload whose pods would be refused."""
    v = baseline_violations(spec)
    return [f'would violate PodSecurity "baseline:latest": ' + ", ".join(v)] if v else []
