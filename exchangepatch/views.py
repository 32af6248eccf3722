"""The portal's landing page: the dashboard an Exchange team opens every morning. Every number comes from a
selector; the charts are drawn in the browser by the vendored Chart.js from the JSON this view embeds."""

from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import render
from django.urls import reverse

from exchangepatch.access import portal_view
from inventory.choices import State
from inventory.selectors import (
    compliance_summary,
    compliance_trend,
    compliant_count,
    job_health,
    results_newly_noncompliant,
    results_overdue,
    scan_latest,
    updates_needed_counts,
)
from kb.engine.builds import PRODUCTS
from kb.selectors import update_titles

from .templatetags.portal import STATE_COLOURS

PANEL_ROWS = 10
PRODUCT_KEYS = {info.name: key for key, info in PRODUCTS.items()}


def servers_url(**params) -> str:
    query = urlencode({key: value for key, value in params.items() if value not in (None, "")})
    return reverse("inventory:servers") + (f"?{query}" if query else "")


@portal_view
def dashboard(request):
    scan = scan_latest()
    summary = compliance_summary(scan)
    by_state = summary["by_state"]
    states = [
        {"state": state, "label": label, "count": by_state.get(state, 0), "colour": STATE_COLOURS[state],
         "url": servers_url(state=state)}
        for state, label in State.choices
    ]  # fmt: skip
    levels = [
        {**row, "label": " ".join(filter(None, [row["product"], row["level"]])) or "Unknown build",
         "url": servers_url(product=PRODUCT_KEYS.get(row["product"]), level=row["level"])
         if row["product"] else servers_url(state=State.UNKNOWN_BUILD)}
        for row in summary["by_product_level"]
    ]  # fmt: skip
    needed = updates_needed_counts(scan, limit=PANEL_ROWS) if scan else []
    titles = update_titles([row["kb"] for row in needed])
    trend = compliance_trend()
    compliant = compliant_count(by_state)
    context = {
        "scan": scan,
        "summary": summary,
        "states": states,
        "compliant": compliant,
        "compliant_percent": round(100 * compliant / summary["servers"], 1) if summary["servers"] else None,
        "levels": levels,
        "needed": [
            {
                **row,
                "titles": titles.get(row["kb"], []),
                "url": servers_url(needs=row["kb"]),
                "install_url": servers_url(installs=row["kb"]),
            }
            for row in needed
        ],
        "overdue": results_overdue(scan, limit=PANEL_ROWS) if scan else [],
        "overdue_url": servers_url(overdue="true"),
        "newly": results_newly_noncompliant(scan, limit=PANEL_ROWS) if scan else [],
        "newly_url": servers_url(newly="true"),
        "jobs": job_health(),
        "charts": {
            "levels": {
                "labels": [row["label"] for row in levels],
                "counts": [row["count"] for row in levels],
                "urls": [row["url"] for row in levels],
            },
            "trend": {
                "labels": [str(point["as_of"] or point["scan"]) for point in trend],
                "states": [
                    {
                        "state": state,
                        "label": label,
                        "colour": STATE_COLOURS[state],
                        "counts": [point["by_state"].get(state, 0) for point in trend],
                    }
                    for state, label in State.choices
                ],
            },
        },
    }
    return render(request, "portal/dashboard.html", context)
