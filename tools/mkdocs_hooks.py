"""mkdocs hooks: the API reference pages, generated from ``__all__`` at every build.

Nothing in docs/reference/ is written by hand. For each public module
(:data:`PUBLIC_MODULES`) this hook reads ``__all__`` from the imported
module and renders every name with mkdocstrings (``::: typedmaps.Name``);
the names of the top-level package are grouped into one page per
defining module (``typedmaps.handle`` -> "Maps", ...). A name added to
``__all__`` therefore appears in the reference without anyone editing a page
or the nav, and tests/test_docs_site.py checks the built site has them all.

The nav entry ``API reference`` in mkdocs.yml is filled in here.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import griffe
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

#: Modules whose ``__all__`` make the reference, in nav order (missing ones are skipped,
#: so an optional module that has not landed yet does not break the build). A new
#: public submodule goes here; tests/test_docs_site.py reads this same list.
PUBLIC_MODULES = (
    "typedmaps",
    "typedmaps.codec",
    "typedmaps.btf",
    "typedmaps.prometheus",
    "typedmaps.testing",
)

#: Page for the top-level names, by their defining module's first component
#: (``typedmaps.typed.keyed`` -> ``typed``). Unknown components get a page of
#: their own titled by module name, so no name is ever dropped.
GROUPS: dict[str, str] = {
    "handle": "Maps (MapHandle)",
    "typed": "Typed maps",
    "object": "Objects",
    "program": "Programs",
    "link": "Links",
    "events": "Events",
    "memory": "Program data",
    "errors": "Errors",
    "flags": "Flags and types",
}
NAV_TITLE = "API reference"
SRC = Path(__file__).resolve().parent.parent / "src"
REF_DIR = "reference"


@dataclass
class Page:
    slug: str
    title: str
    intro: str
    names: list[str] = field(default_factory=list)  # public dotted paths
    #: public path -> the path mkdocstrings renders, where they differ (see _render_path)
    render: dict[str, str] = field(default_factory=dict)


_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]+\.)?([\w]+)`")


def _summary(obj: Any) -> str:
    """The first paragraph of a docstring, one line, reST roles as code."""
    doc = inspect.getdoc(obj) or ""
    return _ROLE.sub(r"`\1`", doc.strip().split("\n\n", 1)[0].replace("\n", " "))


def _render_path(pkg: griffe.Module, name: str) -> str:
    """Where griffe finds ``typedmaps.<name>``: its canonical path.

    ``typedmaps.typed`` is both a subpackage and, at run time, the function
    ``typed`` that the package re-exports over it; griffe sees the module, so
    a name whose run-time object is not a module but whose griffe member is
    one is looked up inside that module.
    """
    try:
        member: Any = pkg[name]
        if member.is_module and not inspect.ismodule(
            getattr(importlib.import_module("typedmaps"), name)
        ):
            member = member[name]
        return str(member.target_path if member.is_alias else member.path)
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return f"typedmaps.{name}"


def pages() -> list[Page]:
    """The reference pages: one per group of top-level names, one per public submodule."""
    loader = griffe.GriffeLoader(search_paths=[str(SRC)])
    pkg = loader.load("typedmaps")
    assert isinstance(pkg, griffe.Module)
    out: list[Page] = []
    by_slug: dict[str, Page] = {}
    top = importlib.import_module("typedmaps")
    for name in top.__all__:
        canonical = _render_path(pkg, name)
        mod = canonical.rsplit(".", 1)[0]
        part = mod.split(".")[1] if "." in mod else "package"
        page = by_slug.get(part)
        if page is None:
            title = GROUPS.get(part, f"typedmaps.{part}")
            group_module = f"typedmaps.{part}" if part != "package" else "typedmaps"
            intro = _summary(importlib.import_module(group_module))
            page = by_slug[part] = Page(part, title, intro)
        page.names.append(f"typedmaps.{name}")
        if pkg.members.get(name) is not None and pkg.members[name].is_module:
            page.render[f"typedmaps.{name}"] = canonical
    rank = {slug: n for n, slug in enumerate(GROUPS)}
    out.extend(sorted(by_slug.values(), key=lambda p: (rank.get(p.slug, len(rank)), p.slug)))
    for modname in PUBLIC_MODULES[1:]:
        try:
            sub = importlib.import_module(modname)
        except ImportError as exc:
            if exc.name == modname:  # the module itself is absent: nothing to document
                continue
            raise
        short = modname.split(".", 1)[1]
        page = Page(f"mod-{short}", modname, _summary(sub))
        page.names = [f"{modname}.{n}" for n in sub.__all__]
        out.append(page)
    return out


def _markdown(page: Page) -> str:
    lines = [f"# {page.title}", "", page.intro, ""]
    for path in page.names:
        target = page.render.get(path)
        if target is None:
            lines += [f"::: {path}", ""]
        else:  # shown under its public name, rendered from where it is defined
            lines += [f"::: {target}", "    options:", f'      heading: "{path}"', ""]
    return "\n".join(lines)


def _index(all_pages: list[Page]) -> str:
    lines = [
        "# API reference",
        "",
        "Everything in `typedmaps.__all__` and in the public submodules' `__all__`,",
        "generated from the docstrings at every build.",
        "",
    ]
    for page in all_pages:
        lines += [f"## [{page.title}]({page.slug}.md)", "", "| name | summary |", "|---|---|"]
        for path in page.names:
            modname, _, name = path.rpartition(".")
            obj = getattr(importlib.import_module(modname), name)
            summary = _summary(obj).replace("|", "\\|")
            lines.append(f"| [`{name}`][{page.render.get(path, path)}] | {summary} |")
        lines.append("")
    return "\n".join(lines)


_pages: list[Page] = []


def on_config(config: MkDocsConfig, **kwargs: Any) -> MkDocsConfig:
    _pages[:] = pages()
    entries: list[Any] = [{"Overview": f"{REF_DIR}/index.md"}]
    entries += [{p.title: f"{REF_DIR}/{p.slug}.md"} for p in _pages]
    nav = config.nav or []
    for item in nav:
        if isinstance(item, dict) and NAV_TITLE in item:
            item[NAV_TITLE] = entries
            break
    else:
        nav.append({NAV_TITLE: entries})
    config.nav = nav
    return config


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    files.append(File.generated(config, f"{REF_DIR}/index.md", content=_index(_pages)))
    for page in _pages:
        files.append(File.generated(config, f"{REF_DIR}/{page.slug}.md", content=_markdown(page)))
    return files
