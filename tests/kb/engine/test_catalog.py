"""Resolving builds against the real catalog (the bundled snapshot of Microsoft's data), without a database."""

from datetime import date

import pytest

from kb.engine.builds import parse_reported_build
from kb.engine.catalog import Catalog
from kb.engine.lookup import build_info

TODAY = date(2024, 6, 1)  # CU14 is N and CU13 is N-1 for Exchange 2019 on this day


@pytest.mark.parametrize(
    ("_case", "text", "product", "level", "update", "kb", "released", "exact"),
    [
        (
            "2007 SP3 RU6",
            "8.3.245.2",
            "Exchange Server 2007",
            "SP3",
            "Update Rollup 6",
            "KB2608656",
            "2012-01-26",
            True,
        ),
        ("2007 SP3 base", "8.3.83.6", "Exchange Server 2007", "SP3", None, None, "2010-06-07", True),
        (
            "2010 SP3 RU32 long form",
            "14.03.0513.000",
            "Exchange Server 2010",
            "SP3",
            "Update Rollup 32",
            "KB5000978",
            "2021-03-02",
            True,
        ),
        (
            "re-release v2",
            "8.3.159.2",
            "Exchange Server 2007",
            "SP3",
            "Update Rollup 3 v2",
            "KB2530488",
            "2011-03-30",
            True,
        ),
        (
            "2019 CU14 Mar24SU",
            "15.2.1544.9",
            "Exchange Server 2019",
            "CU14",
            "Mar24SU",
            "KB5036386",
            "2024-03-12",
            True,
        ),
        (
            "2019 CU14 base, ExSetup form",
            "15.02.1544.004",
            "Exchange Server 2019",
            "CU14",
            None,
            "KB5035606",
            "2024-02-13",
            True,
        ),
        ("hotfix update", "15.2.1544.11", "Exchange Server 2019", "CU14", "Apr24HU", "KB5037224", "2024-04-23", True),
        (
            "2013 SP1 is a CU level",
            "15.0.847.64",
            "Exchange Server 2013",
            "SP1",
            "Mar21SU",
            "KB5000871",
            "2021-03-02",
            True,
        ),
        ("SE", "15.2.2562.17", "Exchange Server Subscription Edition", "RTM", None, "KB5047155", "2025-07-01", True),
        ("unlisted inside a CU", "15.1.1415.9", "Exchange Server 2016", "CU8", None, None, None, False),
        ("newer than any row of its CU", "15.2.1544.99", "Exchange Server 2019", "CU14", None, None, None, False),
    ],
)
def test_build_info_resolves_real_builds(catalog, _case, text, product, level, update, kb, released, exact):
    info = build_info(text, catalog, today=TODAY)

    assert (info["product"], info["level"], info["update"], info["kb"], info["release_date"], info["exact"]) == (
        product, level, update, kb, released, exact,
    )  # fmt: skip
    assert info["error"] is None


def test_unlisted_build_is_reported_as_unlisted_of_its_level_never_as_another_update(catalog):
    resolution = catalog.resolve(parse_reported_build("15.1.1415.9"), today=TODAY)

    assert resolution.entry is None
    assert resolution.floor.build.short == "15.1.1415.2"
    assert "unlisted build of Exchange Server 2016 CU8; nearest listed below: CU8 15.1.1415.2" in resolution.notes


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("Version 8.3 (Build 83.6)", "rollup level unknown: AdminDisplayVersion shows the service pack only"),
        ("Version 14.3 (Build 123.4)", "rollup level unknown: AdminDisplayVersion shows the service pack only"),
        ("Version 15.2 (Build 1544.4)", "security update level unknown: AdminDisplayVersion shows the CU only"),
    ],
)
def test_admin_display_version_knows_the_level_but_not_the_update(catalog, text, note):
    resolution = catalog.resolve(parse_reported_build(text), today=TODAY)

    assert resolution.level is not None
    assert resolution.entry is None
    assert resolution.is_update_known is False
    assert any(n.startswith(note) for n in resolution.notes)


@pytest.mark.parametrize(
    ("text", "on", "is_supported"),
    [
        ("15.2.1544.4", date(2024, 6, 1), True),  # N
        ("15.2.1258.12", date(2024, 6, 1), True),  # N-1
        ("15.2.1118.7", date(2024, 6, 1), False),  # N-2
        ("15.2.1118.7", date(2022, 6, 1), True),  # CU12 was N then
        ("15.2.1748.10", date(2026, 1, 1), False),  # after end of extended support
        ("8.3.517.0", date(2016, 1, 1), True),  # latest service pack
        ("8.2.305.3", date(2016, 1, 1), False),  # older service pack
        ("15.2.196.0", date(2018, 8, 1), False),  # a preview is never supported
    ],
)
def test_support_is_n_and_n_minus_one_until_end_of_extended_support(catalog, text, on, is_supported):
    assert catalog.resolve(parse_reported_build(text), today=on).is_supported is is_supported


