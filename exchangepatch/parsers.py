"""The API's JSON parser: DRF's, refusing what no field can hold before any view sees it (imported by DRF settings,
so it imports nothing that reads them)."""

from __future__ import annotations

from rest_framework import exceptions, parsers

from exchangepatch.text import shown, text_problem

MAX_JSON_DEPTH = 32


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with a 400 what no field can hold, wherever it is: nesting deeper than
    MAX_JSON_DEPTH (a body nested 100,000 deep used to end in RecursionError), NUL or a lone surrogate in a key or a
    value. The error is keyed by the path to the offending value, as a field error would be."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
        found = json_problem(data)
        if found:
            path, reason = found
            errors: object = [reason]
            for key in reversed(path):
                errors = {key: errors}
            raise exceptions.ValidationError(errors if path else {"non_field_errors": [reason]})
        return data


def json_problem(data: object) -> tuple[list[str], str] | None:
    """(path, reason) of the first value no field accepts, walking iteratively (no recursion to exhaust)."""
    pending = [(data, [], 0)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return path, problem
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return path, f"nested deeper than {MAX_JSON_DEPTH} levels"
            if isinstance(value, dict):
                for key, item in value.items():
                    problem = text_problem(key)
                    if problem:
                        return [*path, shown(key)], f"the name {problem}"
                    pending.append((item, [*path, key], depth + 1))
            else:
                pending.extend((item, [*path, str(index)], depth + 1) for index, item in enumerate(value))
    return None
