"""Builders for INVENTED estates used by the planning tests: names, sites and organisations are made up; every build
is a real catalog build."""

from kb.engine.compliance import ServerFacts
from kb.engine.estate import EstateServer
from kb.engine.planning import PlanServer

ALL_2019 = (("ucma", "4.0"), ("url_rewrite", "2.1"), ("vcredist_2012", "2012"), ("vcredist_2013", "2013"))
FILTER_PACK = (("filter_pack", "2010 SP1"),)


def node(fqdn, build, *, cluster=None, kind=None, active=False, roles=("Mailbox",), forefront=False, dotnet=None,
         prerequisites=(), organisation="fabrikam.example", site="HQ", internet=False, cms=False, esu_until=None,
         source="exsetup", windows=()) -> EstateServer:  # fmt: skip
    facts = ServerFacts(build, source, tuple(roles), dotnet, tuple(sorted(prerequisites)), esu_until)
    server = PlanServer(fqdn, facts, forefront, cluster, kind, active, cms)
    return EstateServer(server, site, internet, tuple(windows), organisation)


def ccr(name="CCR-FAB", build="8.2.176.2", *, forefront=True, organisation="fabrikam.example"):
    """A 2007 CCR: node A holds the clustered mailbox server, node B is passive."""
    domain = organisation
    return [
        node(f"{name.lower()}-a.{domain}", build, cluster=name, kind="CCR", active=True, forefront=forefront,
             organisation=organisation),
        node(f"{name.lower()}-b.{domain}", build, cluster=name, kind="CCR", forefront=forefront,
             organisation=organisation),
    ]  # fmt: skip


def dag(name, build, members=("a", "b", "c"), *, active=("a",), organisation="contoso.example", dotnet="4.8",
        prerequisites=ALL_2019, site="HQ"):  # fmt: skip
    return [
        node(f"{name.lower()}-{member}.{organisation}", build, cluster=name, kind="DAG", active=member in active,
             organisation=organisation, dotnet=dotnet, prerequisites=prerequisites, site=site)
        for member in members
    ]  # fmt: skip


def shape(steps, *, server_names=True):
    """(kind, scope, when, first word of the command, where) per step: what a change board reads first."""
    return [
        (
            s.kind,
            s.scope,
            s.when,
            (s.command or "").split(" ")[0],
            (s.server or "").split(".")[0] if server_names else "",
        )
        for s in steps
    ]


def commands(steps):
    return [s.command for s in steps if s.command]
