"""Lab 13 — compose: a reference solution (spoilers)."""


def start_order(depends: dict[str, list[str]]) -> list[str]:
    """Step 1: every service once, each one after all the services it depends on."""
    placed: list[str] = []

    def place(service: str) -> None:
        if service in placed:
            return
        for dependency in depends.get(service, []):
            place(dependency)
        placed.append(service)

    for service in depends:
        place(service)
    return placed


def find_cycle(depends: dict[str, list[str]]) -> list[str] | None:
    """Step 2: a cycle as the path round it (``["a", "b", "a"]``), or None."""
    done: set[str] = set()

    def walk(service: str, path: list[str]) -> list[str] | None:
        if service in path:
            return path[path.index(service):] + [service]
        if service in done:
            return None
        for dependency in depends.get(service, []):
            cycle = walk(dependency, [*path, service])
            if cycle:
                return cycle
        done.add(service)
        return None

    for service in depends:
        cycle = walk(service, [])
        if cycle:
            return cycle
    return None


def stop_order(depends: dict[str, list[str]]) -> list[str]:
    """Step 3: each service stops before the services it depends on."""
    return list(reversed(start_order(depends)))
