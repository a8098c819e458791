"""Process-wide objects for the Streamlit pages: the services, the admin password, the login brake.

Tests inject services built with fakes via :func:`use_services` (AppTest runs the app in
the test's own process, so the override is visible to the pages).
"""

from __future__ import annotations

import streamlit as st

from rag.auth import RateLimiter
from rag.config import get_settings
from rag.services import Services

ADMIN_OK = "admin_ok"  # session_state key: this session entered the right admin password
ADMIN_LIMIT_KEY = "admin"  # one rate-limit bucket for every admin login in the process

_override: Services | None = None


def use_services(services: Services | None) -> None:
    """Make :func:`get_services` return ``services`` (``None`` restores the real ones)."""
    global _override
    _override = services


@st.cache_resource(show_spinner="Opening the index…")
def _build_services() -> Services:
    return Services(get_settings())


def get_services() -> Services:
    """The services of this process, built once from :func:`rag.config.get_settings`."""
    if _override is not None:
        return _override
    return _build_services()


@st.cache_resource
def login_limiter() -> RateLimiter:
    """One brake for wrong admin passwords, shared by all sessions (5 per minute)."""
    return RateLimiter(max_failures=5, window_s=60.0)


def _secrets_password() -> str | None:
    try:
        value = st.secrets.get("admin_password")
    except FileNotFoundError:  # no secrets.toml anywhere (StreamlitSecretNotFoundError)
        return None
    return str(value) if value else None


def admin_password() -> str | None:
    """The configured admin password: RAG_ADMIN_PASSWORD, else ``admin_password`` in
    ``.streamlit/secrets.toml``, else ``None`` (admin disabled)."""
    configured = get_services().settings.admin_password
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    return _secrets_password()


def is_admin() -> bool:
    return bool(st.session_state.get(ADMIN_OK, False))