def test_latest_is_separate_from_supported(catalog):
    n_minus_one = catalog.resolve(parse_reported_build("15.2.1258.32"), today=TODAY)
    newest = catalog.resolve(parse_reported_build("15.2.1748.49"), today=date(2026, 11, 1))

    assert (n_minus_one.is_supported, n_minus_one.is_latest) == (True, False)
    assert newest.is_latest is True


def test_conflicting_build_from_another_source_resolves_with_a_conflict_note(catalog):
    info = build_info("14.3.328.5", catalog, today=TODAY)

    assert (info["level"], info["update"], info["kb"]) == ("SP2", "Update Rollup 5", "KB2719800")
    assert any("14.3.328.5 is listed by build-numbers-and-release-dates.md" in note for note in info["notes"])


def test_recalled_rollup_is_flagged(catalog):
    info = build_info("14.3.224.1", catalog, today=TODAY)

    assert info["update"] == "Update Rollup 8"
    assert "Update Rollup 8 was recalled; install its re-release" in info["notes"]


def test_legacy_and_unknown_versions_have_no_product(catalog):
    assert build_info("6.5.7654.4", catalog, today=TODAY)["notes"] == [
        "legacy Exchange (2003 or older): shown, never planned; no update of it is tracked (move its mailboxes to a "
        "supported version and decommission it)"
    ]
    assert build_info("14.4.1.1", catalog, today=TODAY)["product"] is None


def test_invalid_input_gets_an_error_and_no_values(catalog):
    info = build_info("15.2", catalog, today=TODAY)

    assert info["error"] == "'15.2' is not a build number: expected four numbers separated by dots, got 2 part(s)"
    assert (info["product"], info["build"], info["exact"]) == (None, None, False)


@pytest.mark.parametrize(
    ("product", "level", "latest"),
    [
        ("2007", "SP3", "Update Rollup 23"),
        ("2010", "SP3", "Update Rollup 32"),
        ("2013", "CU23", "Mar23SU"),
        ("2019", "CU14", "Aug26SU"),
    ],
)
def test_series_are_cumulative_within_one_level(catalog, product, level, latest):
    series = catalog.series(product, level)

    assert series[0].is_base
    assert [entry.build for entry in series] == sorted(entry.build for entry in series)
    assert catalog.latest_in_series(product, level).name == latest


# --- fault 2: the AD serialNumber form, and builds that cannot exist ---

AS_OF = date(2026, 8, 19)  # the bundled CSV's date, the newest build-number source of the snapshot


@pytest.fixture(scope="module")
def dated_catalog(catalog):
    return Catalog(catalog.entries, support=catalog.support, as_of=AS_OF)


@pytest.mark.parametrize(
    ("_case", "text", "product", "level", "build"),
    [
        ("the issue: 2019 CU12", "Version 15.2 (Build 31118.7)", "Exchange Server 2019", "CU12", "15.2.1118.7"),
        ("the issue: 2016 CU22", "Version 15.1 (Build 32375.7)", "Exchange Server 2016", "CU22", "15.1.2375.7"),
        ("2013 CU23", "Version 15.0 (Build 31497.2)", "Exchange Server 2013", "CU23", "15.0.1497.2"),
        ("2019 CU14", "Version 15.2 (Build 31544.4)", "Exchange Server 2019", "CU14", "15.2.1544.4"),
        ("SE RTM", "Version 15.2 (Build 32562.17)", "Exchange Server Subscription Edition", "RTM", "15.2.2562.17"),
        ("2010 SP3", "Version 14.3 (Build 30123.4)", "Exchange Server 2010", "SP3", "14.3.123.4"),
    ],
)
def test_the_ad_serial_number_form_is_read_and_named(catalog, _case, text, product, level, build):
    info = build_info(text, catalog, today=TODAY)

    assert (info["form"], info["build"], info["product"], info["level"], info["update"]) == (
        "ad_serial_number", build, product, level, None,
    )  # fmt: skip
    assert info["notes"][0].startswith(
        f"read as the Active Directory serialNumber form: Build {text.split()[-1][:-1]} is {build}"
    )
    assert "level unknown: the AD serialNumber shows the" in info["notes"][1]
    assert info["error"] is None


