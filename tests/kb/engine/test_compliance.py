"""Compliance verdicts for real builds against the real catalog and the bundled rules (no database)."""

import json
from datetime import date

import pytest

from kb.engine.compliance import ServerFacts, evaluate, has_fix
from kb.engine.rules import Rules
from tests.conftest import ROOT

NOW = date(2026, 11, 25)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.from_dicts(json.loads((ROOT / "kb" / "data" / "rules.json").read_text())["rules"])


def verdict(catalog, rules, build, *, on, source="exsetup", roles=("Mailbox",), dotnet=None, prerequisites=()):
    facts = ServerFacts(build, source, tuple(roles), dotnet, tuple(sorted(prerequisites)))
    return evaluate(facts, catalog, rules, today=on)


@pytest.mark.parametrize(
    ("_case", "build", "on", "source", "state", "install"),
    [
        ("2007 SP3 RU4 while supported", "8.3.192.1", date(2017, 3, 25), "exsetup", "update_available", "Update Rollup 23"),
        ("2013 CU23 without its last SU", "15.0.1497.47", date(2023, 3, 20), "exsetup", "security_update_missing", "Mar23SU"),
        ("2019 CU14 missing only a hotfix update", "15.2.1544.9", date(2024, 4, 30), "exsetup", "update_available", "Apr24HU"),
        ("2019 CU12 in mid-2024", "15.2.1118.7", date(2024, 6, 1), "exsetup", "unsupported_level", "CU14"),
        ("2019 CU12 today", "15.2.1118.7", NOW, "exsetup", "unsupported_level", "CU15"),
        ("2010 by AdminDisplayVersion only", "Version 14.3 (Build 123.4)", date(2020, 1, 1), "admin_display", "rollup_unknown", "Update Rollup 29"),
        ("2010 by AdminDisplayVersion only, today", "14.3.123.4", NOW, "admin_display", "rollup_unknown", "Update Rollup 32"),
        ("newer than any row of its CU", "15.2.1544.99", date(2024, 6, 1), "exsetup", "current", None),
        ("latest of its CU", "15.2.1544.9", date(2024, 4, 1), "exsetup", "current", None),
        ("2010 SP3 RU32 after end of support", "14.3.513.0", NOW, "exsetup", "end_of_life", None),
        ("2007 SP3 RU4 after end of support", "8.3.192.1", NOW, "exsetup", "end_of_life", "Update Rollup 23"),
        ("SE behind", "15.2.2562.20", NOW, "exsetup", "security_update_missing", "Aug26SU"),
        ("SE current", "15.2.2562.46", NOW, "exsetup", "current", None),
        ("malformed", "15.2", NOW, "exsetup", "unknown_build", None),
        ("legacy (Exchange 2003)", "6.5.7638.2", NOW, "exsetup", "legacy", None),
        ("legacy, as its export states it", "Version 6.5 (Build 7638.2: Service Pack 2)", NOW, "admin_display", "legacy", None),
        ("legacy (Exchange 2000)", "6.0.6249.4", NOW, "exsetup", "legacy", None),
        ("unknown version", "14.4.1.1", NOW, "exsetup", "unknown_build", None),
    ],
)  # fmt: skip
def test_every_state_with_real_builds(catalog, rules, _case, build, on, source, state, install):
    result = verdict(catalog, rules, build, on=on, source=source, dotnet="4.8")

    assert result.state == state
    assert (result.install.name if result.install else None) == install
    assert result.reasons  # every verdict explains itself


def test_2007_sp3_ru4_installs_ru23_which_supersedes_ru5_to_ru22(catalog, rules):
    result = verdict(catalog, rules, "8.3.192.1", on=date(2017, 3, 25))

    superseded = [ref.name for ref in result.supersedes]
    assert result.install.kb == "KB4011325"
    assert superseded[0] == "Update Rollup 5" and superseded[-1] == "Update Rollup 22"
    assert "Update Rollup 6" in superseded
    assert "KB2608656" in [ref.kb for ref in result.supersedes]
    assert (
        "install Update Rollup 23 (KB4011325), build 8.3.517.0; it includes Update Rollup 5 to Update Rollup 22"
        in result.reasons
    )
    assert result.days_behind == (date(2017, 3, 25) - date(2011, 9, 21)).days  # RU5 is the oldest it misses


def test_security_update_missing_lists_the_security_updates(catalog, rules):
    result = verdict(catalog, rules, "15.0.1497.44", on=date(2023, 3, 20))

    assert [ref.name for ref in result.security_updates] == ["Jan23SU", "Feb23SU", "Mar23SU"]
    assert [ref.name for ref in result.supersedes] == ["Jan23SU", "Feb23SU"]
    assert result.days_behind == (date(2023, 3, 20) - date(2023, 1, 10)).days


