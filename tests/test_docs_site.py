"""The documentation site builds strictly, and its API reference has every public name.

`mkdocs build --strict` (any warning fails: a broken link or anchor, a page
missing from the nav, a docstring griffe cannot parse, a cross-reference to
nothing) runs into a temporary directory; then the generated reference
pages are read back: every name in ``__all__`` of the package and of its
public submodules must have a heading there, with its docstring.

The rendering in a real browser is `make docs-check` (tools/docs_check.py).
"""

from __future__ import annotations

import html.parser
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

# The list the site is built from: one place to add a public submodule.
from mkdocs_hooks import PUBLIC_MODULES  # noqa: E402


class _Headings(html.parser.HTMLParser):
    """Collects the id and text of every mkdocstrings object heading."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.texts: list[str] = []
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if self._depth:
            self._depth += 1
        elif tag in ("h2", "h3", "h4") and "doc-heading" in (a.get("class") or "").split():
            self._depth = 1
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1
            if not self._depth:
                self.texts.append(" ".join("".join(self._text).split()))

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._text.append(data)


def _public_names() -> list[tuple[str, object]]:
    names = []
    for modname in PUBLIC_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            if exc.name != modname:
                raise
            continue
        names += [(f"{modname}.{n}", getattr(mod, n)) for n in mod.__all__]
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}{proc.stderr}"
    return out


def test_every_public_name_is_in_the_reference(site: Path) -> None:
    parser = _Headings()
    pages = sorted((site / "reference").glob("*/index.html"))
    assert len(pages) >= 5
    for page in pages:
        parser.feed(page.read_text())
    names = _public_names()
    assert len(names) > 60
    missing = []
    for path, _obj in names:
        if path in parser.ids:
            continue
        # Shown under its public name, rendered from where it is defined
        # (typedmaps.typed is a subpackage and also the function typed()).
        shown = re.compile(rf"(^|\s){re.escape(path)}(\s|\(|$)")
        if not any(shown.search(t) for t in parser.texts):
            missing.append(path)
    assert not missing, f"not in the built API reference: {missing}"


def test_public_classes_and_functions_have_docstrings() -> None:
    undocumented = [
        path
        for path, obj in _public_names()
        if (inspect.isclass(obj) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()  # a class's own, never its base's
    ]
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_every_guide_page_is_built_and_in_the_nav(site: Path) -> None:
    index = (site / "index.html").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        slug = "" if page.stem == "index" else f"{page.stem}/"
        assert (site / slug / "index.html").is_file(), f"{page.name} was not built"
        if slug:  # mkdocs' validation (omitted_files: warn) already fails a strict build
            assert f'href="{slug}"' in index, f"{page.name} is not in the navigation"


def test_errors_page_explains_every_public_error() -> None:
    import typedmaps as tm

    text = (ROOT / "docs" / "errors.md").read_text()
    tree = text.split("```text", 1)[1].split("```", 1)[0]
    for name in tm.__all__:
        obj = getattr(tm, name)
        if inspect.isclass(obj) and issubclass(obj, tm.TypedMapsError):
            assert f"### `{name}`" in text or name == "TypedMapsError", (
                f"docs/errors.md has no section for {name}: what it means and what to do"
            )
            assert name in tree, f"docs/errors.md: {name} is not in the tree"
