"""Rolling updates: a new spec reaches a service's tasks a few at a time, and a failure can
roll it back.

``service update --image busybox:2`` writes the new spec with a higher version and keeps the
old one as ``PreviousSpec``; each task remembers the version it was made from. On every pass,
before the slots are filled, ``roll`` looks at the service's update:

- a task of the new version failed since the update began: ``--update-failure-action pause``
  stops the update there, ``rollback`` makes the previous spec current again (a new version),
  which rolls back the same way, ``continue`` goes on;
- otherwise, once every task of the new version runs, and has run for ``--update-monitor``
  (watched for failure; 5 s) and ``--update-delay``, the next ``--update-parallelism``
  outdated tasks are shut down — their slots, empty, get tasks of the new version in the same
  pass; with no outdated task left, the update is completed.

Docs: docs.docker.com "Apply rolling updates to a service", ``service update`` and
``service rollback``; Engine API ServiceSpec.UpdateConfig, Service.UpdateStatus.
Used by: reconcile.py, swarm.py, cli/swarm.py.
"""

import re
from datetime import datetime

from minidocker.errors import MinidockerError
from minidocker.state import now

UPDATING, PAUSED, COMPLETED = "updating", "paused", "completed"
ROLLBACK_STARTED, ROLLBACK_COMPLETED = "rollback_started", "rollback_completed"
IN_PROGRESS = (UPDATING, ROLLBACK_STARTED)
FAILED = ("failed", "rejected")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$")
MONITOR = 5 * 10**9  # --update-monitor: how long a new task is watched for failure (ns)
UNITS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(flag: str, text: str) -> int:
    """Go's durations, as ``--update-delay 10s``: nanoseconds."""
    match = DURATION.match(text.strip())
    if not match:
        raise MinidockerError(f"invalid argument {text!r} for {flag}: use a duration such as "
                              "500ms, 10s or 1m")
    return int(float(match[1]) * UNITS[match[2]])


def begin(service: dict, spec: dict, rollback: bool = False, message: str = "") -> None:
    """``service update`` (or ``rollback``): ``spec`` becomes current, a new version."""
    service["PreviousSpec"], service["Spec"] = service["Spec"], spec
    service["Version"]["Index"] += 1
    service["UpdatedAt"] = now()
    service["UpdateStatus"] = {
        "State": ROLLBACK_STARTED if rollback else UPDATING, "StartedAt": now(),
        "Message": message or ("manually requested rollback" if rollback
                               else "update in progress")}


def roll(service: dict, live: list[dict], dead: list[dict]) -> list[dict]:
    """One step of the service's update: the outdated tasks to shut down now (the caller
    refills their slots). ``live``: its tasks that should run; ``dead``: the others. May
    change ``service`` (pause, rollback, completion): True in ``service["_changed"]``."""
    status = service.get("UpdateStatus") or {}
    if status.get("State") not in IN_PROGRESS:
        return []
    version = service["Version"]["Index"]
    config = service["Spec"].get("UpdateConfig", {})
    failed = [t for t in dead if t.get("SpecVersion") == version
              and t["Status"]["State"] in FAILED and t["CreatedAt"] >= status["StartedAt"]]
    if status["State"] == UPDATING and failed and config.get("FailureAction") != "continue":
        reason = (f"update rolled back due to failure or early termination of task "
                  f"{failed[0]['ID']}")
        if config.get("FailureAction") == "rollback" and service.get("PreviousSpec"):
            begin(service, service["PreviousSpec"], rollback=True, message=reason)
        else:
            status.update(State=PAUSED, Message=f"update paused due to failure or early "
                                                f"termination of task {failed[0]['ID']}")
        service["_changed"] = True
        return []
    outdated = sorted((t for t in live if t.get("SpecVersion", 0) < version),
                      key=lambda t: (str(t.get("Slot") or t.get("Pinned"))))
    fresh = [t for t in live if t.get("SpecVersion") == version]
    if any(t["Status"]["State"] != "running" for t in fresh):
        return []  # the last batch is still starting
    last_start = max((t["Status"]["Timestamp"] for t in fresh), default=status["StartedAt"])
    waited = (datetime.fromisoformat(now()) - datetime.fromisoformat(last_start))
    watch = max(config.get("Delay", 0), config.get("Monitor", MONITOR))
    if fresh and waited.total_seconds() * 10**9 < watch:
        return []  # the last batch is watched for failures, then the delay
    if not outdated:  # done (a rollback keeps its reason as its message)
        if status["State"] == UPDATING:
            status.update(State=COMPLETED, Message="update completed")
        else:
            status["State"] = ROLLBACK_COMPLETED
        status["CompletedAt"] = now()
        service["_changed"] = True
        return []
    parallelism = config.get("Parallelism", 1)  # 0: all at once
    return outdated[:parallelism] if parallelism else outdated
