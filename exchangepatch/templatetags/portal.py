"""Template helpers of the portal: state badges in one colour per state, version text, querystrings."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from inventory.choices import State
from inventory.formats import level_text as _level_text

register = template.Library()

# One colour per state, the same in badges and charts; worst states in the warmest colours.
STATE_COLOURS = {
    State.CURRENT: "#198754",
    State.EXCEPTED: "#0dcaf0",
    State.UPDATE_AVAILABLE: "#ffc107",
    State.SECURITY_UPDATE_MISSING: "#dc3545",
    State.UNSUPPORTED_LEVEL: "#fd7e14",
    State.END_OF_LIFE: "#6f42c1",
    State.ROLLUP_UNKNOWN: "#6c757d",
    State.UNKNOWN_BUILD: "#adb5bd",
    State.LEGACY: "#343a40",  # Exchange 2003 or older: shown, never planned
}
DARK_TEXT = {State.EXCEPTED, State.UPDATE_AVAILABLE, State.UNKNOWN_BUILD}


def state_label(state: str | None) -> str:
    if not state:
        return "Not scanned yet"
    try:
        return State(state).label
    except ValueError:
        return state


@register.filter
def state_badge(state: str | None):
    """A coloured label for a verdict state; "not scanned yet" when there is none."""
    colour = STATE_COLOURS.get(state, "#e9ecef")
    text = "#212529" if state in DARK_TEXT or state not in STATE_COLOURS else "#fff"
    return format_html(
        '<span class="badge state-badge" data-state="{}" style="background:{};color:{}">{}</span>',
        state or "",
        colour,
        text,
        state_label(state),
    )


@register.filter
def level_text(info) -> str:
    """ "Exchange Server 2019 CU14 Mar24SU" from a verdict's current or install mapping."""
    return _level_text(info or {})


# Kinds (of a plan step, a blocker, a build's form) as an administrator reads them; any other with its underscores as
# spaces. "adpreparation", as the underscores cut out gave, read like a typo.
KIND_LABELS = {
    "ad_preparation": "AD preparation", "pre_step": "pre-step", "post_step": "post-step",
    "admin_display": "AdminDisplayVersion", "ad_serial_number": "AD serialNumber",
}  # fmt: skip


@register.filter
def kind_label(kind: str | None) -> str:
    """ "AD preparation" for a plan step's kind "ad_preparation", "pre-step" for "pre_step", and so on."""
    return KIND_LABELS.get(kind or "", (kind or "").replace("_", " "))


@register.filter
def state_colour(state: str) -> str:
    return STATE_COLOURS.get(state, "#adb5bd")
