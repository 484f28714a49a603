"""CST rewrites shared by fixes: change an argument, add a keyword, keep the formatting."""

from __future__ import annotations

import libcst as cst


def with_value(arg: cst.Arg, code: str) -> cst.Arg:
    """The same argument (keyword, comma, whitespace) with a new value expression."""
    return arg.with_changes(value=cst.parse_expression(code))


def with_keyword(call: cst.Call, keyword: str, code: str) -> cst.Call:
    """The call with `keyword=code` set: the existing keyword argument's value replaced,
    else a keyword appended after the last argument in the call's own comma style."""
    args = list(call.args)
    for index, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == keyword:
            args[index] = with_value(arg, code)
            return call.with_changes(args=args)
    new = cst.Arg(
        keyword=cst.Name(keyword),
        value=cst.parse_expression(code),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    if isinstance(last.comma, cst.Comma):  # trailing comma: the new argument takes it over
        separator = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" "))
        args[-1] = last.with_changes(comma=separator)
        new = new.with_changes(comma=last.comma)
    else:
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return call.with_changes(args=[*args, new])
