"""The object tracker at the heart of the sim: API-shaped dicts and nothing else.

Why: checks read the same fields on kind and on sim, so the sim keeps objects
exactly as the API server returns them. This mirrors client-go's
``testing.ObjectTracker`` plus its fake clientset (house rule 6):

* objects are stored by kind, namespace and name and **deep-copied** on every
  read and write, so no caller can mutate the store by accident;
* ``metadata.uid``, ``creationTimestamp``, ``resourceVersion`` (one global
  counter, as etcd's revision) and ``generation`` (bumped when ``spec``
  changes) are maintained; ``generateName`` is honoured;
* errors are the API's own (:class:`NotFound`, :class:`AlreadyExists`,
  :class:`Conflict` on a stale ``resourceVersion``) with upstream messages;
* ``list`` is sorted by namespace then name (deterministic);
* every call is recorded as an :class:`Action`, and reactors added with
  :meth:`Store.prepend_reactor` can answer or fail any verb (injected faults);
* watchers are called after each write with ``("ADDED"|"MODIFIED"|"DELETED", obj)``.

* every write is also kept, in resourceVersion order, in a ring buffer of the
  last ``history`` events (:meth:`Store.events_since`): the HTTP API's watches
  resume from a resourceVersion with it, and one older than the buffer is
  :class:`Expired` (410 Gone), as etcd's compaction makes it upstream. A
  DELETED event carries the resourceVersion of the deletion, as upstream's do.

Not modelled: server-side field validation, managedFields, finalizers and list
pagination.
"""
from __future__ import annotations

import collections
import copy
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from harness.cluster.base import AlreadyExists, ApiError, Conflict, NotFound, Obj

from .clock import rfc3339
from .labels import parse_selector

CLUSTER_SCOPED = {"Node", "Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                  "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "GatewayClass"}

# Gateway API and Istio both have a kind "Gateway": Istio's is stored under this key
# (the object keeps kind "Gateway" and its networking.istio.io apiVersion).
ISTIO_GATEWAY = "Gateway.networking.istio.io"


def storage_kind(obj: Obj) -> str:
    """The kind an object is stored under: its ``kind``, except Istio's Gateway (``ISTIO_GATEWAY``)."""
    kind = obj.get("kind", "")
    if kind == "Gateway" and (obj.get("apiVersion") or "").startswith("networking.istio.io/"):
        return ISTIO_GATEWAY
    return kind


_GROUPS = {"Deployment": "apps", "ReplicaSet": "apps", "StatefulSet": "apps", "DaemonSet": "apps",
           "EndpointSlice": "discovery.k8s.io", "HorizontalPodAutoscaler": "autoscaling",
           "HTTPRoute": "gateway.networking.k8s.io", "Gateway": "gateway.networking.k8s.io",
           "GatewayClass": "gateway.networking.k8s.io", "ReferenceGrant": "gateway.networking.k8s.io",
           "VirtualService": "networking.istio.io", "DestinationRule": "networking.istio.io",
           "Ingress": "networking.k8s.io", "NetworkPolicy": "networking.k8s.io",
           "Job": "batch", "CronJob": "batch"}
_IRREGULAR = {"Endpoints": "endpoints", "Ingress": "ingresses", "NetworkPolicy": "networkpolicies",
              "PriorityClass": "priorityclasses", "StorageClass": "storageclasses"}

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's alphabet


def resource_name(kind: str) -> str:
    """``Deployment`` -> ``deployments.apps``, as API error messages name resources."""
    if kind == ISTIO_GATEWAY:
        return "gateways.networking.istio.io"
    plural = _IRREGULAR.get(kind) or (kind.lower() + ("es" if kind.endswith("s") else "s"))
    group = _GROUPS.get(kind)
    return f"{plural}.{group}" if group else plural


class Expired(ApiError):
    """A watch or list from a resourceVersion the store no longer keeps history for."""

    code, reason = 410, "Expired"


@dataclass(frozen=True)
class WatchEvent:
    """One write, as a watch sees it: ``type`` is ADDED/MODIFIED/DELETED, ``obj`` a private copy."""

    rv: int
    type: str
    kind: str
    obj: Obj = field(repr=False)


@dataclass
class Action:
    """One recorded call: ``verb`` is get/list/create/update/delete."""

    verb: str
    kind: str
    namespace: str
    name: str = ""
    subresource: str = ""
    obj: Obj | None = field(default=None, repr=False)


