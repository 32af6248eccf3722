"""Our own hypothesis strategies for what broke the API in issue 10: Unicode (NUL, lone surrogates as values and keys,
non-ASCII digits, odd white space), lengths around each column's limit (with padding), and nesting (JSON deeper than
anything accepts, up to 100,000 levels). Derandomized with a fixed budget, so every run is the same run; on
PostgreSQL (.ci/run's second pass) the values reach the real database.

Properties: validation never raises and whatever it accepts fits the columns it is stored in; the API answers 2xx or
a 4xx in its JSON error shape, never a 5xx, and a refused write writes nothing.
"""

import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchangepatch.text import text_problem
from inventory.models import Change, Server
from inventory.records import FIELDS, MAX_LENGTHS, PREREQUISITE_FACTS, server_record_from_mapping

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
NASTY = [
    "\x00",
    "\ud800",
    "\udfff",
    "\udbff",
    "²",
    "٣",
    "\u212a",
    "\x1c",
    "\u2028",
    "\u00a0",
    "\ufeff",
    "é",
    "😀",
]

# Text from the whole of Unicode, lone surrogates included, with the characters that broke the API mixed in.
hostile_characters = st.one_of(st.sampled_from(NASTY), st.characters(exclude_categories=()))
hostile_text = st.text(hostile_characters, max_size=40)


@st.composite
def text_near_limit(draw, limit: int) -> str:
    """Text of about the column's length, padded with white space or not: the limit is where columns overflow."""
    length = draw(st.sampled_from([0, 1, limit - 1, limit, limit + 1, limit + 50]))
    body = draw(st.text(st.sampled_from("abcxyz0189.-_ ") | hostile_characters, min_size=length, max_size=length))
    padding = draw(st.sampled_from(["", " ", "   " * 40, "\t"]))
    return padding + body + padding


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | hostile_text
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=12,
)  # fmt: skip


@st.composite
def server_items(draw) -> dict:
    """An item with a valid FQDN (so validation goes past the key) and hostile values in the other fields."""
    host = draw(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True))
    item = {"fqdn": draw(st.sampled_from([f"{host}.fuzz.example", f"{host.upper()}.FUZZ.EXAMPLE. "]))}
    for name in draw(st.lists(st.sampled_from([f for f in FIELDS if f != "fqdn"]), max_size=5, unique=True)):
        limit = MAX_LENGTHS.get(name)
        strategy = json_values | (text_near_limit(limit) if limit else hostile_text)
        item[name] = draw(strategy)
    if draw(st.booleans()):
        item[draw(hostile_text)] = draw(json_values)  # an unknown (or hostile) key
    if draw(st.booleans()):
        item["prerequisites"] = draw(st.dictionaries(st.sampled_from(PREREQUISITE_FACTS) | hostile_text, json_values))
    return item


# -- validation, no database -----------------------------------------------------------------------


@FUZZ
@given(item=server_items(), typed=st.booleans())
def test_validation_never_raises_and_what_it_accepts_fits_the_columns(item, typed):
    record, errors = server_record_from_mapping(item, typed=typed)

    if record is None:
        assert errors
        for name, reason in errors.items():
            assert text_problem(name) is None and text_problem(reason) is None  # safe to render and to store
        return
    assert len(record.fqdn) <= MAX_LENGTHS["fqdn"] and record.fqdn.isascii()
    for name, value in record.values.items():
        texts = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        for text in (t for t in texts if isinstance(t, str)):
            assert text_problem(text) is None, (name, text)
            assert len(text) <= MAX_LENGTHS.get("build" if name == "reported_build" else name, 32), (name, text)


# -- the API, on the real database -----------------------------------------------------------------


def assert_refused_or_done(response) -> None:
    assert response.status_code < 500, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body["detail"], str)


@pytest.mark.django_db
@FUZZ
@given(items=st.lists(server_items(), min_size=1, max_size=3))
def test_sync_answers_200_or_a_400_and_a_refusal_writes_nothing(api, items):
    with transaction.atomic():
        before = (Server.objects.count(), Change.objects.count())
        response = api.post("/api/v1/servers/sync/", {"source": "fuzz", "items": items}, format="json")
        assert_refused_or_done(response)
        if response.status_code != 200:
            assert (Server.objects.count(), Change.objects.count()) == before
        transaction.set_rollback(True)


@pytest.mark.django_db
@FUZZ
@given(item=server_items(), method=st.sampled_from(["post", "patch"]))
def test_server_writes_answer_2xx_or_4xx(api, item, method):
    with transaction.atomic():
        if method == "patch":
            api.post("/api/v1/servers/", {"fqdn": "fixed.fuzz.example"}, format="json")
            response = api.patch("/api/v1/servers/fixed.fuzz.example/", {**item, "fqdn": "fixed.fuzz.example"},
                                 format="json")  # fmt: skip
        else:
            response = api.post("/api/v1/servers/", item, format="json")
        assert_refused_or_done(response)
        transaction.set_rollback(True)


@pytest.mark.django_db
@FUZZ
@given(depth=st.sampled_from([31, 32, 33, 100, 900, 5_000, 100_000]), inside=st.booleans())
def test_any_nesting_is_accepted_or_a_400(api, depth, inside):
    body = {"source": "fuzz", "items": [{"fqdn": "deep.fuzz.example", "prerequisites": "DEEP"}]} if inside else "DEEP"
    text = json.dumps(body).replace('"DEEP"', "[" * depth + "]" * depth)

    with transaction.atomic():
        response = api.post("/api/v1/servers/sync/", text, content_type="application/json")
        assert_refused_or_done(response)
        assert response.status_code == 400
        assert not Server.objects.exists()
        transaction.set_rollback(True)


@pytest.mark.django_db
@FUZZ
@given(value=hostile_text.filter(lambda t: "/" not in t and "?" not in t and "#" not in t and t not in ("", ".", "..")))
def test_hostile_path_and_query_values_get_a_json_4xx(api, value):
    from urllib.parse import quote

    safe = quote(value.encode("utf-8", "surrogatepass"), safe="")
    for path in (f"/api/v1/servers/{safe}/", f"/api/v1/changes/?after={safe}", f"/api/v1/servers/?limit={safe}",
                 f"/api/v1/fixes/{safe}/missing/", f"/api/v1/servers/?site={safe}&role={safe}"):  # fmt: skip
        response = api.get(path)
        assert_refused_or_done(response)
        assert response.status_code in (200, 400, 404), (path, response.status_code)
