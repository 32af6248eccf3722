"""Render plans, cluster plans, rollouts and coexistence reports as JSON, plain text, Markdown (for a change ticket)
or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from kb.engine.coexistence import Blocker, CoexistenceReport
from kb.engine.estate import Rollout
from kb.engine.planning import GroupPlan, Plan, Step

FORMATS = ("text", "markdown", "json", "csv")
# The first ten columns are the original contract; scope, when and runs_on were added at the end.
CSV_COLUMNS = (
    "wave", "starts_at", "fqdn", "site", "step", "kind", "description", "command", "kb", "reason", "scope", "when",
    "runs_on", "rule",
)  # fmt: skip


def render_plan(plan: Plan, fmt: str) -> str:
    """One server's plan (for a cluster member: its view of the cluster plan, numbered as in the whole plan)."""
    if fmt == "json":
        return json.dumps(plan.as_dict(), indent=2)
    if fmt == "csv":
        return _csv_rows((None, None, plan.fqdn, "", pair) for pair in _numbered(plan.steps))
    heading = f"{plan.fqdn}: {level_text(plan.current)} → {level_text(plan.target)}"
    return _render_steps(heading, plan.notes, plan.steps, fmt)


def render_group_plan(plan: GroupPlan, fmt: str) -> str:
    """A whole cluster or DAG: its members (in plan order) and every step, each with where it runs."""
    if fmt == "json":
        return json.dumps(plan.as_dict(), indent=2)
    if fmt == "csv":
        return _csv_rows((None, None, plan.name, "", pair) for pair in _numbered(plan.steps))
    window = "one maintenance window" if plan.is_one_window else "one member at a time"
    heading = f"{plan.kind} {plan.name} ({plan.organisation}): {len(plan.members)} member(s), {window}"
    members = []
    for member in plan.members:
        line = f"{member.fqdn} ({member.role}): " + (
            f"not planned: {member.blocked}"
            if member.blocked
            else f"{level_text(member.current)} → {level_text(member.target)}"
        )
        members.append(line)
    notes = list(plan.notes)
    for member in plan.members:  # what each member's plan notes (the same text once for all of them)
        notes += [note for note in member.notes if note not in notes]
    return _render_steps(heading, notes, plan.steps, fmt, members=members)