def test_unsupported_level_installs_the_newest_cu_and_names_what_it_includes(catalog, rules):
    result = verdict(catalog, rules, "15.2.1118.7", on=date(2024, 6, 1), dotnet="4.8")

    assert result.install.name == "CU14"
    assert result.install.kb == "KB5035606"
    assert "CU13" in [ref.name for ref in result.supersedes]
    assert any(
        r.startswith(
            "CU12 is older than the newest supported levels (CU13, CU14); install CU14 (KB5035606), then Apr24HU"
        )
        for r in result.reasons
    )


@pytest.mark.parametrize(
    ("_case", "dotnet", "expected"),
    [
        ("supported .NET", "4.8", []),
        ("too old", "4.7.2", [".NET Framework 4.8.1 (CU14 supports 4.8, 4.8.1; server has 4.7.2)"]),
        ("not reported", None, [".NET Framework 4.8.1 (CU14 supports 4.8, 4.8.1; .NET version not reported)"]),
    ],
)
def test_missing_dotnet_for_the_target_cu(catalog, rules, _case, dotnet, expected):
    facts = {"ucma": "4.0", "vcredist_2012": "2012", "vcredist_2013": "2013", "url_rewrite": "2.1"}
    result = verdict(catalog, rules, "15.2.1118.7", on=date(2024, 6, 1), dotnet=dotnet, prerequisites=facts.items())

    assert list(result.missing_prerequisites) == expected


def test_filter_pack_sp1_is_missing_on_a_2010_mailbox_server_without_it(catalog, rules):
    without = verdict(catalog, rules, "14.3.468.0", on=date(2020, 6, 1), roles=("Mailbox",))
    edge = verdict(catalog, rules, "14.3.468.0", on=date(2020, 6, 1), roles=("EdgeTransport",))
    with_it = verdict(catalog, rules, "14.3.468.0", on=date(2020, 6, 1), prerequisites=[("filter_pack", "2010 SP1")])

    assert without.missing_prerequisites == ("Office 2010 Filter Pack SP1 (KB2460041)",)
    assert edge.missing_prerequisites == ()
    assert with_it.missing_prerequisites == ()


@pytest.mark.parametrize(
    ("_case", "build", "source", "expected"),
    [
        ("SP1 RU7 lacks it", "8.1.359.2", "exsetup", False),
        ("SP1 RU8 carries it", "8.1.375.2", "exsetup", True),
        ("SP1 RU10 includes RU8", "8.1.436.0", "exsetup", True),
        ("SP2 was released after RU8", "8.2.176.2", "exsetup", True),
        ("RTM is another series", "8.0.813.0", "exsetup", False),
        ("SP1 by AdminDisplayVersion: cannot tell", "8.1.240.6", "admin_display", None),
        ("unknown build: cannot tell", "1.2.3.4", "exsetup", None),
    ],
)
def test_kb960775_is_present_from_2007_sp1_rollup_8(catalog, rules, _case, build, source, expected):
    # domain.md §3: Exchange 2007 SP1 Update Rollup 8 (KB968012) carries KB960775.
    carriers = catalog.by_kb("KB968012")
    result = verdict(catalog, rules, build, on=date(2010, 1, 1), source=source)

    assert [c.name for c in carriers] == ["Update Rollup 8"]
    assert has_fix(result.resolution, carriers, catalog) is expected


@pytest.mark.parametrize(
    ("_case", "build", "source", "state", "reason"),
    [
        (
            "an AD serialNumber: the level, never SE RTM",
            "Version 15.2 (Build 31118.7)", "admin_display", "unsupported_level",
            "read as the Active Directory serialNumber form: Build 31118.7 is 15.2.1118.7 (the directory adds 30000 to "
            "the build number)",
        ),
        (
            "a build that cannot exist is an unknown build with the reason",
            "15.2.31118.7", "exsetup", "unknown_build",
            "build number 31118 is far beyond every known 15.2 build (newest 15.2.2562.46): no such Exchange build; an "
            "AD serialNumber 'Version 15.2 (Build 31118.7)' is 15.2.1118.7",
        ),
    ],
)  # fmt: skip
def test_verdicts_for_the_ad_form_and_impossible_builds(catalog, rules, _case, build, source, state, reason):
    result = verdict(catalog, rules, build, on=NOW, source=source, dotnet="4.8")

    assert result.state == state
    assert reason in result.reasons


@pytest.mark.parametrize("build", ["15.2.2562.46", "15.2.2562.20", "8.3.192.1", "Version 15.2 (Build 1544.4)"])
def test_verdicts_say_when_the_catalog_is_older_than_45_days(catalog, rules, build):
    from kb.engine.catalog import Catalog

    old = Catalog(catalog.entries, support=catalog.support, as_of=date(2026, 8, 19))

    stale = verdict(old, rules, build, on=NOW, source="admin_display" if "Version" in build else "exsetup")
    fresh = verdict(old, rules, build, on=date(2026, 9, 1), source="admin_display" if "Version" in build else "exsetup")

    assert any(reason.startswith("the catalog is 98 days old (as of 2026-08-19)") for reason in stale.reasons)
    assert not any("days old" in reason for reason in fresh.reasons)


