"""Markdown for people to read on the pages (a project's instructions for annotators), rendered
safely: CommonMark without raw HTML (it is shown as text), links only to the web, mail or this
site, opening in a new tab so the labeling page stays; images are not fetched (the page's
Content-Security-Policy allows none from elsewhere), their Markdown shows as a link."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

#: The schemes a link may have; a link without one (``/projects/1/``, ``#part``) is relative.
LINK_SCHEMES = {"http", "https", "mailto"}


def link_allowed(url: str) -> bool:
    """Whether a link goes somewhere harmless: ``LINK_SCHEMES`` or relative (no ``javascript:``,
    ``data:``, ``file:`` ...). markdown-it has already normalised ``url`` (entities decoded,
    percent-encoded)."""
    try:
        scheme = urlsplit(url.strip()).scheme
    except ValueError:
        return False
    return scheme.lower() in LINK_SCHEMES or (not scheme and not url.strip().lower().startswith("//"))


def _link_open(renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    token.attrSet("target", "_blank")
    token.attrSet("rel", "noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")
    md.validateLink = link_allowed  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _parser()


def markdown_html(text: str, **env: Any) -> str:
    """``text`` (Markdown) as HTML that is safe to put in a page as it is."""
    return _MD.render(text or "", env)


def text_version(text: str) -> str:
    """A short fingerprint of ``text``: the pages remember which version of the instructions a
    person has seen, so that changed instructions show again."""
    return hashlib.sha256((text or "").encode()).hexdigest()[:16]
