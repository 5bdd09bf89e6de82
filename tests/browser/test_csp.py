"""The Content-Security-Policy in a real browser: the probe every page test carries does catch a
violation, and the pages the app does not write itself (the admin, the Swagger UI at /api/docs/)
work under the policy with nothing refused. The app's own pages are checked by their own tests."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.factories import make_project, make_user


def test_the_probe_catches_inline_script_and_style(live_server: Any, page: Page, csp_violations: list[str]) -> None:
    # Given the login page, served with the policy
    response = page.goto(f"{live_server.url}/accounts/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # When a script of the page's own adds an inline script and an inline style
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__ran = true";
          document.body.append(script);
          document.body.setAttribute("style", "background: red");
        }"""
    )
    # Then the browser refuses both, and the probe reports them
    expect(page.locator("body")).not_to_have_css("background-color", "rgb(255, 0, 0)")
    assert page.evaluate("() => window.__ran") is None
    page.wait_for_timeout(200)
    assert {line.split()[0] for line in csp_violations} == {"script-src-elem", "style-src-attr"}, csp_violations
    csp_violations.clear()  # seen: this test's violations were its own


def test_the_admin_works_under_the_policy(
    live_server: Any, page: Page, js_errors: list[str], csp_violations: list[str]
) -> None:
    # Given an admin and a project
    root = make_user("root", superuser=True)
    project = make_project(root, name="Birds")
    # When they log in to the admin, list and open the project, and open the form for a new user
    response = page.goto(f"{live_server.url}/admin/login/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("pw-root")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Projects").first.click()
    expect(page.locator("#result_list")).to_contain_text("Birds")
    page.goto(f"{live_server.url}/admin/annotator/project/{project.id}/change/")
    expect(page.locator("#id_name")).to_have_value("Birds")
    page.goto(f"{live_server.url}/admin/auth/user/add/")
    expect(page.locator("#id_username")).to_be_visible()
    # Then the admin's scripts ran (its sidebar filter is a script's), and nothing was refused
    page.goto(f"{live_server.url}/admin/annotator/project/")
    expect(page.locator("#nav-filter")).to_be_visible()
    assert js_errors == []
    assert csp_violations == []


def test_the_api_docs_work_under_the_policy(
    live_server: Any, page: Page, js_errors: list[str], csp_violations: list[str]
) -> None:
    # Given a logged-in user
    make_user("alice")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("pw-alice")
    page.get_by_role("button", name="Log in").click()
    # When they open the API docs and try GET /api/projects/ from them
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Active Annotator API")
    operation = page.locator(".opblock-get", has_text="/api/projects/").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    # Then Swagger UI renders and calls the API, and nothing was refused
    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    assert js_errors == []
    assert csp_violations == []