@pytest.mark.parametrize(
    ("_case", "text", "reason"),
    [
        (
            "a serialNumber build written as four numbers",
            "15.2.31118.7",
            "build number 31118 is far beyond every known 15.2 build (newest 15.2.2562.46; catalog as of 2026-08-19): no "
            "such Exchange build; an AD serialNumber 'Version 15.2 (Build 31118.7)' is 15.2.1118.7",
        ),
        (
            "the same for 2016",
            "15.01.32375.0007",
            "build number 32375 is far beyond every known 15.1 build (newest 15.1.2507.72; catalog as of 2026-08-19): no "
            "such Exchange build; an AD serialNumber 'Version 15.1 (Build 32375.7)' is 15.1.2375.7",
        ),
        (
            "2007",
            "8.3.30083.6",
            "build number 30083 is far beyond every known 8.3 build (newest 8.3.517.0; catalog as of 2026-08-19): no such "
            "Exchange build; an AD serialNumber 'Version 8.3 (Build 30083.6)' is 8.3.83.6",
        ),
        (
            "far beyond, and not a serialNumber either",
            "Version 15.2 (Build 12345.1)",
            "build number 12345 is far beyond every known 15.2 build (newest 15.2.2562.46; catalog as of 2026-08-19): no "
            "such Exchange build",
        ),
        (
            "a 2010 SP3 build years past its last rollup",
            "14.3.9999.0",
            "build number 9999 is far beyond every known 14.3 build (newest 14.3.513.0; catalog as of 2026-08-19): no "
            "such Exchange build",
        ),
    ],
)
def test_a_build_that_cannot_exist_is_an_error_never_the_nearest_level_or_se_rtm(dated_catalog, _case, text, reason):
    resolution = dated_catalog.resolve(parse_reported_build(text), today=TODAY)
    info = build_info(text, dated_catalog, today=TODAY)

    assert (resolution.product, resolution.level, resolution.entry, resolution.error) == (None, None, None, reason)
    assert info["error"] == f"{text!r} is not an Exchange build: {reason}"
    assert (info["product"], info["level"], info["is_supported"]) == (None, None, False)


# --- fault 8: newer than the catalog, and a catalog that is getting old ---


@pytest.mark.parametrize(
    ("_case", "text", "level", "is_latest", "note"),
    [
        (
            "an SE build above the last bundled SU",
            "15.2.2562.99", "RTM", None,
            "newer than the catalog: above Aug26SU 15.2.2562.46, the newest Exchange Server Subscription Edition RTM "
            "build it lists; catalog as of 2026-08-19",
        ),
        (
            "an SE CU the catalog does not list yet",
            "15.2.2600.1", None, None,
            "newer than the catalog: no Exchange Server Subscription Edition level with build number 2600 is listed "
            "(newest RTM 15.2.2562.17; catalog as of 2026-08-19); refresh the catalog",
        ),
        (
            "2016 CU23 above its last SU",
            "15.1.2507.99", "CU23", None,
            "newer than the catalog: above Aug26SU 15.1.2507.72, the newest Exchange Server 2016 CU23 build it lists; "
            "catalog as of 2026-08-19",
        ),
        (
            "2007 SP3 above its last rollup",
            "8.3.600.0", "SP3", None,
            "newer than the catalog: above Update Rollup 23 8.3.517.0, the newest Exchange Server 2007 SP3 build it "
            "lists; catalog as of 2026-08-19",
        ),
        (
            "above the rows of an older CU: a newer CU exists, so not the latest",
            "15.2.1258.99", "CU13", False,
            "newer than the catalog: above Nov24SU v2 15.2.1258.39, the newest Exchange Server 2019 CU13 build it lists; "
            "catalog as of 2026-08-19",
        ),
        (
            "between two listed builds: unlisted, not newer",
            "15.1.1415.9", "CU8", False,
            "unlisted build of Exchange Server 2016 CU8; nearest listed below: CU8 15.1.1415.2",
        ),
    ],
)  # fmt: skip
def test_a_build_newer_than_the_catalog_says_so_and_latest_is_unknown(
    dated_catalog, _case, text, level, is_latest, note
):
    info = build_info(text, dated_catalog, today=date(2026, 9, 1))

    assert (info["level"], info["update"], info["is_latest"], info["error"]) == (level, None, is_latest, None)
    assert note in info["notes"]


@pytest.mark.parametrize(
    ("on", "warned"),
    [(date(2026, 10, 3), False), (date(2026, 10, 4), True), (date(2027, 3, 1), True), (date(2026, 1, 1), False)],
)
def test_a_catalog_older_than_45_days_is_named_in_every_resolution(dated_catalog, on, warned):
    days = (on - AS_OF).days
    warning = (
        f"the catalog is {days} days old (as of 2026-08-19): updates released since are not in it; refresh it "
        "(catalog_import)"
    )

    for text in ("15.2.1544.9", "Version 8.3 (Build 83.6)", "15.2.2562.99"):
        info = build_info(text, dated_catalog, today=on)
        assert (warning in info["notes"]) is warned, text
        assert info["catalog_as_of"] == "2026-08-19"


def test_a_catalog_without_a_date_gives_no_age_warning(catalog):
    info = build_info("15.2.1544.9", catalog, today=date(2030, 1, 1))

    assert not any("days old" in note for note in info["notes"])
    assert info["catalog_as_of"] is None
