"""Update names in every spelling, references in free text, and the update(s) a document belongs to (no database).

Spellings are Microsoft's own (build page, CSV, blog titles); document titles marked invented are made up in the shape
of real ones. Catalog rows are the bundled snapshot's.
"""

import pytest

from kb.engine.catalog import Kind
from kb.engine.names import (
    Reference,
    UpdateChoiceError,
    UpdateName,
    canonical_update_name,
    find_references,
    parse_release_name,
    parse_update_name,
    updates_for_document,
)

NOV24SU_V2 = UpdateName(Kind.SU, label="Nov24SU", revision=2)
RU3_V3 = UpdateName(Kind.RU, number=3, revision=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Fault 5: Microsoft's spellings of one re-release are one update.
        ("Nov24SUv2", NOV24SU_V2),  # CSV, HealthChecker
        ("Nov24SU-v2", NOV24SU_V2),
        ("Nov24SU v2", NOV24SU_V2),  # the catalog's own
        ("nov24su V2", NOV24SU_V2),
        ("Nov24SU (v2)", NOV24SU_V2),
        ("Update Rollup 3-v3", RU3_V3),  # build page, 2007 and 2010 rollups
        ("Update Rollup 3 v3", RU3_V3),
        ("Update Rollup 3v3", RU3_V3),
        ("RU3v3", RU3_V3),  # CSV
        ("RU3-v3", RU3_V3),
        ("RU 3 v3", RU3_V3),
        ("Rollup 3 version 3", RU3_V3),
        # other months, kinds and first releases
        ("Aug23SUv2", UpdateName(Kind.SU, label="Aug23SU", revision=2)),
        ("Apr24HU", UpdateName(Kind.HU, label="Apr24HU")),
        ("Mar24SU v1", UpdateName(Kind.SU, label="Mar24SU")),
        ("UR6", UpdateName(Kind.RU, number=6)),
        ("Update Rollup 32", UpdateName(Kind.RU, number=32)),
        ("first rollup", UpdateName(Kind.RU, number=1)),
        ("second update rollup", UpdateName(Kind.RU, number=2)),
        ("May 2022 security update", UpdateName(Kind.SU, label="May22SU")),
        ("November 2024 Exchange Server Security Updates", UpdateName(Kind.SU, label="Nov24SU")),
        ("April 2024 hotfix update", UpdateName(Kind.HU, label="Apr24HU")),
    ],
)
def test_every_spelling_of_an_update_name_reads_the_same(text, expected):
    assert parse_update_name(text) == expected
    assert canonical_update_name(text) == expected.display


@pytest.mark.parametrize("text", ["CU14", "Exchange 2019", "SP3", "Nov24", "KB5049233", "15.2.1544.14", "", "RU"])
def test_a_level_product_kb_or_build_is_not_an_update_name(text):
    assert parse_update_name(text) is None


