"""A griffe extension: the reST habits of typedmaps' docstrings, as Markdown for mkdocstrings.

The docstrings are Google style (``Args:``, ``Returns:``, ``Raises:``) with a
few reStructuredText habits that Markdown would print literally:

- cross-reference roles, ``:class:`~typedmaps.errors.CodecError```,
  ``:meth:`from_fd```: resolved against the loaded package (relative names
  are looked up from the documented object outwards) and written as
  mkdocs-autorefs links; a name that cannot be resolved, or whose target the
  site does not render, stays code and never breaks the build;
- literal blocks, a paragraph ending in ``::`` and an indented block: a
  fenced block (``python`` when it parses as Python, else ``text``);
- simple tables (``====  ====`` borders): Markdown tables.

It also drops private parameters (``_owns_fd``) from the signatures shown:
they are for the library's own constructors, not for callers.

Loaded by mkdocs.yml (``extensions: [tools/griffe_rst.py:RstToMarkdown]``).
"""

from __future__ import annotations

import ast
import contextlib
import html
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|exc|data|obj|const):`(~?)([^`<>]+)`")
_BORDER = re.compile(r"^(\s*)(=+)(\s+=+)+\s*$")
_SECTION_LITERAL = re.compile(r"^(\s*)(Example|Examples|Usage)::\s*$")
_PACKAGE = "typedmaps"


def _exists(pkg: griffe.Module, path: str) -> bool:
    if path == pkg.path:
        return True
    if not path.startswith(pkg.path + "."):
        return False
    try:
        obj = pkg[path[len(pkg.path) + 1 :]]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    # Private objects are not rendered: a link to them would dangle.
    return not any(
        part.startswith("_") and not part.startswith("__") for part in obj.path.split(".")
    )


def resolve(pkg: griffe.Module, obj: griffe.Object | griffe.Alias, name: str) -> str | None:
    """The full path ``name`` refers to in ``obj``'s docstring, or None."""
    name = name.strip().removesuffix("()")
    candidates = []
    if name.startswith(pkg.path + ".") or name == pkg.path:
        candidates.append(name)
    scope: Any = obj
    while scope is not None:
        candidates.append(f"{scope.path}.{name}")
        scope = scope.parent
    candidates.append(f"{pkg.path}.{name}")
    for path in candidates:
        if _exists(pkg, path):
            target = path
            try:  # link to where the object is rendered under its public name
                resolved = pkg[path[len(pkg.path) + 1 :]] if path != pkg.path else pkg
                target = resolved.path
            except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                pass
            return target
    return None


def _roles(pkg: griffe.Module, obj: griffe.Object | griffe.Alias, text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        short, name = m.group(1) == "~", m.group(2).strip()
        shown = name.rsplit(".", 1)[-1] if short else name
        title = f"<code>{_html(shown)}</code>"
        target = resolve(pkg, obj, name)
        if target is None:
            return title
        return f'<autoref identifier="{_html(target)}" optional>{title}</autoref>'

    return _ROLE.sub(sub, text)


def _html(text: str) -> str:
    return html.escape(text, quote=True)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    fence = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fence = not fence
        if fence or not line.rstrip().endswith("::") or line.strip() == "":
            out.append(line)
            i += 1
            continue
        base = _indent(line)
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block_start = j
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
            j += 1
        block = lines[block_start:j]
        while block and not block[-1].strip():
            block.pop()
        if not block:
            out.append(line)
            i += 1
            continue
        code = textwrap.dedent("\n".join(block))
        try:
            ast.parse(code)
            lang = "python"
        except SyntaxError:
            lang = "text"
        section = _SECTION_LITERAL.match(line)
        if section:  # "Example::" -> a Google-style section holding a fenced block
            out.append(f"{section.group(1)}{section.group(2)}:")
            pad = " " * (base + 4)
        else:
            head = line.rstrip()[:-2].rstrip()
            if head:
                out.append(head + ":")
            out.append("")
            pad = " " * base
        out.append(f"{pad}```{lang}")
        out.extend((pad + c) if c else "" for c in code.split("\n"))
        out.append(f"{pad}```")
        out.append("")
        i = j
    return "\n".join(out)


def _tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _BORDER.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        border = lines[i]
        cols = [(c.start(), c.end()) for c in re.finditer(r"=+", border)]
        rows: list[list[str]] = []
        borders = 1
        j = i + 1
        while j < len(lines) and borders < 3:
            if _BORDER.match(lines[j]):
                borders += 1
            elif lines[j].strip():
                cells = []
                for n, (start, end) in enumerate(cols):
                    stop = cols[n + 1][0] if n + 1 < len(cols) else len(lines[j])
                    cells.append(
                        lines[j][start:stop].strip()
                        if n + 1 < len(cols)
                        else lines[j][start:].strip()
                    )
                    _ = end
                if rows and not cells[0] and borders == 2:
                    rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
                else:
                    rows.append(cells)
            j += 1
        if borders < 3 or not rows:
            out.append(lines[i])
            i += 1
            continue
        pad = m.group(1)
        header, body = rows[0], rows[1:]
        out.append("")
        out.append(pad + "| " + " | ".join(header) + " |")
        out.append(pad + "|" + "|".join("---" for _ in header) + "|")
        for r in body:
            out.append(pad + "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        out.append("")
        i = j
    return "\n".join(out)


def convert(pkg: griffe.Module, obj: griffe.Object | griffe.Alias, text: str) -> str:
    """The Markdown form of one docstring."""
    return _roles(pkg, obj, _tables(_literal_blocks(text)))


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring of the typedmaps package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != _PACKAGE:
            return
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                # An odd docstring the converter cannot follow is left as written.
                with contextlib.suppress(ValueError, IndexError, KeyError):
                    obj.docstring.value = convert(pkg, obj, obj.docstring.value)
            if isinstance(obj, griffe.Function):
                for p in [p.name for p in obj.parameters]:
                    if p.startswith("_") and not p.startswith("__"):
                        del obj.parameters[p]
            for member in obj.members.values():
                if not member.is_alias:
                    stack.append(member)  # type: ignore[arg-type]
