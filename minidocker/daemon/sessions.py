"""What the daemon remembers between requests — only what the engine does not keep on disk.

* attach clients that arrived before their container started (``docker run`` attaches
  first, then starts, so that no output is lost): the start lets the container's monitor wait
  for them (``lifecycle.start(record, attach=True)``) and then wakes them;
* the exit code each attach stream saw last (a ``--rm`` container's record is gone by the time
  ``wait?condition=removed`` answers, but its code must still reach the CLI);
* exec instances between ``exec create`` and ``exec start`` and after they end (``exec
  inspect`` gives the exit code), as dockerd keeps them in memory too.

A restarted daemon forgets these, as dockerd forgets its exec instances; containers and their
records are untouched.
"""

import asyncio
from dataclasses import dataclass, field


@dataclass
class Sessions:
    waiting: dict[str, list[asyncio.Future]] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    execs: dict[str, dict] = field(default_factory=dict)

    def wait_for_start(self, container_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(container_id, []).append(future)
        return future

    def take_waiting(self, container_id: str) -> list[asyncio.Future]:
        return [f for f in self.waiting.pop(container_id, []) if not f.done()]
