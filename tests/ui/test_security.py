"""The admin password never shows up in logs or in anything the page renders."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.test_app_pages import PASSWORD, MakeServices, admin_page, documents_page, index_eiffel, sign_in


def _everything_rendered(at: AppTest) -> str:
    """Every value and label of every element on the page (a proxy for its HTML)."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "text", "code", "exception"):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "value", "")))
    for ti in at.text_input:
        parts.append(f"{ti.label}={ti.value}")
    return "\n".join(parts)


def test_password_is_never_logged_or_rendered(
    make_services: MakeServices, app: AppTest, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    services = make_services(password=PASSWORD)
    index_eiffel(services)
    at = sign_in(admin_page(app), "wrong-" + PASSWORD)  # a failed attempt
    at = sign_in(at, PASSWORD)
    at.button(key="reindex").click().run()
    assert not at.exception
    at = documents_page(at)
    rendered = _everything_rendered(at)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert PASSWORD not in rendered
    assert PASSWORD not in logs
    assert PASSWORD not in repr(services.settings)
    # nor anywhere on disk under the data directory
    for f in services.settings.home_dir.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f
