"""The Deployment controller (k/k ``pkg/controller/deployment``: sync.go, rolling.go,
recreate.go, progress.go), transcribed function by function.

Why a transcription rather than a model: graders compare what learners see
(events, conditions, the number of pods at each step of a rollout) with what
kind shows. Each method below names the upstream function it follows; the
formulas live in :mod:`.rollout`.

Differences (see FIDELITY.md): no ReplicaSet adoption/orphaning, the legacy
``rollbackTo`` field is not supported (``rollout_undo`` is the kubectl-side
template copy, as in kubectl today), template hashes differ in digits.
"""
from __future__ import annotations

import copy

from harness.cluster.base import AlreadyExists, ApiError, Obj

from . import podutil
from . import rollout as ru
from .labels import selector_matcher
from .progress import ProgressMixin, omit_empty

COMPONENT = "deployment-controller"


class DeploymentController(ProgressMixin):
    def __init__(self, store, events, clock, timers):
        self.store, self.events, self.clock, self.timers = store, events, clock, timers

    # ---- entry points ----------------------------------------------------
    def sync(self) -> None:
        for d in self.store.list("Deployment", record=False):
            try:
                self.sync_one(d)
            except ApiError:
                pass  # a conflicting write: the next pass retries, as the workqueue would

    def sync_one(self, d: Obj) -> None:
        """``syncDeployment``."""
        ns, uid = d["metadata"]["namespace"], d["metadata"]["uid"]
        rs_list = [rs for rs in self.store.list("ReplicaSet", ns, record=False)
                   if podutil.controller_uid(rs) == uid]
        if d["metadata"].get("deletionTimestamp"):
            return
        self._check_paused_conditions(d)
        if d["spec"].get("paused"):
            return self._sync(d, rs_list)
        if self._is_scaling_event(d, rs_list):
            return self._sync(d, rs_list)
        if d["spec"]["strategy"]["type"] == "Recreate":
            return self._rollout_recreate(d, rs_list)
        return self._rollout_rolling(d, rs_list)

    # ---- writes ------------------------------------------------------------
    def _write_status(self, d: Obj) -> None:
        d["status"] = omit_empty(d.get("status", {}))
        new = self.store.update(d, subresource="status")
        d.clear()
        d.update(new)

    def _update_rs(self, rs: Obj) -> Obj:
        return self.store.update(rs)

    # ---- sync.go -------------------------------------------------------------
    def _find_new_rs(self, d: Obj, rs_list: list[Obj]) -> Obj | None:
        for rs in ru.by_creation(rs_list):
            if ru.equal_ignore_hash(rs["spec"]["template"], d["spec"]["template"]):
                return rs
        return None

    def _get_all(self, d: Obj, rs_list: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision``."""
        new = self._find_new_rs(d, rs_list)
        old = [rs for rs in rs_list if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
        return self._get_new_rs(d, rs_list, old, create), old

    def _set_new_rs_annotations(self, d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
        ann = rs["metadata"].setdefault("annotations", {})
        changed = False
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k not in ru.SKIP_ANNOTATIONS and ann.get(k) != v:
                ann[k] = v
                changed = True
        old = ann.get(ru.REVISION)
        try:
            old_int = int(old) if old else 0
        except ValueError:
            return False
        if old_int < new_revision:
            ann[ru.REVISION] = str(new_revision)
            changed = True
            if old is not None:
                hist = ann.get(ru.REVISION_HISTORY)
                ann[ru.REVISION_HISTORY] = f"{hist},{old}" if hist else old
        if not exists:
            self._set_replicas_annotations(rs, d)
            changed = True
        return changed

    @staticmethod
    def _set_replicas_annotations(rs: Obj, d: Obj) -> bool:
        ann = rs["metadata"].setdefault("annotations", {})
        want = {ru.DESIRED_REPLICAS: str(d["spec"]["replicas"]),
                ru.MAX_REPLICAS: str(d["spec"]["replicas"] + ru.max_surge(d))}
        changed = any(ann.get(k) != v for k, v in want.items())
        ann.update(want)
        return changed

    def _set_deployment_revision(self, d: Obj, revision: str) -> bool:
        ann = d["metadata"].setdefault("annotations", {})
        if ann.get(ru.REVISION) == revision:
            return False
        ann[ru.REVISION] = revision
        return True

    def _get_new_rs(self, d: Obj, rs_list: list[Obj], old: list[Obj], create: bool) -> Obj | None:
        """``getNewReplicaSet``."""
        now = self.clock.now()
        existing = self._find_new_rs(d, rs_list)
        new_revision = max([ru.revision(rs) for rs in old] or [0]) + 1
        deadline = d["spec"].get("progressDeadlineSeconds") is not None
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = self._set_new_rs_annotations(d, rs, new_revision, exists=True)
            if changed or rs["spec"].get("minReadySeconds", 0) != d["spec"].get("minReadySeconds", 0):
                rs["spec"]["minReadySeconds"] = d["spec"].get("minReadySeconds", 0)
                return self._update_rs(rs)
            needs = self._set_deployment_revision(d, rs["metadata"]["annotations"].get(ru.REVISION, ""))
            status = d.setdefault("status", {})
            if deadline and ru.get_condition(status, "Progressing") is None:
                ru.set_condition(status, ru.new_condition("Progressing", "True", ru.FOUND_NEW_RS,
                                                          f'Found new replica set "{rs["metadata"]["name"]}"', now))
                needs = True
            if needs:
                self._write_status(d)
            return rs
        if not create:
            return None
        collision = (d.get("status") or {}).get("collisionCount")
        tmpl = copy.deepcopy(d["spec"]["template"])
        h = ru.template_hash(tmpl, collision)
        tmpl.setdefault("metadata", {}).setdefault("labels", {})[ru.HASH_LABEL] = h
        sel = copy.deepcopy(d["spec"]["selector"])
        sel.setdefault("matchLabels", {})[ru.HASH_LABEL] = h
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f'{d["metadata"]["name"]}-{h}', "namespace": d["metadata"]["namespace"],
                           "labels": dict(tmpl["metadata"]["labels"]),
                           "ownerReferences": [podutil.controller_ref(d)]},
              "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                       "selector": sel, "template": tmpl}}
        rs["spec"]["replicas"] = n = ru.new_rs_new_replicas(d, old + [rs], rs)
        self._set_new_rs_annotations(d, rs, new_revision, exists=False)
        already = False
        try:
            created = self.store.create(rs)
        except AlreadyExists:
            found = self.store.get("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"])
            if podutil.controller_uid(found) == d["metadata"]["uid"] and ru.equal_ignore_hash(
                    found["spec"]["template"], d["spec"]["template"]):
                created, already = found, True
            else:  # a hash collision: bump collisionCount and retry on the next sync
                d.setdefault("status", {})["collisionCount"] = (collision or 0) + 1
                self._write_status(d)
                return None
        if not already and n > 0:
            self.events.record(d, "Normal", "ScalingReplicaSet",
                               f'Scaled up replica set {created["metadata"]["name"]} from 0 to {n}', COMPONENT)
        needs = self._set_deployment_revision(d, str(new_revision))
        if not already and deadline:
            ru.set_condition(d.setdefault("status", {}), ru.new_condition(
                "Progressing", "True", ru.NEW_RS_CREATED, f'Created new replica set "{created["metadata"]["name"]}"', now))
            needs = True
        if needs:
            self._write_status(d)
        return created

    def _scale_rs_and_record(self, rs: Obj, new_scale: int, d: Obj) -> tuple[bool, Obj]:
        if rs["spec"]["replicas"] == new_scale:
            return False, rs
        return self._scale_rs(rs, new_scale, d, "up" if rs["spec"]["replicas"] < new_scale else "down")

    def _scale_rs(self, rs: Obj, new_scale: int, d: Obj, op: str) -> tuple[bool, Obj]:
        """``scaleReplicaSet``: also keeps desired/max-replicas annotations current."""
        size_needs = rs["spec"]["replicas"] != new_scale
        probe = copy.deepcopy(rs)
        ann_needs = self._set_replicas_annotations(probe, d)
        if not (size_needs or ann_needs):
            return False, rs
        old_scale = rs["spec"]["replicas"]
        probe["spec"]["replicas"] = new_scale
        rs = self._update_rs(probe)
        if size_needs:
            self.events.record(d, "Normal", "ScalingReplicaSet",
                               f'Scaled {op} replica set {rs["metadata"]["name"]} from {old_scale} to {new_scale}',
                               COMPONENT)
        return size_needs, rs

    def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new, old = self._get_all(d, rs_list, create=False)
        for rs in [r for r in old + [new] if r and r["spec"].get("replicas", 0) > 0]:
            desired = (rs["metadata"].get("annotations") or {}).get(ru.DESIRED_REPLICAS)
            if desired is not None and int(desired) != d["spec"]["replicas"]:
                return True
        return False

    def _sync(self, d: Obj, rs_list: list[Obj]) -> None:
        """``sync``: scaling and paused deployments."""
        new, old = self._get_all(d, rs_list, create=False)
        self._scale(d, new, old)
        if d["spec"].get("paused"):
            self._cleanup(old, d)
        all_rss = self._refresh(old + [new])
        status = self._calculate_status(all_rss, new and self._refresh([new])[0], d)
        if status != d.get("status"):
            d["status"] = status
            self._write_status(d)

    def _refresh(self, rss: list[Obj | None]) -> list[Obj | None]:
        return [rs and (self.store.try_get("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs)
                for rs in rss]

    def _scale(self, d: Obj, new: Obj | None, old: list[Obj]) -> None:
        """``scale``: proportional scaling of all active ReplicaSets."""
        replicas = d["spec"]["replicas"]
        active = [r for r in ([new] if new else []) + old if r["spec"].get("replicas", 0) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new or (sorted(old, key=lambda r: r["metadata"]["creationTimestamp"])[-1]
                                                       if old else None))
            if target is not None and target["spec"]["replicas"] != replicas:
                self._scale_rs_and_record(target, replicas, d)
            return
        ann = (new or {}).get("metadata", {}).get("annotations") or {}
        if new is not None and new["spec"]["replicas"] == replicas and ann.get(ru.DESIRED_REPLICAS) == str(replicas) \
                and (new.get("status") or {}).get("availableReplicas", 0) == replicas:
            for rs in old:
                if rs["spec"]["replicas"] > 0:
                    self._scale_rs_and_record(rs, 0, d)
            return
        if d["spec"]["strategy"]["type"] != "RollingUpdate":
            return
        allowed = replicas + ru.max_surge(d) if replicas > 0 else 0
        to_add = allowed - ru.spec_replicas(active)
        if to_add > 0:
            active.sort(key=lambda r: (-r["spec"]["replicas"], [-ord(c) for c in r["metadata"]["creationTimestamp"]]))
        elif to_add < 0:
            active.sort(key=lambda r: (-r["spec"]["replicas"], r["metadata"]["creationTimestamp"]))
        op = "up" if to_add > 0 else "down"
        added, sizes = 0, {}
        for rs in active:
            prop = self._proportion(rs, d, to_add, added) if to_add else 0
            sizes[rs["metadata"]["name"]] = rs["spec"]["replicas"] + prop
            added += prop
        for i, rs in enumerate(active):
            if i == 0 and to_add:
                sizes[rs["metadata"]["name"]] = max(0, sizes[rs["metadata"]["name"]] + to_add - added)
            self._scale_rs(rs, sizes[rs["metadata"]["name"]], d, op)

    @staticmethod
    def _proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
        """``GetProportion`` / ``getReplicaSetFraction``."""
        if rs["spec"]["replicas"] == 0 or to_add == 0 or to_add == added:
            return 0
        if d["spec"]["replicas"] == 0:
            fraction = -rs["spec"]["replicas"]
        else:
            max_now = d["spec"]["replicas"] + ru.max_surge(d)
            before = int((rs["metadata"].get("annotations") or {}).get(ru.MAX_REPLICAS) or 0) or \
                (d.get("status") or {}).get("replicas", 0)
            size = rs["spec"]["replicas"] * max_now / before if before else rs["spec"]["replicas"]
            fraction = int(size + 0.5) - rs["spec"]["replicas"]
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    def _cleanup(self, old: list[Obj], d: Obj) -> None:
        """``cleanupDeployment``: keep revisionHistoryLimit old ReplicaSets."""
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - limit
        if diff <= 0:
            return
        alive.sort(key=lambda r: (ru.revision(r), r["metadata"]["creationTimestamp"]))
        for rs in alive[:diff]:
            st = rs.get("status") or {}
            if st.get("replicas", 0) or rs["spec"]["replicas"] or \
                    rs["metadata"]["generation"] > st.get("observedGeneration", 0):
                continue
            self.store.delete("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _check_paused_conditions(self, d: Obj) -> None:
        if d["spec"].get("progressDeadlineSeconds") is None:
            return
        status = d.setdefault("status", {})
        cond = ru.get_condition(status, "Progressing")
        if cond is not None and cond["reason"] == ru.TIMED_OUT:
            return
        paused_exists = cond is not None and cond["reason"] == "DeploymentPaused"
        if d["spec"].get("paused") and not paused_exists:
            ru.set_condition(status, ru.new_condition("Progressing", "Unknown", "DeploymentPaused",
                                                      "Deployment is paused", self.clock.now()))
        elif not d["spec"].get("paused") and paused_exists:
            ru.set_condition(status, ru.new_condition("Progressing", "Unknown", "DeploymentResumed",
                                                      "Deployment is resumed", self.clock.now()))
        else:
            return
        self._write_status(d)

    # ---- rolling.go ------------------------------------------------------------
    def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        new, old = self._get_all(d, rs_list, create=True)
        if new is None:
            return
        all_rss = old + [new]
        scaled, new = self._reconcile_new(all_rss, new, d)
        if scaled:
            return self._sync_rollout_status(self._refresh(old + [new]), new, d)
        if self.reconcile_old(old + [new], [r for r in old if r["spec"]["replicas"] > 0], new, d):
            return self._sync_rollout_status(self._refresh(old + [new]), new, d)
        if ru.deployment_complete(d, d.get("status") or {}):
            self._cleanup(old, d)
        return self._sync_rollout_status(self._refresh(old + [new]), new, d)

    def _reconcile_new(self, all_rss: list[Obj], new: Obj, d: Obj) -> tuple[bool, Obj]:
        replicas = d["spec"]["replicas"]
        if new["spec"]["replicas"] == replicas:
            return False, new
        if new["spec"]["replicas"] > replicas:
            return self._scale_rs_and_record(new, replicas, d)
        return self._scale_rs_and_record(new, ru.new_rs_new_replicas(d, all_rss, new), d)

    def reconcile_old(self, all_rss: list[Obj], old: list[Obj], new: Obj, d: Obj) -> bool:
        """``reconcileOldReplicaSets``."""
        if ru.spec_replicas(old) == 0:
            return False
        min_available = d["spec"]["replicas"] - ru.max_unavailable(d)
        new_unavailable = new["spec"]["replicas"] - (new.get("status") or {}).get("availableReplicas", 0)
        max_scaled_down = ru.spec_replicas(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old, cleaned = self._cleanup_unhealthy(old, d, max_scaled_down)
        scaled = self._scale_down_old(old + [new], old, d)
        return cleaned + scaled > 0

    def _cleanup_unhealthy(self, old: list[Obj], d: Obj, cap: int) -> tuple[list[Obj], int]:
        old = ru.by_creation(old)
        total = 0
        for i, rs in enumerate(old):
            if total >= cap:
                break
            avail = (rs.get("status") or {}).get("availableReplicas", 0)
            if rs["spec"]["replicas"] == 0 or rs["spec"]["replicas"] == avail:
                continue
            n = min(cap - total, rs["spec"]["replicas"] - avail)
            _, old[i] = self._scale_rs_and_record(rs, rs["spec"]["replicas"] - n, d)
            total += n
        return old, total

    def _scale_down_old(self, all_rss: list[Obj], old: list[Obj], d: Obj) -> int:
        min_available = d["spec"]["replicas"] - ru.max_unavailable(d)
        available = ru.status_count(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        total, target = 0, available - min_available
        for rs in ru.by_creation(old):
            if total >= target:
                break
            if rs["spec"]["replicas"] == 0:
                continue
            n = min(rs["spec"]["replicas"], target - total)
            self._scale_rs_and_record(rs, rs["spec"]["replicas"] - n, d)
            total += n
        return total

    # ---- recreate.go -------------------------------------------------------------
    def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> None:
        new, old = self._get_all(d, rs_list, create=False)
        scaled = False
        for rs in old:
            if rs["spec"]["replicas"] > 0:
                scaled |= self._scale_rs_and_record(rs, 0, d)[0]
        if scaled or self._old_pods_running(d, new, old):
            return self._sync_rollout_status(self._refresh(old + [new]), new, d)
        if new is None:
            rs_list = [r for r in self.store.list("ReplicaSet", d["metadata"]["namespace"], record=False)
                       if podutil.controller_uid(r) == d["metadata"]["uid"]]
            new, old = self._get_all(d, rs_list, create=True)
            if new is None:
                return
        _, new = self._scale_rs_and_record(new, d["spec"]["replicas"], d)
        if ru.deployment_complete(d, d.get("status") or {}):
            self._cleanup(old, d)
        return self._sync_rollout_status(self._refresh(old + [new]), new, d)

    def _old_pods_running(self, d: Obj, new: Obj | None, old: list[Obj]) -> bool:
        if ru.status_count(self._refresh(old), "replicas") > 0:
            return True
        match = selector_matcher(d["spec"]["selector"])
        new_uid = new["metadata"]["uid"] if new else None
        old_uids = {rs["metadata"]["uid"] for rs in old}
        for p in self.store.list("Pod", d["metadata"]["namespace"], record=False):
            owner = podutil.controller_uid(p)
            if owner in old_uids and owner != new_uid and match(p["metadata"].get("labels") or {}) \
                    and (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
        return False
