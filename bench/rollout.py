"""Rollout benchmark: a plan for 10,000 servers in 50 sites with 500 DAGs; target < 2 s (engine, from loaded values)."""

import random
import sys
import time
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import json

    from kb.engine.catalog import Catalog, ProductSupport, entry_from_dict
    from kb.engine.compliance import ServerFacts
    from kb.engine.estate import EstateServer, WindowSpec, rollout_plan
    from kb.engine.planning import PlanServer
    from kb.engine.rules import Rules

    root = Path(__file__).resolve().parent.parent
    snapshot = json.loads((root / "kb" / "data" / "catalog.json").read_text())
    rules = Rules.from_dicts(json.loads((root / "kb" / "data" / "rules.json").read_text())["rules"])
    support = {
        key: ProductSupport(None, 2 if key not in ("2007", "2010") else 1)
        for key in ("2007", "2010", "2013", "2016", "2019", "SE")
    }
    catalog = Catalog([entry_from_dict(item) for item in snapshot["entries"]], support=support)
    rng = random.Random(3)
    builds = [e.build.short for e in catalog.entries if e.product in ("2016", "2019", "SE", "2010")]
    windows = [WindowSpec(f"w{i}", "Europe/Amsterdam", (i % 7,), clock(22, 0), 240) for i in range(7)]
    roles = [("Mailbox",), ("ClientAccess",), ("HubTransport",), ("EdgeTransport",), ("Mailbox", "ClientAccess")]
    servers = []
    for index in range(10_000):
        dag = index % 500 if index < 4_000 else None  # 500 DAGs of 8 members
        server = PlanServer(
            f"ex{index:05d}.bench.example",
            ServerFacts(rng.choice(builds), "exsetup", rng.choice(roles), rng.choice(["4.8", "4.7.2", "4.8.1"])),
            is_forefront_installed=index % 11 == 0, cluster=f"DAG{dag}" if dag is not None else None,
            cluster_kind="DAG" if dag is not None else None, is_active=dag is not None and index % 8 == 0,
        )  # fmt: skip
        servers.append(
            EstateServer(
                server, f"site-{index % 50:02d}", index % 50 < 5, (windows[index % 7], windows[(index + 1) % 7])
            )
        )
    start, cpu = time.perf_counter(), time.process_time()
    rollout = rollout_plan(servers, catalog, rules, today=date(2026, 11, 25), start=datetime(2026, 11, 25, tzinfo=UTC))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    steps = sum(len(item.plan.steps) for wave in rollout.waves for item in wave.servers)
    # CPU time beside wall time: on a shared machine the wall time also counts the other processes.
    print(f"rollout: {elapsed:.2f} s ({cpu:.2f} s CPU) for {len(servers):,} invented servers in 50 sites with 500 DAGs: "
          f"{len(rollout.waves)} waves, {steps:,} steps, {len(rollout.blocked)} blocked, "
          f"{len(rollout.up_to_date)} up to date  (target < 2 s)")  # fmt: skip


if __name__ == "__main__":
    main()
