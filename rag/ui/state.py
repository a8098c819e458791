"""Process-wide objects for the Streamlit pages: the services, the passwords, the sign-in brake.

Tests inject services built with fakes via :func:`use_services` (AppTest runs the app in
the test's own process, so the override is visible to the pages).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from pydantic import SecretStr

from rag.config import get_settings
from rag.credentials import stored_admin_hash
from rag.login_brake import LoginBrake
from rag.services import Services

ADMIN_OK = "admin_ok"  # session_state key: this session entered the right admin password
READER_OK = "reader_ok"  # session_state key: this session got past the sign-in gate

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
def _brake(path: str) -> LoginBrake:
    return LoginBrake(Path(path), max_failures=5, window_s=60.0)


def login_brake() -> LoginBrake:
    """The brake on wrong passwords (5 per minute per client), kept in ``RAG_HOME`` so a
    restart does not reset it and every process on the same data shares it."""
    return _brake(str(get_services().settings.home_dir / "signin.sqlite3"))


def remote_address() -> str | None:
    """The browser's address, ``None`` when it connects from this machine."""
    ip = st.context.ip_address
    return ip if isinstance(ip, str) and ip else None  # AppTest has no real peer


def client_key(kind: str) -> str:
    """The brake's key for this browser's client: ``kind`` and the peer address (``local``
    for localhost). A stranger's wrong guesses lock out only the stranger's address."""
    return f"{kind}|{remote_address() or 'local'}"


def _secret(name: str) -> str | None:
    try:
        value = st.secrets.get(name)
    except FileNotFoundError:  # no secrets.toml anywhere (StreamlitSecretNotFoundError)
        return None
    return str(value) if value else None


def _password(configured: SecretStr | None, name: str) -> str | None:
    """A password set in the environment (``configured``), else ``name`` in secrets.toml."""
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    return _secret(name)


def admin_password() -> str | None:
    """The admin password to check against: RAG_ADMIN_PASSWORD, else ``admin_password`` in
    ``.streamlit/secrets.toml``, else the hash `make run` generated, else ``None`` (admin
    disabled)."""
    settings = get_services().settings
    return _password(settings.admin_password, "admin_password") or stored_admin_hash(settings)


def reader_password() -> str | None:
    """The reader password (RAG_AUTH=password): RAG_READER_PASSWORD, else ``reader_password``
    in ``.streamlit/secrets.toml``."""
    return _password(get_services().settings.reader_password, "reader_password")


def is_admin() -> bool:
    return bool(st.session_state.get(ADMIN_OK, False))


def may_write() -> bool:
    """Whether this session may upload documents (RAG_WRITERS): the admin, or every reader
    who got past the sign-in gate."""
    if get_services().settings.writers == "readers":
        return True
    return is_admin()