def _render_steps(heading: str, notes: Iterable[str], steps: tuple[Step, ...], fmt: str, *, members=()) -> str:
    if fmt == "markdown":
        lines = [f"### {heading}", ""]
        lines += [f"- {member}" for member in members] + ([""] if members else [])
        lines += [f"> {note}" for note in notes]
        lines += [""] if notes else []
        lines += ["| # | Kind | Scope | When | Runs on | Step | Command | KB | Why | Source |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for number, step in _numbered(steps):
            command = f"`{step.command}`" if step.command else ""
            lines.append(
                f"| {number} | {step.kind} | {step.scope} | {step.when} | {_runs_on(step)} | {_cell(step.description)} "
                f"| {_cell(command)} | {step.kb or ''} | {_cell(step.reason)} | {_cell(step.rule or '')} |"
            )
        return "\n".join(lines)
    lines = [heading, *(f"  member: {member}" for member in members), *(f"  note: {note}" for note in notes)]
    previous_rule = None
    for number, step in _numbered(steps):
        lines.append(f"  {number}. [{step.kind} · {step.scope} · {step.when}] {step.description}"
                     + (f" ({step.kb})" if step.kb else ""))  # fmt: skip
        if step.command:
            lines.append(f"       > {step.command}")
        if step.reason:
            lines.append(f"       why: {step.reason}")
        if step.rule and step.rule != previous_rule:  # said once for a run of steps from the same rule
            lines.append(f"       source: {step.rule}")
        previous_rule = step.rule or previous_rule
    return "\n".join(lines)


def render_rollout(rollout: Rollout, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rollout.as_dict(), indent=2)
    if fmt == "csv":
        preparation = (
            (0, "", organisation, "", (number, step))
            for organisation, steps in rollout.preparation
            for number, step in enumerate(steps, start=1)
        )
        waves = (
            (wave.number, wave.starts_at.isoformat() if wave.starts_at else "", item.fqdn, item.site, pair)
            for wave in rollout.waves
            for item in wave.servers
            for pair in _numbered(item.plan.steps)
        )
        return _csv_rows([*preparation, *waves])
    markdown = fmt == "markdown"
    lines = ["## Rollout plan" if markdown else "Rollout plan", ""]
    for organisation, steps in rollout.preparation:
        lines.append(
            f"{'### ' if markdown else ''}Before wave 1 — Active Directory preparation for {organisation} (once)"
        )
        for step in steps:
            lines.append(f"{'- ' if markdown else '  '}[{step.kind}] {step.description}"
                         + (f": `{step.command}`" if markdown and step.command else f" > {step.command}" if step.command else ""))  # fmt: skip
        lines.append("")
    for wave in rollout.waves:
        when = f"{wave.starts_at:%Y-%m-%d %H:%M %Z} ({wave.window})" if wave.starts_at else "not scheduled"
        lines.append(f"{'### ' if markdown else ''}Wave {wave.number} — {when}")
        lines += [f"{'> ' if markdown else '  note: '}{note}" for note in wave.notes]
        for item in wave.servers:
            cluster = ""
            if item.cluster and item.servers != (item.fqdn,):
                cluster = f"; whole {item.plan.cluster['kind'] if item.plan.cluster else ''} {item.cluster}: {', '.join(item.servers)}"
            elif item.cluster:
                cluster = f"; {item.cluster}"
            target = (f"{level_text(item.plan.current)} → {level_text(item.plan.target)}, "
                      if item.plan.current else "")  # fmt: skip
            lines.append(f"{'- ' if markdown else '  '}{item.fqdn} ({item.site}; {', '.join(item.roles)}{cluster}): "
                         f"{target}{len(item.plan.steps)} steps")  # fmt: skip
        lines.append("")
    if rollout.blocked:
        lines.append("### Blocked" if markdown else "Blocked")
        lines += [f"{'- ' if markdown else '  '}{fqdn}: {reason}" for fqdn, reason in rollout.blocked]
        lines.append("")
    if rollout.up_to_date:
        lines.append(("Up to date: " if not markdown else "**Up to date:** ") + ", ".join(rollout.up_to_date))
    return "\n".join(lines).rstrip()


def render_coexistence(report: CoexistenceReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2)
    subject = f"introducing Exchange {report.introduce}" if report.introduce else "the versions already side by side"
    lines = []
    if not report.blockers:
        lines.append(f"nothing blocks {subject}")
    else:
        lines.append(f"{len(report.blockers)} blocker(s) for {subject}:")
    for blocker, shown_before in blockers_with_plans(report):
        where = blocker.fqdn or f"site {blocker.site}"
        context = f"{blocker.organisation}, {blocker.site or 'no site'}" if blocker.fqdn else blocker.organisation
        lines.append(f"- [{blocker.kind}, {blocker.scope}] {where} ({context}): {blocker.reason} [{blocker.rule}]")
        if shown_before:
            cluster = blocker.plan.cluster
            lines.append(
                f"    cleared by the {cluster['kind']} {cluster['name']} plan above (plan --cluster {cluster['name']})"
            )
        elif blocker.plan:
            lines += ["    " + line for line in render_plan(blocker.plan, "text").splitlines()]
    if report.requirements:
        lines.append("requirements for the new servers:")
        lines += [f"- {requirement}" for requirement in report.requirements]
    return "\n".join(lines)


def blockers_with_plans(report: CoexistenceReport) -> list[tuple[Blocker, bool]]:
    """Each blocker with whether its plan was shown before: one cluster plan clears the blockers of all its members,
    so it is shown with the first of them and named with the others."""
    shown: set[tuple[str, str]] = set()
    pairs = []
    for blocker in report.blockers:
        cluster = blocker.plan.cluster if blocker.plan else None
        key = (blocker.organisation, cluster["name"]) if cluster else None
        pairs.append((blocker, key in shown))
        if key:
            shown.add(key)
    return pairs


def level_text(info) -> str:
    """Text such as "Exchange Server 2019 CU14 Mar24SU" from a current or target mapping."""
    return " ".join(filter(None, [info.get("product"), info.get("level"), info.get("update")]))


def _numbered(steps: Iterable[Step]) -> list[tuple[int, Step]]:
    return [(step.number or index, step) for index, step in enumerate(steps, start=1)]


def _runs_on(step: Step) -> str:
    return step.server or step.scope


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _csv_rows(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for wave, starts_at, fqdn, site, (number, step) in rows:
        writer.writerow([
            "" if wave is None else wave, starts_at or "", fqdn, site, number, step.kind, step.description,
            step.command or "", step.kb or "", step.reason, step.scope, step.when, _runs_on(step), step.rule or "",
        ])  # fmt: skip
    return out.getvalue().rstrip("\n")
