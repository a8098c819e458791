"""The uploader takes its file types from the loader table (ingest.loaders), the one list."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ingest.loaders import SUPPORTED_SUFFIXES
from tests.ui.test_app_pages import PASSWORD, MakeServices, documents_page, markdown, settled


def test_uploader_accepts_exactly_what_the_loaders_read(make_services: MakeServices, app: AppTest) -> None:
    services = make_services(password=PASSWORD)
    at = documents_page(app, admin=True)
    uploader = at.file_uploader[0]
    # suffixes with their dot: a bare "text" would be Streamlit's any-text/* shortcut, unchecked
    assert sorted(uploader.allowed_type) == sorted(SUPPORTED_SUFFIXES)
    assert ".text" in uploader.allowed_type
    assert all(s in uploader.proto.help for s in SUPPORTED_SUFFIXES)
    uploader.set_value(("notes.text", b"The Eiffel Tower was completed in 1889.", "text/plain"))
    at.run()
    at.button(key="index_files").click().run()
    settled(at, services)
    assert not at.exception
    assert "1 indexed" in markdown(at)
    assert [d.source for d in services.documents()] == ["notes.text"]
