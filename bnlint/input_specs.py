"""The spelling of a model input for `bnlint verify`: `8,3,32,32`, `8,20:int` (token ids) or
`mask=8,20` (a keyword input). Pure text, so the configuration can check it without the
runtime checker's dependencies."""

from __future__ import annotations

SPEC_HELP = "N,C,H,W (positive integers), N,T:int for token ids, or name=N,C,... for a keyword argument"


def split_spec(text: str) -> tuple[str | None, tuple[int, ...], bool]:
    """(keyword or None, shape, token ids?); ValueError naming the accepted forms."""
    name, equals, rest = text.partition("=")
    keyword = name.strip() if equals else None
    body, colon, kind = (rest if equals else text).partition(":")
    parts = [part.strip() for part in body.split(",")]
    if (keyword is not None and not keyword.isidentifier()) or (colon and kind.strip() != "int") or not all(
            part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"expected {SPEC_HELP}, not {text!r}")
    return keyword, tuple(int(part) for part in parts), bool(colon)
