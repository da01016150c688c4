"""Is the scheduler fast and good enough for 1,000 nodes and 100,000 tasks? (simulated)

Issue 16, item 7: a cluster of 1,000 nodes and 100,000 tasks placed through the scheduler
against an in-memory view (minidocker/cluster/simulate.py), with spread and with binpack;
then 10 % of the nodes fail and their tasks are placed again, on a simulated clock. Reported,
against the targets:

- placement throughput (tasks/s, the scheduler's wall time on this machine): >= 1,000;
- binpack's nodes used over the lower bound (total reservations / one node's capacity):
  <= 1.10;
- spread's max - min tasks per node: <= 1 (after the placement, and after the failure);
- the time until the failed nodes' tasks run again (lease expiry, the manager's next pass,
  the scheduler, the containers' start, the pass's writes): <= 30 s simulated;
- the store traffic: keys and transactions per task, as the manager's own pass writes them
  (measured by minidocker/cluster/traffic.py against a store that counts etcd's requests);
- for context, the rate when each task is placed alone (2,000 tasks), as tasks with affinities
  or placement preferences and every task under random are; the others go as groups.

No root, no container: it runs anywhere the package imports.

Usage: bench/cluster.py [--nodes N] [--tasks N] [--json PATH]
"""

import sys
from datetime import UTC, datetime

import common  # bench/common.py: options, report
from rich.console import Console
from rich.table import Table

from minidocker.cluster import simulate


def main(argv: list[str] | None = None) -> int:
    parser = common.argument_parser("bench/cluster.py", __doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args(argv)
    if args.nodes < 10 or args.tasks < args.nodes:
        parser.error("--nodes must be at least 10 and --tasks at least --nodes")
    console = common.console()
    spec = simulate.ClusterSpec(nodes=args.nodes, tasks=args.tasks)
    console.print(f"simulating {spec.nodes} nodes of {spec.capacity.memory // simulate.GiB} GiB "
                  f"and {spec.capacity.nano_cpus // simulate.NANO} CPUs, {spec.tasks} tasks in "
                  f"services of {spec.replicas}")
    results = simulate.run(spec)
    bound = simulate.lower_bound(simulate.make_services(spec), spec.capacity)
    found = simulate.verdicts(results, bound)
    alone = simulate.one_by_one_rates(spec, tasks=min(2000, spec.tasks))
    show(console, results, found, alone)
    if args.json:
        report = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                  "nodes": spec.nodes, "tasks": spec.tasks, "lower_bound": bound,
                  "verdicts": [v.__dict__ for v in found],
                  "one_by_one_placements_per_s": {k: round(v) for k, v in alone.items()},
                  "strategies": {name: summary(p, r) for name, (p, r) in results.items()}}
        common.write_json(console, args.json, report)
    return 0 if all(v.met for v in found) else 1


def summary(placement: simulate.Placement, recovery: simulate.Recovery) -> dict:
    return {"placements_per_s": round(placement.per_second),
            "nodes_used": placement.nodes_used, "spread": placement.spread,
            "keys_per_task": placement.traffic.keys / placement.placed,
            "txns_per_task": round(placement.traffic.txns / placement.placed, 4),
            "failed_nodes": recovery.failed, "orphans": recovery.orphans,
            "recovery_timeline_s": {k: round(v, 3) for k, v in recovery.timeline.items()},
            "recovery_keys_per_task": recovery.traffic.keys / max(recovery.orphans, 1),
            "recovery_s": round(recovery.seconds, 2),
            "store_cost_measured_on": simulate.store_cost().measured_on}


def show(console: Console, results, found: list[simulate.Verdict],
         alone: dict[str, float]) -> None:
    table = Table(title="The seeds' targets")
    for column in ("what", "measured", "target", "verdict"):
        table.add_column(column)
    for v in found:
        verdict = "" if v.target.startswith("(") else "[green]met[/]" if v.met else "[red]missed[/]"
        table.add_row(v.what, f"{v.value:g}", v.target, verdict)
    console.print(table)
    console.print("one task at a time (as tasks with affinities or placement preferences go; "
                  "spread walks its index, the others score every node), placements/s: "
                  + ", ".join(f"{name} {rate:.0f}" for name, rate in alone.items()))
    traffic = Table(title="Store traffic per task (the manager's pass, measured on "
                          f"{simulate.store_cost().measured_on})")
    for column in ("strategy", "keys", "transactions", "after the failure: keys per orphan"):
        traffic.add_column(column, justify="left" if column == "strategy" else "right")
    for name, (placement, recovery) in results.items():
        traffic.add_row(name, f"{placement.traffic.keys / placement.placed:g}",
                        f"{placement.traffic.txns / placement.placed:.3f}",
                        f"{recovery.traffic.keys / max(recovery.orphans, 1):g}")
    console.print(traffic)
    for name, (_placement, recovery) in results.items():
        steps = Table(title=f"{name}: {recovery.failed} nodes fail at t = 0, "
                            f"{recovery.orphans} tasks to place again (simulated s)")
        steps.add_column("step")
        steps.add_column("takes", justify="right")
        for step, seconds in recovery.timeline.items():
            steps.add_row(step, f"{seconds:.2f}")
        console.print(steps)


if __name__ == "__main__":
    sys.exit(main())
