"""What ``manage.py serve`` (``make run``) starts for the web: its terminal shows warnings and errors,
and a line per request only when ``ACCESS_LOG=1`` asks for it."""

from __future__ import annotations

from annotator.management.commands.serve import web_command


def test_the_web_server_logs_requests_only_when_asked():
    quiet = web_command("python", "127.0.0.1:8000", 2, access_log=False)
    loud = web_command("python", "127.0.0.1:8000", 2, access_log=True)
    assert "--access-logfile" not in quiet and quiet[quiet.index("--log-level") + 1] == "warning"
    assert loud[-2:] == ["--access-logfile", "-"] and loud[:-2] == quiet
    assert quiet[quiet.index("--bind") + 1] == "127.0.0.1:8000" and quiet[quiet.index("--workers") + 1] == "2"
