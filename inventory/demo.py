"""An INVENTED demo estate (labelled as such everywhere it shows): every verdict state, every kind of cluster (2007
CCR with its clustered mailbox server, SCR, SCC; 2010 and 2019 DAGs), Edge servers, an Internet-facing site and an
Exchange 2007 organisation with Forefront. Builds are real catalog builds; names, sites and people are made up.
It is a snapshot of June 2024: scan it with `--as-of 2024-06-01`."""

from __future__ import annotations

from datetime import time

DEMO_AS_OF = "2024-06-01"
DEMO_NOTE = "invented demo data"

# fqdn, site, internet-facing, roles, build, build source, .NET, prerequisites, forefront, cluster, kind, role, tags
_M, _C, _H, _E, _U = "Mailbox", "ClientAccess", "HubTransport", "EdgeTransport", "UnifiedMessaging"
_FULL_2019 = {"ucma": "4.0", "vcredist_2012": "2012", "vcredist_2013": "2013", "url_rewrite": "2.1"}
_FILTER_PACK = {"filter_pack": "2010 SP1"}
SERVERS = [
    # contoso.example: 2019 and SE, a DAG across two sites, Edge in the Internet-facing perimeter site.
    ("cas-ex19-01.contoso.example", "Perimeter", True, (_M,), "15.2.1544.11", "exsetup", "4.8", _FULL_2019, False, "DAG-EU", "DAG", "passive", ("production", "eu")),
    ("mbx-ex19-01.contoso.example", "Amsterdam", False, (_M,), "15.2.1544.9", "exsetup", "4.8", _FULL_2019, False, "DAG-EU", "DAG", "active", ("production", "eu")),
    ("mbx-ex19-02.contoso.example", "Amsterdam", False, (_M,), "15.2.1258.28", "exsetup", "4.8", _FULL_2019, False, "DAG-EU", "DAG", "passive", ("production", "eu")),
    ("mbx-ex19-03.contoso.example", "Dublin", False, (_M,), "15.2.1118.7", "exsetup", "4.7.2", {"ucma": "4.0"}, False, "", "", "", ("production",)),
    ("edge-ex19-01.contoso.example", "Perimeter", True, (_E,), "15.2.1544.4", "exsetup", "4.8", {}, False, "", "", "", ("edge",)),
    ("edge-ex19-02.contoso.example", "Perimeter", True, (_E,), "15.02.1258.016", "exsetup", "4.8", {}, False, "", "", "", ("edge",)),
    ("mbx-ex16-01.contoso.example", "Dublin", False, (_M,), "15.1.2375.7", "exsetup", "4.8", {"ucma": "4.0"}, False, "", "", "", ("legacy",)),
    ("mbx-ex13-01.contoso.example", "Dublin", False, (_M, _C), "15.0.1497.48", "exsetup", "4.8", {}, False, "", "", "", ("legacy",)),
    ("mbx-ex10-01.contoso.example", "Dublin", False, (_M, _H, _C), "Version 14.3 (Build 123.4)", "admin_display", "", {}, False, "", "", "", ("legacy",)),
    ("lab-unknown-01.contoso.example", "Dublin", False, (_M,), "16.0.100.1", "manual", "", {}, False, "", "", "", ("lab",)),
    # fabrikam.example: an Exchange 2007 organisation with Forefront and a CCR cluster.
    ("ccr-ex07-a.fabrikam.example", "Head-Office", False, (_M,), "8.3.192.1", "exsetup", "", {}, True, "CCR-EX07", "CCR", "active", ("production",)),
    ("ccr-ex07-b.fabrikam.example", "Head-Office", False, (_M,), "8.3.192.1", "exsetup", "", {}, True, "CCR-EX07", "CCR", "passive", ("production",)),
    ("hub-ex07-01.fabrikam.example", "Head-Office", False, (_H, _C), "8.2.305.3", "exsetup", "", {}, True, "", "", "", ("production",)),
    ("edge-ex07-01.fabrikam.example", "DMZ", True, (_E,), "8.3.192.1", "exsetup", "", {}, True, "", "", "", ("edge",)),
    # The clustered mailbox server of CCR-EX07 as Get-ExchangeServer lists it (IsMemberOfCluster: Yes); its nodes above.
    ("ccr-ex07.fabrikam.example", "Head-Office", False, (_M,), "Version 8.3 (Build 83.6)", "admin_display", "", {}, False, "", "CCR", "cms", ("production",)),
    # Standby continuous replication from a branch mailbox server to a DR site, and a single copy cluster.
    ("mbx-ex07-02.fabrikam.example", "Branch", False, (_M,), "8.3.192.1", "exsetup", "", {}, True, "SCR-EX07", "SCR", "active", ("production",)),
    ("scr-ex07-dr.fabrikam.example", "DR", False, (_M,), "8.3.192.1", "exsetup", "", {}, True, "SCR-EX07", "SCR", "passive", ("dr",)),
    ("scc-ex07-a.fabrikam.example", "Head-Office", False, (_M,), "8.3.192.1", "exsetup", "", {}, True, "SCC-EX07", "SCC", "active", ("production",)),
    ("scc-ex07-b.fabrikam.example", "Head-Office", False, (_M,), "8.3.192.1", "exsetup", "", {}, True, "SCC-EX07", "SCC", "passive", ("production",)),
    # woodgrove.example: an Exchange 2010 organisation with a DAG.
    ("mbx-ex10-a.woodgrove.example", "Seattle", False, (_M, _H, _C), "14.3.266.1", "exsetup", "", _FILTER_PACK, False, "DAG-WG10", "DAG", "active", ("production",)),
    ("mbx-ex10-b.woodgrove.example", "Seattle", False, (_M, _H, _C), "14.3.266.1", "exsetup", "", _FILTER_PACK, False, "DAG-WG10", "DAG", "passive", ("production",)),
    # northwind.example: a 2019 DAG (on its way to SE) and a 2016 server to move to SE by a swing migration.
    ("mbx-ex19-a.northwind.example", "Rotterdam", False, (_M,), "15.2.1544.9", "exsetup", "4.8", _FULL_2019, False, "DAG-NW19", "DAG", "active", ("production",)),
    ("mbx-ex19-b.northwind.example", "Rotterdam", False, (_M,), "15.2.1544.9", "exsetup", "4.8", _FULL_2019, False, "DAG-NW19", "DAG", "passive", ("production",)),
    ("mbx-ex16-nw.northwind.example", "Rotterdam", False, (_M,), "15.1.2507.37", "exsetup", "4.8", _FULL_2019, False, "", "", "", ("legacy",)),
]  # fmt: skip

