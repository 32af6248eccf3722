"""plan, rollout and coexistence_check against the invented demo estate in the real database."""

import io
import json

import pytest
from django.core.management import CommandError, call_command


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo(loaded_catalog, settings):
    settings.EXCHANGEPATCH_TODAY = "2026-11-25"
    call_command("demo_load", stdout=io.StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "csv"])
def test_plan_renders_every_format(demo, fmt):
    output = run("plan", "--server", "ccr-ex07-a.fabrikam.example", "--format", fmt)

    if fmt == "json":
        plan = json.loads(output)
        assert [s["kind"] for s in plan["steps"]] == [
            "pre_step",
            "pre_step",
            "pre_step",
            "install",
            "post_step",
            "post_step",
            "verify",
        ]
        assert plan["target"]["kb"] == "KB4011325"
    elif fmt == "csv":
        assert output.splitlines()[0] == "wave,starts_at,fqdn,site,step,kind,description,command,kb,reason"
        assert len(output.splitlines()) == 8
    elif fmt == "markdown":
        assert output.startswith("### ccr-ex07-a.fabrikam.example: Exchange Server 2007 SP3 Update Rollup 4 → ")
        assert "| 4 | install | Install Exchange Server 2007 SP3 Update Rollup 23 |" in output
    else:
        assert "fscutility /disable" in output and "Move-ClusteredMailboxServer" in output


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--server", "nope.contoso.example"), "--server: nope.contoso.example is not in the inventory"),
        (("--server", "mbx-ex19-01.contoso.example", "--target", "CU99"), "'CU99' is not a level, update or KB"),
        (
            ("--server", "mbx-ex19-01.contoso.example", "--target", "2016"),
            "no in-place upgrade from Exchange Server 2019",
        ),
        (("--server", "mbx-ex19-01.contoso.example", "--target", "CU13"), "a downgrade is not supported"),
    ],
)
def test_plan_errors_are_one_line(demo, args, message):
    with pytest.raises(CommandError) as error:
        run("plan", *args)

    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.django_db
def test_rollout_json_follows_the_documented_shape(demo):
    rollout = json.loads(run("rollout", "--all", "--format", "json"))

    assert set(rollout) == {"waves", "blocked", "up_to_date"}
    wave = rollout["waves"][0]
    assert set(wave) == {"number", "starts_at", "window", "notes", "servers"}
    assert set(wave["servers"][0]) == {"fqdn", "site", "roles", "steps"}
    assert set(wave["servers"][0]["steps"][0]) == {"kind", "description", "command", "kb", "reason"}
    fqdns = [s["fqdn"] for w in rollout["waves"] for s in w["servers"]]
    # the CCR passive node before the active one, in separate waves
    assert fqdns.index("ccr-ex07-b.fabrikam.example") < fqdns.index("ccr-ex07-a.fabrikam.example")
    assert rollout["blocked"] == [
        {
            "fqdn": "lab-unknown-01.contoso.example",
            "reason": "build 16.0.100.1 is not a known Exchange 2007 or later build",
        }
    ]


@pytest.mark.django_db
def test_rollout_for_one_site_and_an_unknown_site(demo):
    output = run("rollout", "--site", "Amsterdam", "--format", "markdown")

    assert output.startswith("## Rollout plan")
    assert "mbx-ex19-02.contoso.example" in output and "edge-ex19-01" not in output
    with pytest.raises(CommandError, match="--site: 'Atlantis' is not a site in the inventory"):
        run("rollout", "--site", "Atlantis")


@pytest.mark.django_db
def test_coexistence_check_lists_blockers_with_plans(demo):
    result = json.loads(run("coexistence_check", "--introduce", "2013", "--format", "json"))

    blocked = {b["fqdn"] for b in result["blockers"]}
    assert {"ccr-ex07-a.fabrikam.example", "ccr-ex07-b.fabrikam.example", "hub-ex07-01.fabrikam.example"} <= blocked
    first = next(b for b in result["blockers"] if b["fqdn"] == "hub-ex07-01.fabrikam.example")
    assert first["plan"]["target"]["update"] == "Update Rollup 10"
    with pytest.raises(CommandError, match="no coexistence rules for '2003'"):
        run("coexistence_check", "--introduce", "2003")
