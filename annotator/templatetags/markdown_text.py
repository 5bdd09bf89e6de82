"""``{{ text|markdown }}``: Markdown rendered safely (``annotator.markdown``) for the pages."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from annotator.markdown import markdown_html, text_version

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    """``text`` as HTML: raw HTML in it is escaped and unsafe links are left as text."""
    return mark_safe(markdown_html(text or ""))  # markdown_html escapes all raw HTML


@register.filter(name="text_version")
def text_version_filter(text: str | None) -> str:
    """A short fingerprint of ``text`` that changes when it does."""
    return text_version(text or "")
