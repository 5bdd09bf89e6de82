"""Markdown for the pages (``annotator.markdown`` and its ``markdown`` filter): what people write
renders, and nothing in it can run a script, load from elsewhere or inject markup."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template

from annotator.markdown import link_allowed, markdown_html, text_version


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "Before <script src=https://evil.example/x.js></script> after",
        '<img src=x onerror="alert(1)">',
        "<div onmouseover=alert(1)>hover</div>",
        "<a href=javascript:alert(1)>raw link</a>",
        "<iframe src=https://evil.example></iframe>",
        "<style>body{display:none}</style>",
    ],
)
def test_raw_html_is_shown_as_text(text):
    # When raw HTML is rendered
    html = markdown_html(text)
    # Then no tag of it survives: its angle brackets are escaped
    assert "<script" not in html and "<img" not in html and "<div" not in html and "<iframe" not in html
    assert "<style" not in html and "<a " not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "link",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](javascript&#58;alert(1))",
        "[click](%20javascript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](data:image/png;base64,AAAA)",
        "[click](file:///etc/passwd)",
        "[click](//evil.example/x)",
        "<javascript:alert(1)>",
        '[click](https://ok.example "title" onclick=alert(1))',
    ],
)
def test_unsafe_links_are_not_links(link):
    # When a link to a script, a data or file URL or another site without a scheme is rendered
    html = markdown_html(link)
    # Then no link goes there (a link left is relative, such as the path "%20javascript:...") and it has no handler
    hrefs = re.findall(r'<a href="([^"]*)"', html)
    assert all(not re.match(r"\s*(javascript|vbscript|data|file):|//", h, re.IGNORECASE) for h in hrefs), hrefs
    assert not re.search(r"<a [^>]*\son\w+=", html)


def test_an_attribute_cannot_be_injected_through_a_link_title_or_url():
    # Given a link whose URL and title try to close the attribute
    html = markdown_html('[x](https://ok.example/"onmouseover="alert(1) "t\\" onclick=\\"alert(2)")')
    # Then the quotes are escaped inside the attributes
    assert ' onmouseover="' not in html and ' onclick="' not in html


def test_images_are_not_fetched_but_shown_as_links():
    # Given an image from another site (the Content-Security-Policy would refuse it)
    html = markdown_html("![a cat](https://img.example/cat.png)")
    # Then there is no <img>, and the image's address is a plain link
    assert "<img" not in html
    assert '<a href="https://img.example/cat.png" target="_blank" rel="noopener noreferrer">a cat</a>' in html


def test_headings_lists_emphasis_links_code_and_tables_render():
    text = (
        "# Labeling cats\n\n"
        "Choose **cat** when _any_ cat shows; ~~not~~ dogs.\n\n"
        "- whole cat\n- part of a cat\n\n"
        "1. first\n2. second\n\n"
        "See [the guide](https://example.com/guide) or [the project](/projects/1/) "
        "or [mail](mailto:lead@example.com).\n\n"
        "Inline `code`, and a block:\n\n```\nif cat: press c\n```\n\n"
        "| key | class |\n|---|---|\n| c | cat |\n"
    )
    html = markdown_html(text)
    assert "<h1>Labeling cats</h1>" in html
    assert "<strong>cat</strong>" in html and "<em>any</em>" in html and "<s>not</s>" in html
    assert "<ul>\n<li>whole cat</li>" in html and "<ol>\n<li>first</li>" in html
    assert '<a href="https://example.com/guide" target="_blank" rel="noopener noreferrer">the guide</a>' in html
    assert '<a href="/projects/1/" target="_blank" rel="noopener noreferrer">the project</a>' in html
    assert 'href="mailto:lead@example.com"' in html
    assert "<code>code</code>" in html and "<pre><code>if cat: press c\n</code></pre>" in html
    assert "<table>" in html and "<td>cat</td>" in html


def test_code_shows_markup_as_text():
    assert markdown_html("`<b>bold</b>`") == "<p><code>&lt;b&gt;bold&lt;/b&gt;</code></p>\n"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://example.com/a?b=c", True),
        ("http://example.com", True),
        ("mailto:a@example.com", True),
        ("/projects/1/", True),
        ("#part", True),
        ("guide.html", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        ("data:text/html,x", False),
        ("ftp://example.com", False),
        ("//evil.example", False),
        ("http://[::1", False),
    ],
)
def test_link_allowed(url, allowed):
    assert link_allowed(url) is allowed


def test_the_filter_renders_safely_in_a_template_and_the_version_follows_the_text():
    # Given a template that renders instructions with the filter
    template = Template("{% load markdown_text %}{{ text|markdown }}|{{ text|text_version }}")
    # When it renders Markdown with a script in it
    html = template.render(Context({"text": "**Be careful** <script>x()</script>"}))
    # Then the Markdown is markup, the script text, and the version is the text's fingerprint
    assert html.startswith("<p><strong>Be careful</strong> &lt;script&gt;x()&lt;/script&gt;</p>")
    assert html.endswith("|" + text_version("**Be careful** <script>x()</script>"))
    assert text_version("a") != text_version("b") and len(text_version("a")) == 16
    assert Template("{% load markdown_text %}[{{ none|markdown }}]").render(Context({"none": None})) == "[]"
