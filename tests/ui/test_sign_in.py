"""RAG_AUTH: with sign-in on, nobody reads a passage or reaches a page before signing in.

Written as the attacks: a stranger opening the app (or a page's URL) without a password, a
stranger guessing the password until the brake stops them while the owner still signs in
from elsewhere, a restart that must not reset the brake, single sign-on left unconfigured.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

import rag.ui.state as state
from rag.ui import gate
from rag.ui.gate import NO_OIDC_PROVIDER, NO_READER_PASSWORD, NOT_SHARED
from tests.ui.conftest import MakeServices
from tests.ui.test_app_pages import index_eiffel, texts

READER = "reader-pass-4821"
ADMIN = "admin-pass-9917"


def password_app(make_services: MakeServices, reader: str | None = READER) -> MakeServices:
    services = make_services(password=ADMIN, auth="password", reader_password=SecretStr(reader) if reader else None)
    index_eiffel(services)
    return make_services


def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="sign_in_password").input(password)
    return at.button[0].click().run()


def shows_app(at: AppTest) -> bool:
    return bool(at.chat_input) or any("Eiffel" in str(m.value) for m in at.markdown)


def test_a_stranger_sees_only_the_sign_in_form(make_services: MakeServices, app: AppTest) -> None:
    password_app(make_services)
    at = app.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Password"]
    assert not shows_app(at)
    for page in ("rag/ui/documents.py", "rag/ui/admin.py"):  # a page's URL opens nothing either
        at = app.switch_page(page).run()
        assert not shows_app(at)
        assert not [b for b in at.button if b.key == "reindex"]
        assert not any("eiffel_tower.txt" in str(m.value) for m in at.markdown)


def test_the_reader_password_opens_chat_but_not_admin(make_services: MakeServices, app: AppTest) -> None:
    password_app(make_services)
    at = sign_in(app.run(), "wrong")
    assert texts(at.error) == ["Wrong password"]
    at = sign_in(at, READER)
    assert at.chat_input
    assert at.session_state[state.READER_OK]
    assert state.ADMIN_OK not in at.session_state or not at.session_state[state.ADMIN_OK]


def test_the_admin_password_signs_in_as_admin(make_services: MakeServices, app: AppTest) -> None:
    password_app(make_services)
    at = sign_in(app.run(), ADMIN)
    assert at.chat_input
    assert at.session_state[state.ADMIN_OK]


def test_an_admin_sees_one_sign_out_button_and_it_signs_out_of_everything(
    make_services: MakeServices, app: AppTest
) -> None:
    password_app(make_services)
    at = sign_in(app.run(), ADMIN)
    at = at.switch_page("rag/ui/admin.py").run()
    assert [b for b in at.button if b.key == "reindex"]
    sign_out = [b for b in at.sidebar.button if b.label == "Sign out"]
    assert len(sign_out) == 1
    at = sign_out[0].click().run()
    assert [t.label for t in at.text_input] == ["Password"]
    assert state.ADMIN_OK not in at.session_state
    assert not [b for b in at.button if b.key == "reindex"]


def test_guessing_locks_out_the_guesser_not_the_owner(make_services: MakeServices, app: AppTest) -> None:
    password_app(make_services)
    brake = state.login_brake()
    stranger = "signin|203.0.113.9"
    for _ in range(5):
        brake.record_failure(stranger)
    assert brake.retry_after(stranger) > 0
    at = sign_in(app.run(), READER)  # the owner, from another address, is not locked out
    assert at.chat_input


def test_the_brake_survives_a_restart(make_services: MakeServices, app: AppTest) -> None:
    password_app(make_services)
    at = app.run()
    for _ in range(5):
        at = sign_in(at, "wrong")
    assert any("try again in" in e for e in texts(at.error))
    state._brake.clear()  # a restart: the process-wide objects are rebuilt
    at = sign_in(at, READER)
    assert any("Too many wrong passwords" in e for e in texts(at.error))
    assert not at.chat_input


def test_no_reader_password_says_how_to_set_one(make_services: MakeServices, app: AppTest) -> None:
    password_app(make_services, reader=None)
    at = app.run()
    assert NO_READER_PASSWORD in texts(at.warning)
    assert sign_in(at, ADMIN).chat_input


def test_single_sign_on_without_a_provider_opens_nothing(make_services: MakeServices, app: AppTest) -> None:
    make_services(auth="oidc")
    at = app.run()
    assert NO_OIDC_PROVIDER in texts(at.error)
    assert not shows_app(at)


def test_single_sign_on_asks_to_sign_in(make_services: MakeServices, app: AppTest) -> None:
    make_services(auth="oidc")
    app.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}
    at = app.run()
    assert [b.label for b in at.button] == ["Sign in"]
    assert not shows_app(at)


def test_signing_out_of_single_sign_on_also_leaves_admin(
    make_services: MakeServices, app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_services(auth="oidc", password=ADMIN)
    app.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}
    logged_out: list[bool] = []
    monkeypatch.setattr(gate, "oidc_signed_in", lambda: not logged_out)

    def logout() -> None:  # the provider signs the browser out, and the app reruns
        logged_out.append(True)
        gate.st.rerun()

    monkeypatch.setattr(gate.st, "logout", logout)
    at = app.run().switch_page("rag/ui/admin.py").run()
    at.text_input[0].input(ADMIN)
    at = at.button[0].click().run()
    assert at.session_state[state.ADMIN_OK]
    assert sorted(b.label for b in at.sidebar.button) == ["Leave admin", "Sign out"]
    at = next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert logged_out
    assert state.ADMIN_OK not in at.session_state
    assert [b.label for b in at.button] == ["Sign in"]


def test_no_sign_in_by_default(make_services: MakeServices, app: AppTest) -> None:
    make_services()
    assert app.run().chat_input


def test_without_sign_in_a_browser_from_elsewhere_sees_nothing(
    make_services: MakeServices, app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_eiffel(make_services())
    monkeypatch.setattr(gate, "remote_address", lambda: "198.51.100.7")  # started on 0.0.0.0
    at = app.run()
    assert NOT_SHARED in texts(at.error)
    assert not shows_app(at)
