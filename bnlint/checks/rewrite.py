"""CST rewrites shared by fixes: change an argument, add a keyword, keep the formatting."""

from __future__ import annotations

import libcst as cst

from bnlint.checks import NodeFix
from bnlint.diagnostics import Applicability
from bnlint.semantics.interp.usage import ModelCall
from bnlint.semantics.syntax import parents


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


def statement_in_function(module: cst.Module, target: cst.CSTNode) -> cst.BaseStatement | None:
    """The statement of the innermost function body (or of the module) that holds `target`:
    where a statement inserted before it runs once per call, ahead of any loop or `with`."""
    path = parents(module).path_to(target)
    if path is None:
        return None
    body_owner = 0
    for index, node in enumerate(path):
        if isinstance(node, (cst.FunctionDef, cst.Module)):
            body_owner = index
    for node in path[body_owner + 1:]:
        if isinstance(node, cst.BaseStatement):
            return node
    return None


def insert_before(statement: cst.BaseStatement, code: str) -> tuple[cst.CSTNode, cst.FlattenSentinel]:
    """A replacement that adds the statement `code` before `statement`, at its indentation
    (comments above `statement` stay with it)."""
    return statement, cst.FlattenSentinel([cst.parse_statement(code), statement])


def as_call(attribute: cst.Attribute) -> tuple[cst.CSTNode, cst.CSTNode]:
    """`model.eval` → `model.eval()`."""
    return attribute, cst.Call(func=attribute)


def training_fix(call: ModelCall, value: bool) -> NodeFix:
    """Pass `training=<value>` to a Keras model call (replacing `training=None`)."""
    node = call.site.node
    assert isinstance(node, cst.Call)  # keras_calls yields calls
    return NodeFix(Applicability.SAFE, f"Pass training={value}", ((node, with_keyword(node, "training", str(value))),))


def without_argument(call: cst.Call, arg: cst.Arg) -> cst.Call:
    """The call without `arg`; the argument before it takes over its comma, so a trailing
    comma and the layout before `)` stay as written."""
    args = list(call.args)
    index = args.index(arg)
    if index > 0 and index == len(args) - 1:
        args[index - 1] = args[index - 1].with_changes(comma=arg.comma,
                                                       whitespace_after_arg=arg.whitespace_after_arg)
    del args[index]
    return call.with_changes(args=args)
