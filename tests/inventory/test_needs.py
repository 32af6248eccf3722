"""Who needs an update, who lacks a fix, answered in SQL from the scan's gap rows (inventory.needs): the same answers
as the Python walks they replace (inventory.selectors.updates_needed and fix_status, kept as the reference), on the
invented demo estate, for every KB of the catalog, with and without waivers for the fix."""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import Server, Site, VerdictGap, Waiver
from inventory.needs import EXCEPTED, LACKING, UNKNOWN, fix_need, update_need
from inventory.selectors import fix_status, scan_latest, updates_needed
from kb.models import Fix, Update

pytestmark = pytest.mark.django_db
FAR = datetime(2099, 1, 1, tzinfo=UTC)


@pytest.fixture
def demo(loaded_catalog):
    """The invented demo estate, scanned as of its date (June 2024)."""
    call_command("demo_load", stdout=io.StringIO())
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())
    return scan_latest()


def _walk(status) -> dict:
    return {
        LACKING: sorted(status.lacking), UNKNOWN: sorted(status.unknown), EXCEPTED: sorted(status.excepted),
        "present": status.present, "not_applicable": status.not_applicable,
    }  # fmt: skip


def _sql(need) -> dict:
    lists = {status: sorted(r.server.fqdn for r in need.of(status)) for status in (LACKING, UNKNOWN, EXCEPTED)}
    assert (need.lacking_count, need.unknown_count, need.excepted_count) == tuple(
        len(lists[s]) for s in (LACKING, UNKNOWN, EXCEPTED)
    )
    assert [r.server.fqdn for r in need.results] == sorted(r.server.fqdn for r in need.results)  # by FQDN
    return lists | {"present": need.present, "not_applicable": need.not_applicable}


def test_every_update_kb_needed_by_the_same_servers_as_the_walk(demo):
    kbs = sorted(set(Update.objects.exclude(kb="").values_list("kb", flat=True)))
    walked = {entry["kb"]: entry for entry in updates_needed(demo)}
    assert len(walked) > 10  # the demo estate misses many updates: the comparison means something

    for kb in kbs:
        need = update_need(demo, kb=kb)
        entry = walked.get(kb, {"servers": [], "server_count": 0, "install_targets": 0})
        assert list(need.servers.values_list("fqdn", flat=True)) == entry["servers"], kb
        assert (need.server_count, need.install_targets) == (entry["server_count"], entry["install_targets"]), kb


def test_every_fix_lacked_by_the_same_servers_as_the_walk(demo):
    fixes = list(Fix.objects.order_by("kb").values_list("kb", flat=True))
    assert fixes and VerdictGap.objects.filter(scan=demo, kind="fix").exists()
    seen = {LACKING: 0, UNKNOWN: 0, "present": 0}

    for kb in fixes:
        walked = _walk(fix_status(kb, as_of=demo.as_of))
        assert _sql(fix_need(kb, scan=demo)) == walked, kb
        for key in seen:
            seen[key] += bool(walked[key])

    assert all(seen.values()), seen  # some fix is lacked, some cannot be told, some is present somewhere


def test_waivers_for_a_fix_except_the_servers_they_cover(demo):
    # An invented 2010 SP1 RU3 server lacks the fixes of SP1 RU4 (KB2509910); invented waivers: one for that server,
    # one for the site of an unknown-build server, one for another fix for everyone (not this one).
    Server.objects.create(fqdn="old-ex10.invented.example", name="OLD-EX10", organisation_id=Server.objects.first().organisation_id,
                          reported_build="14.1.289.7", roles="Mailbox")  # fmt: skip
    call_command("scan", "--as-of", "2024-06-01", stdout=io.StringIO())
    scan = scan_latest()
    fix = Fix.objects.filter(updates__kb="KB2509910").order_by("kb").first()
    unknown = Server.objects.get(fqdn="lab-unknown-01.contoso.example")
    site = unknown.site or Site.objects.create(organisation=unknown.organisation, name="invented-lab")
    Server.objects.filter(pk=unknown.pk).update(site=site)
    common = {"target_kind": "fix", "reason": "invented", "approver": "invented CAB", "expires_at": FAR}
    Waiver.objects.create(server=Server.objects.get(fqdn="old-ex10.invented.example"), target_kb=fix.kb, **common)
    Waiver.objects.create(site=site, target_kb=fix.kb, **common)
    Waiver.objects.create(target_kb="KB0000001", **common)

    need = fix_need(fix.kb, scan=scan)

    assert _sql(need) == _walk(fix_status(fix.kb, as_of=scan.as_of))
    assert [r.server.fqdn for r in need.of(EXCEPTED)] == ["lab-unknown-01.contoso.example", "old-ex10.invented.example"]
    assert need.lacking_count == 0 and need.excepted_count == 2


