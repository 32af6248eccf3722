"""Fault 5: Microsoft's spellings of a re-release name one plan target (real catalog and rules; servers invented)."""

import json
from datetime import date

import pytest

from kb.engine.compliance import ServerFacts
from kb.engine.planning import PlanError, PlanServer, plan_for_server
from kb.engine.rules import Rules
from tests.conftest import ROOT

NOW = date(2026, 11, 25)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.from_dicts(json.loads((ROOT / "kb" / "data" / "rules.json").read_text())["rules"])


def server(build):
    prerequisites = (("ucma", "4.0"), ("url_rewrite", "2.1"), ("vcredist_2012", "2012"), ("vcredist_2013", "2013"))
    return PlanServer("ex01.contoso.example", ServerFacts(build, "exsetup", ("Mailbox",), "4.8.1", prerequisites))


@pytest.mark.parametrize(
    ("build", "target", "expected"),
    [
        ("15.2.1544.4", "Nov24SUv2", ("CU14", "Nov24SU v2", "KB5049233")),
        ("15.2.1544.4", "Nov24SU-v2", ("CU14", "Nov24SU v2", "KB5049233")),
        ("15.2.1544.4", "Nov24SU v2", ("CU14", "Nov24SU v2", "KB5049233")),
        ("15.2.1544.4", "nov24su (v2)", ("CU14", "Nov24SU v2", "KB5049233")),
        ("15.2.1544.4", "Nov24SU", ("CU14", "Nov24SU", "KB5044062")),
        ("15.2.1258.16", "Aug23SUv2", ("CU13", "Aug23SU v2", "KB5030524")),
        ("14.1.218.15", "Update Rollup 3-v3", ("SP1", "Update Rollup 3 v3", "KB2529939")),
        ("14.1.218.15", "RU3v3", ("SP1", "Update Rollup 3 v3", "KB2529939")),
        ("14.1.218.15", "RU3-v3", ("SP1", "Update Rollup 3 v3", "KB2529939")),
        ("8.3.83.6", "RU8v3", ("SP3", "Update Rollup 8 v3", "KB2778154")),
    ],
)
def test_every_spelling_of_a_re_release_is_one_target(catalog, rules, build, target, expected):
    plan = plan_for_server(server(build), catalog, rules, target=target, today=NOW)

    assert (plan.target["level"], plan.target["update"], plan.target["kb"]) == expected


def test_a_re_release_the_level_does_not_have_is_still_refused(catalog, rules):
    with pytest.raises(PlanError, match=r"--target: 'Nov24SUv3' is not a level, update or KB of Exchange Server 2019"):
        plan_for_server(server("15.2.1544.4"), catalog, rules, target="Nov24SUv3", today=NOW)