@pytest.mark.parametrize(
    ("text", "product", "level", "name"),
    [
        ("Update Rollup 4-v2 for Exchange Server 2010 SP1", "2010", "SP1", UpdateName(Kind.RU, number=4, revision=2)),
        ("Update Rollup 19 forExchange Server 2007 SP3", "2007", "SP3", UpdateName(Kind.RU, number=19)),
        ("Exchange 2019 CU14 Nov24SUv2", "2019", "CU14", NOV24SU_V2),
        ("Exchange Server 2019 CU14 Nov24SU-v2", "2019", "CU14", NOV24SU_V2),
        ("Exchange 2007 SP3 RU8v3", "2007", "SP3", UpdateName(Kind.RU, number=8, revision=3)),
        ("Exchange 2007 SP1 RTM", "2007", "SP1", None),
        ("Exchange Server 2016 Cumulative Update 23", "2016", "CU23", None),
        ("Exchange Server 2010 Service Pack 3", "2010", "SP3", None),
        ("Exchange Server Subscription Edition RTM", "SE", "RTM", None),
        ("Update Rollup 5 for Exchange Server 2010", "2010", None, UpdateName(Kind.RU, number=5)),
        ("Exchange Server 2007", "2007", "RTM", None),
    ],
)
def test_parse_release_name_reads_whole_names_of_the_build_tables(text, product, level, name):
    assert parse_release_name(text) == Reference(product, level, name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Fault 4: ordinals and words name the update.
        (
            "Microsoft has released the first rollup for Exchange 2010 SP2",  # invented, after a real title
            [Reference("2010", "SP2", UpdateName(Kind.RU, number=1))],
        ),
        ("Exchange 2010 SP1 Rollup 4 released", [Reference("2010", "SP1", UpdateName(Kind.RU, number=4))]),
        (
            "Today the Exchange Team released Rollup 6 for Exchange Server 2007 Service Pack 3 (KB2608656).",
            [Reference("2007", "SP3", UpdateName(Kind.RU, number=6))],
        ),
        ("Released: March 2021 Exchange Server Security Updates", [Reference(None, None, UpdateName(Kind.SU, label="Mar21SU"))]),
        ("Exchange 2019 CU11 May 2022", [Reference("2019", "CU11", UpdateName(Kind.SU, label="May22SU"))]),
        ("Exchange 2016 RU5", [Reference("2016", None, UpdateName(Kind.RU, number=5))]),
        ("Cumulative Update 14 for Exchange Server 2019", [Reference("2019", "CU14", None)]),
        ("Exchange 2019 CU12 | 15.2.1118.7 | KB5011156", [Reference("2019", "CU12", None)]),
        (
            "Exchange 2010 SP3 RU5 and Exchange 2007 SP3 RU12 are out",  # invented
            [
                Reference("2010", "SP3", UpdateName(Kind.RU, number=5)),
                Reference("2007", "SP3", UpdateName(Kind.RU, number=12)),
            ],
        ),
        ("Exchange 2016 is here", []),
        ("nothing about Exchange releases", []),
    ],
)  # fmt: skip
def test_find_references_reads_titles_and_prose(text, expected):
    assert find_references(text) == expected


def titles(entries):
    return [entry.title for entry in entries]


@pytest.mark.parametrize(
    ("_case", "title", "intro", "kbs", "expected"),
    [
        ("real: 2010 SP1 RU4 post", "Exchange 2010 SP1 Rollup 4 released", (), (), ["Exchange Server 2010 SP1 Update Rollup 4"]),
        ("real: 2007 SP3 RU6 post", "Exchange 2007 SP3 Update Rollup 6", ("released Rollup 6 for Exchange Server 2007 Service Pack 3 (KB2608656).",), ("KB2608656",), ["Exchange Server 2007 SP3 Update Rollup 6"]),
        ("invented: an ordinal names the rollup, not SP2 itself", "The first rollup for Exchange 2010 SP2 is available", (), (), ["Exchange Server 2010 SP2 Update Rollup 1"]),
        (
            "invented: a re-release spelling; its KB (KB5049233) also shipped for 2016 CU23 and 2019 CU13",
            "Exchange 2019 CU14 Nov24SUv2 is out", (), (),
            ["Exchange Server 2016 CU23 Nov24SU v2", "Exchange Server 2019 CU13 Nov24SU v2", "Exchange Server 2019 CU14 Nov24SU v2"],
        ),
        (
            "invented: one SU KB over several CUs and products gets the fixes on each",
            "Released: November 2024 Exchange Server Security Updates v2", (), (),
            ["Exchange Server 2016 CU23 Nov24SU v2", "Exchange Server 2019 CU13 Nov24SU v2", "Exchange Server 2019 CU14 Nov24SU v2"],
        ),
        (
            "invented: the KB in the introduction picks the products of the month",
            "Released: May 2022 Exchange Server Security Updates",
            ("| Product | KB |", "| Exchange 2019 CU12 | KB5014261 |"), ("KB5014261",),
            ["Exchange Server 2016 CU22 May22SU", "Exchange Server 2016 CU23 May22SU", "Exchange Server 2019 CU11 May22SU", "Exchange Server 2019 CU12 May22SU"],
        ),
        ("invented: a KB alone", "Security update notes", ("This article describes KB5000871.",), ("KB5000871",), None),
        (
            "a KB article's title: the 2013 article of July 2021 is 2013's alone (the CSV gave its KB to 2016 and 2019)",
            "Description of the security update for Microsoft Exchange Server 2013: July 13, 2021 (KB5004778)", (),
            ("KB5004778",), ["Exchange Server 2013 CU23 Jul21SU"],
        ),
        (
            "a KB article for two products",
            "Description of the security update for Microsoft Exchange Server 2019 and 2016: March 8, 2022 (KB5012698)",
            (), ("KB5012698",),
            ["Exchange Server 2016 CU21 Mar22SU", "Exchange Server 2016 CU22 Mar22SU", "Exchange Server 2019 CU10 Mar22SU", "Exchange Server 2019 CU11 Mar22SU"],
        ),
        (
            "a CU's KB article is that CU's own release",
            "Cumulative Update 23 for Exchange Server 2016 (KB5011155)", (), ("KB5011155",), ["Exchange Server 2016 CU23"],
        ),
        ("invented: a CU's own release", "Cumulative Update 14 for Exchange Server 2019", (), (), ["Exchange Server 2019 CU14"]),
        ("invented: May 2022 after a level", "What Exchange 2019 CU11 May 2022 fixes", (), (), ["Exchange Server 2016 CU22 May22SU", "Exchange Server 2016 CU23 May22SU", "Exchange Server 2019 CU11 May22SU", "Exchange Server 2019 CU12 May22SU"]),
    ],
)  # fmt: skip
def test_updates_for_document(catalog, _case, title, intro, kbs, expected):
    updates = updates_for_document(catalog, title=title, intro=intro, kbs=kbs)

    if expected is None:  # every row of KB5000871: Mar21SU of older 2013, 2016 and 2019 CUs
        assert {entry.kb for entry in updates} == {"KB5000871"}
        assert {entry.product for entry in updates} == {"2013", "2016", "2019"}
        assert len(updates) == len(catalog.by_kb("KB5000871")) > 20
    else:
        assert titles(updates) == expected