Reactor = Callable[[Action], "tuple[bool, Any, BaseException | None]"]
Watcher = Callable[[str, Obj], None]


class Store:
    """Thread-safe tracker of API objects. See the module docstring."""

    def __init__(self, clock, *, seed: int = 0, history: int = 5000):
        self._clock = clock
        self._history: collections.deque[WatchEvent] = collections.deque(maxlen=history)
        self._objs: dict[tuple[str, str, str], Obj] = {}
        self._rv = 0
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._reactors: list[tuple[str, str, Reactor]] = []
        self._watchers: list[Watcher] = []
        self.actions: list[Action] = []

    # ---- test hooks -------------------------------------------------------
    def prepend_reactor(self, verb: str, kind: str, fn: Reactor) -> None:
        """``fn(action) -> (handled, obj, err)``; ``"*"`` matches any verb or kind."""
        with self._lock:
            self._reactors.insert(0, (verb, kind, fn))

    def watch(self, fn: Watcher) -> Callable[[], None]:
        """Call ``fn(event_type, obj)`` after each write; returns a function that unsubscribes."""
        with self._lock:
            self._watchers.append(fn)
        return lambda: self.unwatch(fn)

    def unwatch(self, fn: Watcher) -> None:
        with self._lock:
            try:
                self._watchers.remove(fn)
            except ValueError:
                pass

    def events_since(self, rv: int, kind: str | None = None) -> list[WatchEvent]:
        """The writes after resourceVersion ``rv`` (oldest first), optionally of one stored kind.
        Raises :class:`Expired` when ``rv`` is older than the ring buffer remembers."""
        with self._lock:
            oldest = self._history[0].rv if self._history else self._rv + 1
            if rv < oldest - 1 and rv < self._rv:
                raise Expired(f"too old resource version: {rv} ({oldest - 1})")
            return [e for e in self._history if e.rv > rv and (kind is None or e.kind == kind)]

    def _remember(self, type_: str, kind: str, obj: Obj) -> None:
        self._history.append(WatchEvent(int(obj["metadata"]["resourceVersion"]), type_, kind, copy.deepcopy(obj)))

    @property
    def revision(self) -> int:
        return self._rv

    def random_suffix(self, n: int = 5) -> str:
        with self._lock:
            return "".join(self._rng.choice(SAFE_ALPHABET) for _ in range(n))

    # ---- internals --------------------------------------------------------
    @staticmethod
    def _key(kind: str, namespace: str | None, name: str) -> tuple[str, str, str]:
        return (kind, "" if kind in CLUSTER_SCOPED else (namespace or ""), name)

    def _react(self, action: Action) -> tuple[bool, Any]:
        self.actions.append(action)
        for verb, kind, fn in list(self._reactors):
            if verb in ("*", action.verb) and kind in ("*", action.kind):
                handled, obj, err = fn(action)
                if err is not None:
                    raise err
                if handled:
                    return True, copy.deepcopy(obj)
        return False, None

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _notify(self, events: list[tuple[str, Obj]]) -> None:
        for fn in list(self._watchers):
            for ev, obj in events:
                fn(ev, copy.deepcopy(obj))

    # ---- verbs -------------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> Obj:
        with self._lock:
            handled, obj = self._react(Action("get", kind, namespace or "", name))
            if handled:
                return obj
            try:
                return copy.deepcopy(self._objs[self._key(kind, namespace, name)])
            except KeyError:
                raise NotFound(f'{resource_name(kind)} "{name}" not found', kind=kind, name=name) from None

    def try_get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """Like :meth:`get` but without recording an action or raising (controller caches)."""
        with self._lock:
            o = self._objs.get(self._key(kind, namespace, name))
            return copy.deepcopy(o) if o is not None else None

    def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None, *,
             record: bool = True) -> list[Obj]:
        match = parse_selector(label_selector)
        with self._lock:
            if record:
                handled, obj = self._react(Action("list", kind, namespace or ""))
                if handled:
                    return obj
            out = [o for (k, ns, _), o in self._objs.items()
                   if k == kind and (namespace is None or kind in CLUSTER_SCOPED or ns == namespace)
                   and match(o["metadata"].get("labels") or {})]
            out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            return copy.deepcopy(out)

    def list_with_revision(self, kind: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        """Every object of a stored kind (sorted as :meth:`list`) and the revision they were read at,
        atomically: a watch started from that revision misses nothing and repeats nothing."""
        with self._lock:
            return self.list(kind, namespace, record=False), self._rv

    def create(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        kind, meta = storage_kind(obj), obj.setdefault("metadata", {})
        with self._lock:
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(100):
                    meta["name"] = meta["generateName"] + "".join(
                        self._rng.choice(SAFE_ALPHABET) for _ in range(5))
                    if self._key(kind, meta.get("namespace"), meta["name"]) not in self._objs:
                        break
            handled, res = self._react(Action("create", kind, meta.get("namespace", ""),
                                              meta.get("name", ""), obj=copy.deepcopy(obj)))
            if handled:
                return res
            key = self._key(kind, meta.get("namespace"), meta["name"])
            if key in self._objs:
                raise AlreadyExists(f'{resource_name(kind)} "{meta["name"]}" already exists',
                                    kind=kind, name=meta["name"])
            if kind in CLUSTER_SCOPED:
                meta.pop("namespace", None)
            meta["uid"] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            meta["creationTimestamp"] = rfc3339(self._clock.now())
            meta["resourceVersion"] = self._bump()
            meta["generation"] = 1
            self._objs[key] = obj
            out = copy.deepcopy(obj)
            self._remember("ADDED", kind, out)
        self._notify([("ADDED", out)])
        return copy.deepcopy(out)

    def update(self, obj: Obj, *, subresource: str = "") -> Obj:
        """Replace an object. The main resource keeps the stored ``status``;
        ``subresource="status"`` keeps the stored spec and takes only ``status``
        and annotations. A stale ``metadata.resourceVersion`` raises Conflict."""
        obj = copy.deepcopy(obj)
        kind, meta = storage_kind(obj), obj["metadata"]
        with self._lock:
            handled, res = self._react(Action("update", kind, meta.get("namespace", ""), meta["name"],
                                              subresource=subresource, obj=copy.deepcopy(obj)))
            if handled:
                return res
            key = self._key(kind, meta.get("namespace"), meta["name"])
            cur = self._objs.get(key)
            if cur is None:
                raise NotFound(f'{resource_name(kind)} "{meta["name"]}" not found', kind=kind, name=meta["name"])
            rv = meta.get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                raise Conflict(f'Operation cannot be fulfilled on {resource_name(kind)} "{meta["name"]}": '
                               "the object has been modified; please apply your changes to the latest "
                               "version and try again", kind=kind, name=meta["name"])
            if subresource == "status":
                new = copy.deepcopy(cur)
                new["status"] = obj.get("status", {})
                if "annotations" in meta:
                    new["metadata"]["annotations"] = meta["annotations"]
            else:
                new = obj
                if "status" in cur:
                    new["status"] = copy.deepcopy(cur["status"])
                for f in ("uid", "creationTimestamp", "generation"):
                    new["metadata"][f] = cur["metadata"][f]
                if new.get("spec") != cur.get("spec"):
                    new["metadata"]["generation"] = cur["metadata"]["generation"] + 1
            same = copy.deepcopy(new)
            same["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if same == cur:
                return copy.deepcopy(cur)  # a no-op write does not bump resourceVersion
            new["metadata"]["resourceVersion"] = self._bump()
            self._objs[key] = new
            out = copy.deepcopy(new)
            self._remember("MODIFIED", kind, out)
        self._notify([("MODIFIED", out)])
        return copy.deepcopy(out)

    def delete(self, kind: str, namespace: str | None, name: str) -> Obj:
        """Remove an object now (graceful deletion is the caller's business)."""
        with self._lock:
            handled, res = self._react(Action("delete", kind, namespace or "", name))
            if handled:
                return res
            try:
                obj = self._objs.pop(self._key(kind, namespace, name))
            except KeyError:
                raise NotFound(f'{resource_name(kind)} "{name}" not found', kind=kind, name=name) from None
            obj["metadata"]["resourceVersion"] = self._bump()
            self._remember("DELETED", kind, obj)
        self._notify([("DELETED", obj)])
        return copy.deepcopy(obj)

    def snapshot(self) -> list[Obj]:
        """Every object (deep copies), in key order: for garbage collection and namespace deletion."""
        with self._lock:
            return copy.deepcopy([o for _, o in sorted(self._objs.items())])

    def owned_by(self, uid: str, kind: str | None = None) -> list[Obj]:
        """Objects with an ownerReference to ``uid`` (for garbage collection)."""
        with self._lock:
            return copy.deepcopy([o for (k, _, _), o in sorted(self._objs.items())
                                  if (kind is None or k == kind) and any(
                                      r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])])
