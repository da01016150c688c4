"""What the daemon remembers between requests — only what the engine does not keep on disk.

* attach clients that arrived before their container started (``docker run`` attaches
  first, then starts, so that no output is lost): the start lets the container's monitor wait
  for them (``lifecycle.start(record, attach=True)``) and then wakes them;
* the exit code each attach stream saw last (a ``--rm`` container's record is gone by the time
  ``wait?condition=removed`` answers, but its code must still reach the CLI); seeing it wakes
  the ``wait`` requests of that container at once, instead of at their next look at the record;
* exec instances between ``exec create`` and ``exec start`` and after they end (``exec
  inspect`` gives the exit code), as dockerd keeps them in memory too.

A restarted daemon forgets these, as dockerd forgets its exec instances; containers and their
records are untouched. A container removed through the API (``rm``, ``prune``) is forgotten
then; one removed behind the API's back (``--rm``: its monitor removes it) is forgotten by the
``wait`` that reads its code, and at worst is one of the last ``REMEMBERED`` exits kept.
"""

import asyncio
from dataclasses import dataclass, field

REMEMBERED = 1000  # exits kept at most (their codes, their events): the oldest go first


@dataclass
class Sessions:
    waiting: dict[str, list[asyncio.Future]] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    execs: dict[str, dict] = field(default_factory=dict)
    exits: dict[str, asyncio.Event] = field(default_factory=dict)  # set: an exit was seen

    def saw_exit(self, container_id: str, code: int) -> None:
        """An attach stream saw the container's exit code: keep it, wake its waiters."""
        self.exit_codes.pop(container_id, None)  # the newest last: the oldest go first
        self.exit_codes[container_id] = code
        self.exits.setdefault(container_id, asyncio.Event()).set()
        for kept in (self.exit_codes, self.exits):
            while len(kept) > REMEMBERED:
                del kept[next(iter(kept))]

    async def exit_seen(self, container_id: str, seconds: float) -> bool:
        """Sleep ``seconds``, or until an attach stream sees the container exit (True). Every
        waiter woken by one exit hears of it, whichever of them clears the event first."""
        event = self.exits.setdefault(container_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        event.clear()
        return True

    def forget_exit(self, container_id: str) -> None:
        self.exits.pop(container_id, None)

    def forget(self, container_ids: list[str]) -> None:
        """These containers are removed: nothing of their exits stays."""
        for container_id in container_ids:
            self.exit_codes.pop(container_id, None)
            self.exits.pop(container_id, None)

    def wait_for_start(self, container_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(container_id, []).append(future)
        return future

    def take_waiting(self, container_id: str) -> list[asyncio.Future]:
        return [f for f in self.waiting.pop(container_id, []) if not f.done()]
