"""An INVENTED mixed estate for the planning command tests: every product family and every kind of cluster.

Names, sites and organisations are made up; every build is a real catalog build.
- fabrikam.example, an Exchange 2007 organisation: a CCR (with its clustered mailbox server as Get-ExchangeServer lists
  it), a clustered mailbox server whose nodes were never imported, an SCR pair, an SCC, a 2007 SP1 RU7 Hub Transport
  and a DMZ Edge server with Forefront;
- contoso.example: a 2010 DAG, a 2013 server and a 2016 DAG;
- northwind.example: a 2019 DAG and an SE server;
- tailspin.example: Exchange 2007 beside Exchange 2016 (a mix Microsoft does not support).
"""

_M, _H, _C, _E = "Mailbox", "HubTransport", "ClientAccess", "EdgeTransport"
_2019 = {"ucma": "4.0", "vcredist_2012": "2012", "vcredist_2013": "2013", "url_rewrite": "2.1"}
_2010 = {"filter_pack": "2010 SP1"}


def _item(fqdn, site, roles, build, **extra):
    item = {"fqdn": fqdn, "site": site, "roles": list(roles), "build": build, "owner": "invented test data"}
    item.update(extra)
    return item


MIXED_ESTATE = [
    # fabrikam.example: Exchange 2007.
    _item("ccr-fab-a.fabrikam.example", "HQ", (_M,), "8.2.176.2", cluster="CCR-FAB", cluster_kind="CCR",
          cluster_role="active", is_forefront_installed=True),
    _item("ccr-fab-b.fabrikam.example", "HQ", (_M,), "8.2.176.2", cluster="CCR-FAB", cluster_kind="CCR",
          cluster_role="passive", is_forefront_installed=True),
    _item("ccr-fab.fabrikam.example", "HQ", (_M,), "Version 8.2 (Build 176.2)", name="CCR-FAB",
          is_clustered_mailbox_server=True, cluster_kind="CCR"),
    _item("cms-lost.fabrikam.example", "HQ", (_M,), "Version 8.3 (Build 83.6)", name="CMS-LOST",
          is_clustered_mailbox_server=True),
    _item("mbx-fab-01.fabrikam.example", "HQ", (_M,), "8.3.192.1", cluster="SCR-FAB", cluster_kind="SCR",
          cluster_role="active"),
    _item("scr-fab-dr.fabrikam.example", "DR", (_M,), "8.3.192.1", cluster="SCR-FAB", cluster_kind="SCR",
          cluster_role="passive"),
    _item("scc-fab-a.fabrikam.example", "HQ", (_M,), "8.3.192.1", cluster="SCC-FAB", cluster_kind="SCC",
          cluster_role="active"),
    _item("scc-fab-b.fabrikam.example", "HQ", (_M,), "8.3.192.1", cluster="SCC-FAB", cluster_kind="SCC",
          cluster_role="passive"),
    _item("hub-fab-07.fabrikam.example", "HQ", (_H, _C), "8.1.359.2"),
    _item("edge-fab-01.fabrikam.example", "DMZ", (_E,), "8.3.192.1", site_is_internet_facing=True,
          is_forefront_installed=True),
    # contoso.example: Exchange 2010 and 2016 DAGs.
    _item("dag10-a.contoso.example", "Dublin", (_M, _H), "14.3.266.1", cluster="DAG10", cluster_kind="DAG",
          cluster_role="active", prerequisites=_2010),
    _item("dag10-b.contoso.example", "Dublin", (_M, _H), "14.3.266.1", cluster="DAG10", cluster_kind="DAG",
          cluster_role="passive", prerequisites=_2010),
    _item("ex13-c.contoso.example", "Dublin", (_M, _C), "15.0.1497.2", dotnet_version="4.8",
          prerequisites={"ucma": "4.0", "vcredist_2012": "2012", "vcredist_2013": "2013"}),
    _item("dag16-a.contoso.example", "Dublin", (_M,), "15.1.2507.37", cluster="DAG16", cluster_kind="DAG",
          cluster_role="active", dotnet_version="4.8", prerequisites=_2019),
    _item("dag16-b.contoso.example", "Dublin", (_M,), "15.1.2507.37", cluster="DAG16", cluster_kind="DAG",
          cluster_role="passive", dotnet_version="4.8", prerequisites=_2019),
    # northwind.example: Exchange 2019 and SE.
    _item("dag19-a.northwind.example", "Amsterdam", (_M,), "15.2.1544.9", cluster="DAG19", cluster_kind="DAG",
          cluster_role="active", dotnet_version="4.8", prerequisites=_2019),
    _item("dag19-b.northwind.example", "Amsterdam", (_M,), "15.2.1544.9", cluster="DAG19", cluster_kind="DAG",
          cluster_role="passive", dotnet_version="4.8", prerequisites=_2019),
    _item("se-01.northwind.example", "Amsterdam", (_M,), "15.2.2562.20", dotnet_version="4.8.1", prerequisites=_2019),
    # tailspin.example: Exchange 2007 beside Exchange 2016.
    _item("ex07-ts.tailspin.example", "Main", (_M, _H), "8.3.517.0"),
    _item("ex16-ts.tailspin.example", "Main", (_M,), "15.1.2507.37", dotnet_version="4.8", prerequisites=_2019),
]  # fmt: skip
