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
    """(path, reason) of the first value no field accepts, or None. Walks iteratively (no recursion to exhaust), and
    without paths: a 10,000-server sync is walked in about 0.1 s; the path is traced only for a value found wrong."""
    pending = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        kind = type(value)
        if kind is str:
            if "\x00" in value or (not value.isascii() and text_problem(value)):
                return _path_to(data, value)
        elif kind is dict:
            if depth >= MAX_JSON_DEPTH:
                return _path_to(data, value)
            for key, item in value.items():
                if "\x00" in key or (not key.isascii() and text_problem(key)):
                    return _path_to(data, key, is_key=True)
                pending.append((item, depth + 1))
        elif kind is list:
            if depth >= MAX_JSON_DEPTH:
                return _path_to(data, value)
            pending.extend((item, depth + 1) for item in value)
    return None


def _path_to(data: object, wrong: object, *, is_key: bool = False) -> tuple[list[str], str]:
    """The path to `wrong` (found by identity) in `data`, and what is wrong with it."""
    pending = [(data, [])]
    while pending:
        value, path = pending.pop()
        if value is wrong and not is_key:
            if isinstance(value, str):
                return path, text_problem(value)
            return path, f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict) and len(path) < MAX_JSON_DEPTH:
            for key, item in value.items():
                if is_key and key is wrong:
                    return [*path, shown(key)], f"the name {text_problem(key)}"
                pending.append((item, [*path, key]))
        elif isinstance(value, list) and len(path) < MAX_JSON_DEPTH:
            pending.extend((item, [*path, str(index)]) for index, item in enumerate(value))
    return [], "invalid text"
