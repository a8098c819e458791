"""The sign-in gate every page passes first (RAG_AUTH).

- ``none``: no gate, for this machine only: the app listens on 127.0.0.1, and a browser
  that still arrives from another address (the app started with ``--server.address
  0.0.0.0``) is told to ask for sign-in instead of being shown anything.
- ``password``: a reader password (RAG_READER_PASSWORD) or the admin one opens the app for
  this browser session; wrong guesses go through the per-client sign-in brake.
- ``oidc``: Streamlit's ``st.login`` single sign-on; the provider is configured under
  ``[auth]`` in ``.streamlit/secrets.toml`` (docs/deploy.md).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from rag.ui.state import (
    ADMIN_OK,
    READER_OK,
    admin_password,
    get_services,
    reader_password,
    remote_address,
)
from rag.ui.widgets import sign_out_button, verify_password

NO_READER_PASSWORD = (
    "Sign-in is on (RAG_AUTH=password) but no reader password is set: set RAG_READER_PASSWORD or "
    '`reader_password = "..."` in `.streamlit/secrets.toml` and restart. The admin password still signs in.'
)
NOT_SHARED = (
    "This app is not shared: sign-in is off (RAG_AUTH=none), so it only answers this machine. "
    "To share it, set RAG_AUTH=password (or oidc) and restart (docs/deploy.md)."
)
NO_OIDC_PROVIDER = (
    "Single sign-on is on (RAG_AUTH=oidc) but `.streamlit/secrets.toml` has no `[auth]` section: "
    "add one with your provider's redirect_uri, cookie_secret, client_id, client_secret and "
    "server_metadata_url (docs/deploy.md), then restart."
)


def _password_gate() -> bool:
    if st.session_state.get(READER_OK) or st.session_state.get(ADMIN_OK):
        sign_out_button("Sign out", "gate_sign_out", (READER_OK, ADMIN_OK))
        return True
    st.title("Grounded")
    reader, admin = reader_password(), admin_password()
    if reader is None:
        st.warning(NO_READER_PASSWORD)
    with st.form("sign_in", clear_on_submit=True):
        given = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return False
    # one attempt: the admin password first (it opens admin too), then the reader one
    result = verify_password(given, (admin or "", reader or ""), "signin")
    if not result.ok:
        return False
    st.session_state[ADMIN_OK] = result.matched == 0
    st.session_state[READER_OK] = True
    st.rerun()
    return False


def _oidc_configured() -> bool:
    try:
        section: Any = st.secrets.get("auth")
    except FileNotFoundError:
        return False
    return bool(section)


def oidc_signed_in() -> bool:
    """Whether the single sign-on provider has signed this browser in."""
    return bool(st.user.get("is_logged_in", False))  # absent until a provider signed it in


def _oidc_gate() -> bool:
    if not _oidc_configured():
        st.error(NO_OIDC_PROVIDER)
        return False
    if oidc_signed_in():
        # the admin page's own sign-in goes too: the next person at this browser is not admin
        sign_out_button("Sign out", "gate_sign_out", (ADMIN_OK,), then=st.logout)
        return True
    st.title("Grounded")
    st.button("Sign in", type="primary", on_click=st.login)
    return False


def signed_in() -> bool:
    """True when this session may see the app; otherwise the sign-in form is rendered."""
    mode = get_services().settings.auth
    if mode == "password":
        return _password_gate()
    if mode == "oidc":
        return _oidc_gate()
    if remote_address() is not None:
        st.error(NOT_SHARED)
        return False
    return True
