"""Imports and aliases → qualified names, and file paths → module names.

A light pass of our own: LibCST's QualifiedNameProvider needs the scope metadata, which
costs several times the parse itself; bnlint only needs what each import binds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import libcst as cst


def dotted_name(expr: cst.BaseExpression) -> str | None:
    """`torch.nn.functional` for an attribute chain of plain names, else None."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = dotted_name(expr.value)
        return f"{base}.{expr.attr.value}" if base else None
    return None


def absolute_module(level: int, target: str, module_name: str, is_package: bool) -> str | None:
    """The absolute module `from <level dots><target> import ...` names inside a module."""
    if level == 0:
        return target
    package = module_name.split(".") if is_package else module_name.split(".")[:-1]
    if level - 1 > len(package):
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join(part for part in [*base, target] if part)


def imports_in_text(text: str, module_name: str, is_package: bool) -> Iterator[tuple[str, list[tuple[str, str]] | None]]:
    """The imports of a source text, found without parsing it: (absolute module, [(name,
    local alias)]) for `from M import ...`, (module, None) for `import M`. Used by the cheap
    test that decides whether a file is worth parsing at all."""
    for match in _IMPORT_TEXT.finditer(text):
        if match.group("plain"):
            for part in match.group("plain").split(","):
                module = part.split(" as ")[0].strip()
                if module:
                    yield module, None
            continue
        dots, target = match.group("dots"), match.group("target") or ""
        module = absolute_module(len(dots), target, module_name, is_package)
        if module is None:
            continue
        names = []
        listed = _COMMENT.sub("", match.group("names")).replace("\\\n", " ").strip("() \t\n")
        for part in listed.split(","):
            pieces = part.split(" as ")
            name = pieces[0].strip()
            if name.isidentifier():
                names.append((name, pieces[1].strip() if len(pieces) > 1 else name))
        yield module, names


_COMMENT = re.compile(r"#[^\n]*")
_IMPORT_TEXT = re.compile(
    r"^[ \t]*(?:import[ \t]+(?P<plain>[\w. ,]+)"
    r"|from[ \t]+(?P<dots>\.*)(?P<target>[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#;]*))",
    re.M,
)


def import_bindings(
    node: cst.Import | cst.ImportFrom, module_name: str, is_package: bool
) -> list[tuple[str, str]]:
    """The (local name, qualified name) pairs an import statement binds."""
    bindings: list[tuple[str, str]] = []
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = dotted_name(alias.name)
            if not full:
                continue
            if alias.asname is not None:
                bindings.append((dotted_name(alias.asname.name) or full, full))
            else:
                top = full.split(".")[0]
                bindings.append((top, top))
        return bindings
    if isinstance(node.names, cst.ImportStar):
        return bindings
    target = dotted_name(node.module) if node.module else ""
    module = absolute_module(len(node.relative), target or "", module_name, is_package)
    if module is None:
        return bindings
    for alias in node.names:
        name = dotted_name(alias.name)
        if not name:
            continue
        local = dotted_name(alias.asname.name) if alias.asname is not None else name
        bindings.append((local or name, f"{module}.{name}" if module else name))
    return bindings


def spelling(module: cst.Module, qualname: str, module_name: str, is_package: bool) -> str | None:
    """How this module can spell `qualname` through its top-level imports, the most
    specific import first: `SyncBatchNorm`, `nn.SyncBatchNorm`, `torch.nn.SyncBatchNorm`."""
    best: tuple[int, str] | None = None
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if not isinstance(small, (cst.Import, cst.ImportFrom)):
                continue
            for local, imported in import_bindings(small, module_name, is_package):
                if qualname == imported or qualname.startswith(f"{imported}."):
                    spelled = local + qualname[len(imported):]
                    if best is None or len(imported) > best[0]:
                        best = (len(imported), spelled)
    return best[1] if best is not None else None


def module_name_for(path: Path) -> tuple[str, bool]:
    """The dotted module name of a file (walking up through `__init__.py` packages) and
    whether it is a package's `__init__`."""
    path = path.resolve()
    is_package = path.stem == "__init__"
    parts = [] if is_package else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").exists() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts) or path.stem, is_package
