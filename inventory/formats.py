"""Render plans and rollouts as JSON, plain text, Markdown (for a change ticket) or CSV."""

from __future__ import annotations

import csv
import io
import json

from kb.engine.planning import Blocker, Plan, Rollout

FORMATS = ("text", "markdown", "json", "csv")
CSV_COLUMNS = ("wave", "starts_at", "fqdn", "site", "step", "kind", "description", "command", "kb", "reason")


def render_plan(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(plan.as_dict(), indent=2)
    if fmt == "csv":
        return _csv((None, None, plan.fqdn, "", index, step) for index, step in enumerate(plan.steps, start=1))
    heading = f"{plan.fqdn}: {level_text(plan.current)} → {level_text(plan.target)}"
    if fmt == "markdown":
        lines = [f"### {heading}", ""]
        lines += [f"> {note}" for note in plan.notes] + ([""] if plan.notes else [])
        lines += ["| # | Kind | Step | Command | KB | Why |", "|---|---|---|---|---|---|"]
        for index, step in enumerate(plan.steps, start=1):
            command = f"`{step.command}`" if step.command else ""
            lines.append(
                f"| {index} | {step.kind} | {_cell(step.description)} | {_cell(command)} | {step.kb or ''} | {_cell(step.reason)} |"
            )
        return "\n".join(lines)
    lines = [heading, *(f"  note: {note}" for note in plan.notes)]
    for index, step in enumerate(plan.steps, start=1):
        lines.append(f"  {index}. [{step.kind}] {step.description}" + (f" ({step.kb})" if step.kb else ""))
        if step.command:
            lines.append(f"       > {step.command}")
        if step.reason:
            lines.append(f"       why: {step.reason}")
    return "\n".join(lines)


def render_rollout(rollout: Rollout, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rollout.as_dict(), indent=2)
    if fmt == "csv":
        return _csv(
            (
                wave.number,
                wave.starts_at.isoformat() if wave.starts_at else "",
                item.server.fqdn,
                item.site,
                index,
                step,
            )
            for wave in rollout.waves
            for item, plan in wave.servers
            for index, step in enumerate(plan.steps, start=1)
        )
    markdown = fmt == "markdown"
    lines = ["## Rollout plan" if markdown else "Rollout plan", ""]
    for wave in rollout.waves:
        when = f"{wave.starts_at:%Y-%m-%d %H:%M %Z} ({wave.window})" if wave.starts_at else "not scheduled"
        lines.append(f"{'### ' if markdown else ''}Wave {wave.number} — {when}")
        lines += [f"{'> ' if markdown else '  note: '}{note}" for note in wave.notes]
        for item, plan in wave.servers:
            lines.append(f"{'- ' if markdown else '  '}{item.server.fqdn} ({item.site}; {', '.join(item.server.facts.roles)}): "
                         f"{level_text(plan.current)} → {level_text(plan.target)}, {len(plan.steps)} steps")  # fmt: skip
        lines.append("")
    if rollout.blocked:
        lines.append("### Blocked" if markdown else "Blocked")
        lines += [f"{'- ' if markdown else '  '}{fqdn}: {reason}" for fqdn, reason in rollout.blocked]
        lines.append("")
    if rollout.up_to_date:
        lines.append(("Up to date: " if not markdown else "**Up to date:** ") + ", ".join(rollout.up_to_date))
    return "\n".join(lines).rstrip()


def render_blockers(introduce: str, blockers: list[Blocker], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "introduce": introduce,
                "is_blocked": bool(blockers),
                "blockers": [
                    {
                        "fqdn": b.fqdn,
                        "site": b.site,
                        "reason": b.reason,
                        "rule": b.rule,
                        "plan": b.plan.as_dict() if b.plan else None,
                    }
                    for b in blockers
                ],
            },
            indent=2,
        )
    if not blockers:
        return f"nothing blocks introducing Exchange {introduce}"
    lines = [f"{len(blockers)} blocker(s) for introducing Exchange {introduce}:"]
    for blocker in blockers:
        lines.append(
            f"- {blocker.fqdn} ({blocker.organisation}, {blocker.site or 'no site'}): {blocker.reason} [{blocker.rule}]"
        )
        if blocker.plan:
            lines += ["    " + line for line in render_plan(blocker.plan, "text").splitlines()]
    return "\n".join(lines)


def level_text(info) -> str:
    """Text such as "Exchange Server 2019 CU14 Mar24SU" from a current or target mapping."""
    return " ".join(filter(None, [info.get("product"), info.get("level"), info.get("update")]))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _csv(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for wave, starts_at, fqdn, site, index, step in rows:
        writer.writerow([wave or "", starts_at or "", fqdn, site, index, step.kind, step.description, step.command or "",
                         step.kb or "", step.reason])  # fmt: skip
    return out.getvalue().rstrip("\n")