@pytest.mark.parametrize(
    ("_case", "title", "intro", "kbs", "message"),
    [
        (
            "invented: a month whose SU has one KB per product",
            "Released: July 2021 Exchange Server Security Updates", (), (),
            "the document names Jul21SU, which is 3 different updates; candidates: KB5004778: Exchange Server 2013 CU23 "
            "Jul21SU; KB5004779: Exchange Server 2016 CU20 Jul21SU, Exchange Server 2016 CU21 Jul21SU; KB5004780: "
            "Exchange Server 2019 CU9 Jul21SU, Exchange Server 2019 CU10 Jul21SU; pass --update KB",
        ),
        (
            "invented: an SU post whose table starts with a CU row is not that CU's release",
            "Security updates for Exchange Server", ("| Exchange 2019 CU12 | 15.2.1118.7 | |",), (),
            "cannot tell which update the fixes belong to (no update named in its title or introduction); pass --update KB",
        ),
        (
            "invented: a rollup number without its service pack",
            "Exchange 2010 Rollup 5 released", (), (),
            "the document names Exchange 2010 Update Rollup 5, which is 4 different updates; candidates: KB2407113: "
            "Exchange Server 2010 RTM Update Rollup 5; KB2582113: Exchange Server 2010 SP1 Update Rollup 5; KB2719800: "
            "Exchange Server 2010 SP2 Update Rollup 5; KB2917508: Exchange Server 2010 SP3 Update Rollup 5; pass --update KB",
        ),
        (
            "invented: a level of several products",
            "Exchange CU23 released", (), (),
            "cannot tell which update the fixes belong to (no update named in its title or introduction); pass --update KB",
        ),
        (
            "invented: an update the catalog does not have",
            "Exchange 2010 SP3 Rollup 40 released", (), (),
            "the document names Exchange 2010 SP3 Update Rollup 40, which is not in the catalog; pass --update KB",
        ),
    ],
)  # fmt: skip
def test_a_document_naming_no_single_update_is_refused_with_candidates(catalog, _case, title, intro, kbs, message):
    with pytest.raises(UpdateChoiceError) as error:
        updates_for_document(catalog, title=title, intro=intro, kbs=kbs)

    assert str(error.value) == message


def test_a_base_level_is_never_chosen_from_the_introduction(catalog):
    with pytest.raises(UpdateChoiceError):
        updates_for_document(catalog, title="Notes", intro=("Exchange 2019 CU12 is required first.",), kbs=())