WINDOWS = [
    # name, time zone, weekdays (0=Monday), week of month, start, minutes, sites
    ("Sunday night (Europe/Amsterdam)", "Europe/Amsterdam", [6], None, time(1, 0), 240, ["Perimeter", "Amsterdam", "Rotterdam"]),
    ("Second Tuesday evening (Europe/Dublin)", "Europe/Dublin", [1], 2, time(20, 0), 180, ["Dublin"]),
    ("Saturday (America/New_York)", "America/New_York", [5], None, time(22, 0), 360, ["Head-Office", "DMZ", "Branch", "DR"]),
    ("Friday night (America/Los_Angeles)", "America/Los_Angeles", [4], None, time(23, 0), 300, ["Seattle"]),
]  # fmt: skip


def demo_items() -> list[dict]:
    """The servers as sync items (the same shape the API and servers_import use)."""
    items = []
    for (
        fqdn,
        site,
        internet,
        roles,
        build,
        source,
        dotnet,
        prerequisites,
        forefront,
        cluster,
        kind,
        role,
        tags,
    ) in SERVERS:
        items.append(
            {
                "fqdn": fqdn, "name": fqdn.split(".")[0].upper(), "organisation": fqdn.split(".", 1)[1],
                "site": site, "site_is_internet_facing": internet, "roles": list(roles), "build": build,
                "build_source": source, "dotnet_version": dotnet, "prerequisites": prerequisites,
                "is_forefront_installed": forefront, "environment": "production", "tags": [*tags, "demo"],
                "owner": f"Messaging team ({DEMO_NOTE})", "cluster": cluster, "cluster_kind": kind,
                "cluster_role": "" if role == "cms" else role, "is_clustered_mailbox_server": role == "cms",
                "os_name": "Windows Server 2019" if build.startswith("15.2") else "Windows Server 2012 R2",
            }
        )  # fmt: skip
    return items
