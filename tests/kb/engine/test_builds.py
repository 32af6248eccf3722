"""Build parsing, comparison and product mapping: every real form, every malformed one."""

import ast
from pathlib import Path

import pytest

from kb.engine.builds import Build, BuildForm, InvalidBuildError, parse_build, parse_reported_build, product_for_build

ENGINE = Path(__file__).resolve().parents[3] / "kb" / "engine"


@pytest.mark.parametrize(
    ("_case", "text", "expected", "form"),
    [
        ("short", "15.2.1544.4", Build(15, 2, 1544, 4), BuildForm.SHORT),
        ("long / ExSetup file version", "15.02.1544.004", Build(15, 2, 1544, 4), BuildForm.LONG),
        ("AdminDisplayVersion 2019", "Version 15.2 (Build 1544.4)", Build(15, 2, 1544, 4), BuildForm.ADMIN_DISPLAY),
        ("AdminDisplayVersion 2007", "Version 8.3 (Build 83.6)", Build(8, 3, 83, 6), BuildForm.ADMIN_DISPLAY),
        ("surrounding blanks", "  8.3.245.2\n", Build(8, 3, 245, 2), BuildForm.SHORT),
        ("zero-padding typo in the docs", "8.01.0336.01", Build(8, 1, 336, 1), BuildForm.LONG),
        ("csv long form", "14.03.0513.000", Build(14, 3, 513, 0), BuildForm.LONG),
        ("ExSetup of 2007, zero-padded major", "08.03.0245.002", Build(8, 3, 245, 2), BuildForm.LONG),
        # Fault 2: the server object's serialNumber in Active Directory adds 30000 to the build number.
        ("AD serialNumber 2019 CU12 (the issue)", "Version 15.2 (Build 31118.7)", Build(15, 2, 1118, 7), BuildForm.AD_SERIAL_NUMBER),
        ("AD serialNumber 2016 CU22 (the issue)", "Version 15.1 (Build 32375.7)", Build(15, 1, 2375, 7), BuildForm.AD_SERIAL_NUMBER),
        ("AD serialNumber 2013 CU23", "Version 15.0 (Build 31497.2)", Build(15, 0, 1497, 2), BuildForm.AD_SERIAL_NUMBER),
        ("AD serialNumber SE RTM", "Version 15.2 (Build 32562.17)", Build(15, 2, 2562, 17), BuildForm.AD_SERIAL_NUMBER),
        ("AD serialNumber 2010 SP3", "Version 14.3 (Build 30123.4)", Build(14, 3, 123, 4), BuildForm.AD_SERIAL_NUMBER),
        ("AD serialNumber 2007 SP3", "version 8.3 (build 30083.6)", Build(8, 3, 83, 6), BuildForm.AD_SERIAL_NUMBER),
        # Fault 6: Exchange 2003 states its service pack in the same text; it parses (and resolves as legacy).
        ("Exchange 2003 SP2", "Version 6.5 (Build 7638.2: Service Pack 2)", Build(6, 5, 7638, 2), BuildForm.ADMIN_DISPLAY),
        ("Exchange 2000 SP3", "Version 6.0 (Build 6249.4: Service Pack 3)", Build(6, 0, 6249, 4), BuildForm.ADMIN_DISPLAY),
        ("copied from a web page, with direction marks", "\u200e15.2.1544.4\u200f", Build(15, 2, 1544, 4), BuildForm.SHORT),
    ],
)  # fmt: skip
def test_parse_reported_build_accepts_every_real_form(_case, text, expected, form):
    parsed = parse_reported_build(text)

    assert parsed.build == expected
    assert parsed.form is form


@pytest.mark.parametrize(
    ("_case", "text", "reason"),
    [
        ("two parts", "15.2", "got 2 part(s)"),
        ("letters", "abc", "got 1 part(s)"),
        ("negative", "15.2.-1.4", "'-1' is not a non-negative ASCII number"),
        ("five parts", "15.2.1544.4.1", "got 5 part(s)"),
        ("forty digits", "1" * 40 + ".2.1.1", "larger than 65535"),
        ("above 16 bits", "15.2.70000.1", "larger than 65535"),
        ("empty", "", "empty"),
        ("blank", "   ", "empty"),
        ("non-ASCII digits", "١٥.2.1544.4", "not a non-negative ASCII number"),
        ("empty part", "15..1544.4", "'' is not a non-negative ASCII number"),
        ("broken AdminDisplayVersion", "Version 15.2 Build 1544", "expected 'Version M.m (Build B.r)'"),
        (
            "AdminDisplayVersion with other words",
            "Version 15.2 (Build 1544.4: Cumulative Update 14)",
            "expected 'Version M.m (Build B.r)'",
        ),
        ("not text", None, "expected text"),
    ],
)
def test_parse_build_rejects_malformed_input_naming_it(_case, text, reason):
    with pytest.raises(InvalidBuildError) as error:
        parse_build(text)

    assert reason in str(error.value)
    assert repr(text) in str(error.value)


@pytest.mark.parametrize(
    ("form", "is_level_only"),
    [
        (BuildForm.SHORT, False),
        (BuildForm.LONG, False),
        (BuildForm.ADMIN_DISPLAY, True),
        (BuildForm.AD_SERIAL_NUMBER, True),
    ],
)
def test_only_the_exsetup_forms_show_the_update(form, is_level_only):
    assert form.is_level_only is is_level_only


def test_builds_compare_as_integers_not_strings():
    assert parse_build("15.2.986.5") < parse_build("15.2.1544.4")
    assert parse_build("8.3.83.6") < parse_build("8.3.245.2")
    assert sorted([parse_build("15.1.2507.6"), parse_build("15.1.225.42")])[0] == Build(15, 1, 225, 42)


def test_build_renders_short_and_long_forms():
    build = Build(15, 2, 986, 5)

    assert (build.short, build.long) == ("15.2.986.5", "15.02.0986.005")


@pytest.mark.parametrize(
    ("text", "product"),
    [
        ("8.0.685.25", "2007"),
        ("8.3.517.0", "2007"),
        ("14.0.639.21", "2010"),
        ("14.3.513.0", "2010"),
        ("15.0.1497.48", "2013"),
        ("15.1.2507.6", "2016"),
        ("15.2.2561.99", "2019"),
        ("15.2.2562.17", "SE"),
        ("6.5.7654.4", None),
        ("14.4.1.1", None),
    ],
)
def test_product_for_build_maps_major_minor_and_the_se_boundary(text, product):
    info = product_for_build(parse_build(text))

    assert (info.key if info else None) == product


def test_engine_imports_no_django_drf_or_celery():
    forbidden = {"django", "rest_framework", "celery"}
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] in forbidden]

    assert offenders == []
