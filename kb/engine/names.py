"""Update names as Microsoft and administrators spell them, read one way by every reader (plans, imports, documents)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .catalog import Catalog, CatalogEntry, Kind, update_name

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_MONTH_WORD = (
    r"(?P<month>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_ORDINALS = {
    word: number
    for number, words in enumerate(
        (
            ("first", "1st"), ("second", "2nd"), ("third", "3rd"), ("fourth", "4th"), ("fifth", "5th"),
            ("sixth", "6th"), ("seventh", "7th"), ("eighth", "8th"), ("ninth", "9th"), ("tenth", "10th"),
            ("eleventh", "11th"), ("twelfth", "12th"), ("thirteenth", "13th"), ("fourteenth", "14th"),
            ("fifteenth", "15th"), ("sixteenth", "16th"), ("seventeenth", "17th"), ("eighteenth", "18th"),
            ("nineteenth", "19th"), ("twentieth", "20th"),
        ),
        start=1,
    )
    for word in words
}  # fmt: skip
_ORDINAL = "|".join(sorted(_ORDINALS, key=len, reverse=True))

# A re-release suffix in every spelling Microsoft used: "v2", "-v2", " v2", "(v2)", "Version 2".
_REVISION = r"(?:\s*[-_]?\s*\(?\s*v(?:ersion)?\s*(?P<{}>\d{{1,2}})\s*\)?)?"
_ROLLUP = rf"(?:(?:Update\s+)?Rollup|RU|UR)\s*[-#]?\s*(?P<number>\d{{1,3}})(?!\d){_REVISION.format('ru_revision')}"
_LABEL = rf"(?P<label>{_MONTH}\d{{2}}(?:SU|HU)){_REVISION.format('su_revision')}"
_UPDATE_NAME = re.compile(rf"\s*(?:{_ROLLUP}|{_LABEL})\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UpdateName:
    """An update within its level as a name states it: a rollup number or an SU/HU label, and its re-release."""

    kind: Kind  # RU, SU or HU
    number: int | None = None
    label: str | None = None
    revision: int = 1

    @property
    def display(self) -> str:
        """The catalog's own spelling: "Update Rollup 3 v3", "Nov24SU v2"."""
        return update_name(self.kind, number=self.number, label=self.label, revision=self.revision) or ""


def parse_update_name(text: str) -> UpdateName | None:
    """Read an update name in any spelling ("Nov24SUv2", "Nov24SU-v2", "RU3v3", "Update Rollup 3-v3"); None if it is
    not one. A revision of 1 ("v1") is the first release."""
    match = _UPDATE_NAME.fullmatch(_words_to_names(text))
    return _name_from(match) if match else None


def canonical_update_name(text: str) -> str | None:
    """The catalog's spelling of an update name, or None when the text names no update (RU, SU or HU)."""
    name = parse_update_name(text)
    return name.display if name else None


def _name_from(match: re.Match[str]) -> UpdateName:
    revision = int(match["ru_revision"] or match["su_revision"] or 1)
    if match["label"]:
        label = match["label"]
        label = label[:3].title() + label[3:5] + label[5:].upper()
        return UpdateName(Kind.HU if label.endswith("HU") else Kind.SU, label=label, revision=max(revision, 1))
    return UpdateName(Kind.RU, number=int(match["number"]), revision=max(revision, 1))


def _words_to_names(text: str) -> str:
    """Spelled-out forms to the short ones: "first rollup" → "Rollup 1", "May 2022 security update" → "May22SU"."""
    text = text.replace("\xa0", " ")
    text = re.sub(
        rf"\b(?P<ordinal>{_ORDINAL})\s+(?:update\s+)?rollup\b",
        lambda m: f"Rollup {_ORDINALS[m['ordinal'].lower()]}",
        text,
        flags=re.IGNORECASE,
    )
    text = re.sub(
        rf"\b{_MONTH_WORD}\.?\s+(?:20)?(?P<year>\d\d)(?!\d)\s+(?:Exchange\s+(?:Server\s+)?)?"
        r"(?:(?P<kind>Security|Hotfix|SU|HU)(?:\s+Updates?)?|Updates?)\b",
        lambda m: f"{m['month'][:3].title()}{m['year']}{(m['kind'] or 'S')[0].upper()}U",
        text,
        flags=re.IGNORECASE,
    )
    return text


# -- references in free text -----------------------------------------------------------------------