def test_a_waiver_for_everyone_excepts_every_server_lacking_the_fix(demo):
    fix = next(kb for kb in Fix.objects.order_by("kb").values_list("kb", flat=True) if fix_status(kb).unknown)
    Waiver.objects.create(target_kind="fix", target_kb=fix, reason="invented", approver="invented CAB", expires_at=FAR)

    need = fix_need(fix, scan=demo)

    assert need.excepted_count > 0 and need.lacking_count == need.unknown_count == 0
    assert _sql(need) == _walk(fix_status(fix, as_of=demo.as_of))


def test_the_queries_do_not_grow_with_the_answer(demo):
    """The counts come from the tallies and the gaps; the servers are one queryset (a page in the API)."""
    fixes = [kb for kb in Fix.objects.order_by("kb").values_list("kb", flat=True)]
    counts = set()
    for kb in fixes:
        with CaptureQueriesContext(connection) as queries:
            need = fix_need(kb, scan=demo)
            list(need.results[:10])
        counts.add(len(queries))
    assert counts == {7}  # fix, carriers, gaps, tallies, verdicts, waivers; then the page
    updates = {}
    for kb in ("KB5036386", "KB5037224", "KB5001779"):
        with CaptureQueriesContext(connection) as queries:
            list(update_need(demo, kb=kb).servers[:10])
        updates[kb] = len(queries)
    assert set(updates.values()) == {2}


def test_the_waiver_index_answers_as_the_walk_over_every_waiver():
    """Invented waivers (not saved) over invented ids: WaiverIndex.covering answers as a walk over every waiver."""
    import random

    from inventory.selectors import WaiverIndex

    def waiver_for(waivers, *, server_id, site_id, kbs):  # the walk: for the first KB covered, the oldest waiver
        for kb in kbs:
            covering = [w for w in waivers.get(kb, ()) if (w.server_id is None and w.site_id is None)
                        or w.server_id == server_id or (w.site_id and w.site_id == site_id)]  # fmt: skip
            if covering:
                return min(covering, key=lambda w: w.pk)
        return None

    rng = random.Random(7)
    kbs = [f"KB50{n:05d}" for n in range(8)]
    by_kb: dict[str, list[Waiver]] = {}
    for pk in rng.sample(range(1, 10_000), 400):
        scope = rng.choice(["server", "server", "site", "everyone"]) if pk % 50 == 0 else rng.choice(["server", "site"])
        waiver = Waiver(pk=pk, target_kind="update", target_kb=rng.choice(kbs),
                        server_id=rng.randrange(200) if scope == "server" else None,
                        site_id=rng.randrange(20) if scope == "site" else None)  # fmt: skip
        by_kb.setdefault(waiver.target_kb, []).append(waiver)
    for waivers in by_kb.values():
        waivers.sort(key=lambda w: w.pk)  # as waivers_active reads them
    index = WaiverIndex(by_kb)
    found = 0

    for server_id in range(200):
        site_id = rng.choice([None, *range(20)])
        asked = rng.sample(kbs, 3)
        expected = waiver_for(by_kb, server_id=server_id, site_id=site_id, kbs=asked)
        assert index.covering(server_id=server_id, site_id=site_id, kbs=asked) == expected
        found += expected is not None

    assert 20 < found < 200  # both answers occur