# -- ESU, end of life, and the latest security update as its own fact ---------------------------------------------


def esu_verdict(catalog, rules, build, *, esu_until=None, dotnet="4.8", prerequisites=()):
    facts = ServerFacts(build, "exsetup", ("Mailbox",), dotnet, tuple(sorted(prerequisites)), esu_until)
    return evaluate(facts, catalog, rules, today=NOW)


def test_a_2019_server_of_an_organisation_not_enrolled_in_esu_is_end_of_life_and_lists_esu_only_updates(catalog, rules):
    result = esu_verdict(catalog, rules, "15.2.1748.39")  # CU15 Oct25SU, the last public SU

    assert result.state == "end_of_life"
    assert result.install is None  # nothing public left to install: the rest are ESU-only updates
    assert [(ref.name, ref.is_esu_only) for ref in result.missing] == [
        ("Dec25SU", True), ("Feb26SU", True), ("Jun26SU", True), ("Jul26SU", True), ("Aug26SU", True),
    ]  # fmt: skip
    assert result.reasons[-1] == (
        "5 ESU-only update(s) not installed (Dec25SU, Feb26SU, Jun26SU, Jul26SU, Aug26SU): obtainable only through "
        "Microsoft's Extended Security Update program"
    )
    assert (
        "updates released after that date are ESU-only updates (the organisation is not marked enrolled)"
        in result.reasons[0]
    )
    assert (result.is_supported, result.has_latest_security_update) == (False, False)
    assert (result.latest_security_update.name, result.latest_security_update.is_esu_only) == ("Aug26SU", True)


def test_an_enrolled_organisation_is_asked_for_the_esu_only_update(catalog, rules):
    result = esu_verdict(catalog, rules, "15.2.1748.39", esu_until=date(2027, 4, 14))

    assert result.state == "security_update_missing"
    assert (result.install.name, result.install.kb, result.install.is_esu_only) == ("Aug26SU", "KB5121574", True)
    assert "security updates missing: Dec25SU (KB5071875), build 15.2.1748.42 (ESU-only update)" in result.reasons[1]
    assert result.reasons[-1].endswith(
        "the organisation is enrolled in Extended Security Updates until 2027-04-14 (ESU-only updates, not support)"
    )


@pytest.mark.parametrize(
    ("_case", "build", "esu_until", "state"),
    [
        ("enrolment ended", "15.2.1748.39", date(2026, 4, 14), "end_of_life"),
        ("ESU does not cover CU13", "15.2.1258.39", date(2027, 4, 14), "unsupported_level"),
        ("2016 CU23 covered", "15.1.2507.61", date(2027, 4, 14), "security_update_missing"),
        ("SE has no ESU: supported", "15.2.2562.20", None, "security_update_missing"),
    ],
)
def test_esu_covers_only_the_enrolled_period_and_levels(catalog, rules, _case, build, esu_until, state):
    assert esu_verdict(catalog, rules, build, esu_until=esu_until).state == state


def test_an_end_of_life_server_still_reports_missing_prerequisites_and_how_far_behind_it_is(catalog, rules):
    result = esu_verdict(catalog, rules, "15.1.2507.37", dotnet="4.7.2")  # 2016 CU23 Mar24SU on .NET 4.7.2

    assert result.state == "end_of_life"
    assert result.missing_prerequisites == (
        ".NET Framework 4.8 (CU23 supports 4.8; server has 4.7.2)",
        "Unified Communications Managed API 4.0, Core Runtime 64-bit",
        "Visual C++ Redistributable Package for Visual Studio 2012",
        "Visual C++ Redistributable Package for Visual Studio 2013",
        "IIS URL Rewrite Module",
    )
    assert result.install.name == "Oct25SU"
    assert result.days_behind == (NOW - date(2024, 4, 23)).days  # from Apr24HU, the oldest missing update


@pytest.mark.parametrize(
    ("_case", "build", "source", "latest", "has_it"),
    [
        ("SE on the newest SU", "15.2.2562.46", "exsetup", "Aug26SU", True),
        ("SE behind", "15.2.2562.20", "exsetup", "Aug26SU", False),
        ("2019 CU13, unsupported but on its last SU", "15.2.1258.39", "exsetup", "Nov24SU v2", True),
        ("AdminDisplayVersion cannot tell", "Version 15.2 (Build 1748.10)", "admin_display", "Aug26SU", None),
        ("rollups are not flagged as security updates", "8.3.192.1", "exsetup", None, None),
    ],
)  # fmt: skip
def test_latest_security_update_installed_is_its_own_fact(catalog, rules, _case, build, source, latest, has_it):
    facts = ServerFacts(build, source, ("Mailbox",), "4.8")
    result = evaluate(facts, catalog, rules, today=NOW)

    assert (result.latest_security_update.name if result.latest_security_update else None) == latest
    assert result.has_latest_security_update is has_it