_PRODUCT = r"\bExchange\s*(?P<product>2007|2010|2013|2016|2019|SE)\b"
_LEVEL = r"(?P<level>SP\d|CU\d{1,2}|RTM|Preview)\b"
_UPDATE = rf"\b(?:{_ROLLUP}|{_LABEL})(?!\w)"
_REFERENCE_PATTERNS = (
    # "Update Rollup 6 for Exchange 2007 SP3", "Rollup 4 for Exchange 2010 SP1"
    re.compile(rf"{_UPDATE}\s+(?:for\s+)?{_PRODUCT}(?:\s+{_LEVEL})?", re.IGNORECASE),
    # "Exchange 2019 CU14 Mar24SU", "Exchange 2010 SP1 RU4", "Exchange 2016 CU23", "Exchange 2007 SP1 RTM"
    re.compile(rf"{_PRODUCT}(?:\s+{_LEVEL})?(?:\s+RTM\b|\s+{_UPDATE})?", re.IGNORECASE),
    # "CU14 for Exchange 2019" (after "Cumulative Update 14" is shortened)
    re.compile(rf"\b{_LEVEL}\s+for\s+{_PRODUCT}", re.IGNORECASE),
    # "Mar24SU for CU14", an update name on its own: its product comes from elsewhere in the text
    re.compile(rf"{_UPDATE}(?:\s+for\s+{_LEVEL})?", re.IGNORECASE),
)


@dataclass(frozen=True, slots=True)
class Reference:
    """A mention of an Exchange release in text: any part may be missing ("Mar22SU" alone names no product)."""

    product: str | None
    level: str | None
    name: UpdateName | None

    def describe(self) -> str:
        parts = [
            f"Exchange {self.product}" if self.product else "",
            self.level or "",
            self.name.display if self.name else "",
        ]
        return " ".join(part for part in parts if part)


def normalise_release_text(text: str) -> str:
    """One spelling for the words around releases: "Exchange Server" → "Exchange", "Cumulative Update 14" → "CU14"."""
    text = _words_to_names(re.sub(r"\bfor(?=Exchange)", "for ", text, flags=re.IGNORECASE))
    text = re.sub(r"\bExchange\s+Server\b", "Exchange", text, flags=re.IGNORECASE)
    text = re.sub(r"\bExchange\s+(?:Server\s+)?Subscription\s+Edition\b", "Exchange SE", text, flags=re.IGNORECASE)
    text = re.sub(r"\bCumulative\s+Update\s*(\d{1,2})\b", r"CU\1", text, flags=re.IGNORECASE)
    text = re.sub(r"\bService\s+Pack\s*(\d)\b", r"SP\1", text, flags=re.IGNORECASE)
    # "CU12 May 2022": a month after a level names that month's security update.
    text = re.sub(
        rf"\b(?P<level>CU\d{{1,2}}|SP\d|RTM)\s+{_MONTH_WORD}\.?\s+(?:20)?(?P<year>\d\d)(?!\d)",
        lambda m: f"{m['level']} {m['month'][:3].title()}{m['year']}SU",
        text,
        flags=re.IGNORECASE,
    )
    return " ".join(text.split())


def find_references(text: str) -> list[Reference]:
    """Every release the text mentions, in order of appearance; overlapping mentions keep the longest."""
    text = normalise_release_text(text)
    matches = sorted(
        (m for pattern in _REFERENCE_PATTERNS for m in pattern.finditer(text)), key=lambda m: (m.start(), -m.end())
    )
    references, end = [], -1
    for match in matches:
        if match.start() < end:
            continue
        if (reference := _reference_from(match)) is not None:
            references.append(reference)
            end = match.end()
    return references


def parse_release_name(text: str) -> Reference | None:
    """A whole name of one release, as the build tables and plans state it: "Update Rollup 4-v2 for Exchange Server
    2010 SP1", "Exchange 2019 CU14 Nov24SUv2", "Exchange Server 2016 CU23", "Exchange Server 2007" (its RTM)."""
    text = normalise_release_text(text)
    for pattern in _REFERENCE_PATTERNS[:3]:
        if (match := pattern.fullmatch(text)) and match["product"]:
            return _reference_from(match) or Reference(match["product"].upper(), "RTM", None)
    return None


def _reference_from(match: re.Match[str]) -> Reference | None:
    groups = match.groupdict()
    product = groups["product"].upper() if groups.get("product") else None
    level = groups.get("level")
    if level:
        level = "Preview" if level.lower() == "preview" else level.upper()
    name = _name_from(match) if groups.get("number") or groups.get("label") else None
    if name is None and level is None:
        return None  # "Exchange 2010" alone names a product, not a release
    return Reference(product, level, name)


_PRODUCT_ALONE = re.compile(r"\bExchange\s*(2007|2010|2013|2016|2019|SE)\b", re.IGNORECASE)
_UPDATE_WORDS = re.compile(
    rf"\b(?:rollups?|RU\d|UR\d|security\s+updates?|hotfix(?:\s+updates?)?|{_MONTH}\d\d(?:SU|HU))", re.IGNORECASE
)


