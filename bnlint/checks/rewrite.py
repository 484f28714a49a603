"""CST rewrites shared by fixes: change an argument, add a keyword, keep the formatting."""

from __future__ import annotations

import libcst as cst


def replace_value(arg: cst.Arg, code: str) -> tuple[cst.CSTNode, cst.CSTNode]:
    """A replacement of the argument's value alone: keyword, comma and comments stay."""
    return arg.value, cst.parse_expression(code)


def with_keyword(call: cst.Call, keyword: str, code: str) -> cst.Call:
    """The call with `keyword=code` set: the existing keyword argument's value replaced,
    else a keyword appended after the last argument in the call's own comma style."""
    args = list(call.args)
    for index, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == keyword:
            args[index] = arg.with_changes(value=cst.parse_expression(code))
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
        separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        if len(args) > 1 and isinstance(args[-2].comma, cst.Comma):
            separator = args[-2].comma
            if isinstance(separator.whitespace_after, cst.ParenthesizedWhitespace):
                # One argument per line: copy the line break, not the comment after it.
                separator = separator.with_changes(
                    whitespace_after=separator.whitespace_after.with_changes(first_line=cst.TrailingWhitespace())
                )
        args[-1] = last.with_changes(comma=separator)
        new = new.with_changes(comma=last.comma)
    else:
        # `f(a, b\n)`: the line break before `)` moves behind the new argument.
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
                                     whitespace_after_arg=cst.SimpleWhitespace(""))
        new = new.with_changes(whitespace_after_arg=last.whitespace_after_arg)
    return call.with_changes(args=[*args, new])