def find_products(text: str) -> list[str]:
    """Products the text names ("Exchange 2019", "Exchange Server SE"), in order, once each."""
    found = (match.group(1).upper() for match in _PRODUCT_ALONE.finditer(normalise_release_text(text)))
    return list(dict.fromkeys(found))


# -- the update(s) a document belongs to -----------------------------------------------------------


class UpdateChoiceError(ValueError):
    """A document does not name one update; the message says why and lists the candidates by KB."""

    def __init__(self, reason: str, candidates: Sequence[CatalogEntry] = ()) -> None:
        self.reason = reason
        self.candidates = tuple(candidates)
        listed = f"; candidates: {describe_candidates(self.candidates)}" if self.candidates else ""
        super().__init__(f"{reason}{listed}; pass --update KB")


def describe_candidates(entries: Iterable[CatalogEntry]) -> str:
    """ "KB5004779: Exchange Server 2016 CU20 Jul21SU, Exchange Server 2016 CU21 Jul21SU; KB5004780: …"."""
    by_kb: dict[str, list[str]] = {}
    for entry in sorted(entries, key=lambda e: (e.kb or "", e.product, e.build)):
        by_kb.setdefault(entry.kb or "no KB", []).append(entry.title)
    return "; ".join(f"{kb}: {', '.join(titles)}" for kb, titles in by_kb.items())


def updates_for_document(
    catalog: Catalog, *, title: str | None, intro: Sequence[str] = (), kbs: Iterable[str] = ()
) -> tuple[CatalogEntry, ...]:
    """The catalog rows a fix list belongs to, from its title, the text before its list and the KBs named there.

    An update named by rollup number, ordinal or SU/HU label wins; a KB named in the document confirms or picks
    among the candidates; every row that shares the chosen KB gets the fixes (one security update KB ships as
    one build per CU and product). A base level (RTM, SP, CU) is chosen only when the title is that level's own
    release. Anything else raises UpdateChoiceError with the candidates.
    """
    title = title or ""
    title_refs = find_references(title)
    products = set(find_products(title)) or {p for line in intro for p in find_products(line)}
    named = [ref for ref in title_refs if ref.name] or [
        ref for line in intro for ref in find_references(line) if ref.name
    ]
    stated_kbs = {kb for kb in kbs if catalog.by_kb(kb)}
    by_kb = [entry for kb in sorted(stated_kbs) for entry in catalog.by_kb(kb) if not entry.is_base]

    if named:
        candidates = _unique(entry for ref in named for entry in _entries_named(catalog, ref, products))
        if not candidates:
            raise UpdateChoiceError(f"the document names {named[0].describe()}, which is not in the catalog", by_kb)
        confirmed = [entry for entry in candidates if entry.kb in stated_kbs]
        return _one_kb(catalog, confirmed or candidates, f"the document names {named[0].describe()}")
    if by_kb:
        return _one_kb(catalog, by_kb, "the document names " + ", ".join(sorted(stated_kbs)))
    # A level named with its product in a title that names no update: the document is that level's own release.
    if not _UPDATE_WORDS.search(title):
        for ref in title_refs:
            base = catalog.series(ref.product, ref.level)[:1] if ref.product and ref.level and not ref.name else []
            if base and base[0].is_base:
                return (base[0],)
    raise UpdateChoiceError(
        "cannot tell which update the fixes belong to (no update named in its title or introduction)"
    )


def _entries_named(catalog: Catalog, ref: Reference, products: set[str]) -> list[CatalogEntry]:
    name = ref.name
    assert name is not None
    wanted = (name.kind, name.number, name.label, name.revision)
    return [
        entry
        for entry in catalog.entries
        if (entry.kind, entry.number, entry.label, entry.revision) == wanted
        and (entry.product == ref.product if ref.product else not products or entry.product in products)
        and (ref.level is None or entry.level == ref.level)
    ]


def _one_kb(catalog: Catalog, entries: Sequence[CatalogEntry], reason: str) -> tuple[CatalogEntry, ...]:
    """The rows of the one KB among the candidates, with every other row that shares it, or an error listing them."""
    kbs = {entry.kb for entry in entries}
    if len(kbs) > 1:
        raise UpdateChoiceError(f"{reason}, which is {len(kbs)} different updates", entries)
    (kb,) = kbs
    if kb is None:
        return tuple(entries)
    return tuple(_unique([*entries, *(entry for entry in catalog.by_kb(kb) if not entry.is_base)]))


def _unique(entries: Iterable[CatalogEntry]) -> list[CatalogEntry]:
    return sorted({entry.identity: entry for entry in entries}.values(), key=lambda e: (e.product, e.build, e.revision))
