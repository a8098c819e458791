"""The admin password `make run` generates on first run, stored hashed and owner-only.

Without an admin password the admin page, uploads and deletes are disabled, so a fresh
install could not try them. On first run ``python -m rag.credentials`` makes one, prints it
once, and keeps only its scrypt hash in ``RAG_HOME/admin-password`` (mode 0600). A password
the operator configured (``RAG_ADMIN_PASSWORD`` or ``admin_password`` in
``.streamlit/secrets.toml``) always wins and nothing is generated.

    python -m rag.credentials           # generate one if none is set, print it once
    python -m rag.credentials --reset   # forgot it: replace the stored one, print the new one
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tomllib
from pathlib import Path

from rag.auth import HASH_PREFIX, hash_password
from rag.config import Settings, get_settings

SECRETS_TOML = Path(".streamlit") / "secrets.toml"


def admin_password_file(settings: Settings) -> Path:
    return settings.home_dir / "admin-password"


def stored_admin_hash(settings: Settings) -> str | None:
    """The generated admin password's hash, or ``None`` when none was generated."""
    try:
        value = admin_password_file(settings).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value if value.startswith(HASH_PREFIX) else None


def configured_secret(name: str, secrets_toml: Path = SECRETS_TOML) -> str | None:
    """``name`` from ``.streamlit/secrets.toml`` read as a file (outside Streamlit)."""
    try:
        with secrets_toml.open("rb") as f:
            value = tomllib.load(f).get(name)
    except (FileNotFoundError, tomllib.TOMLDecodeError):
        return None
    return str(value) if value else None


def operator_set_admin_password(settings: Settings) -> bool:
    configured = settings.admin_password
    return bool(configured and configured.get_secret_value()) or configured_secret("admin_password") is not None


def write_admin_password(settings: Settings, reset: bool = False) -> str | None:
    """Generate an admin password, store its hash owner-only, return it (``None`` when one
    is already configured or stored and ``reset`` is false)."""
    path = admin_password_file(settings)
    if not reset and (operator_set_admin_password(settings) or stored_admin_hash(settings) is not None):
        return None
    password = secrets.token_urlsafe(15)  # 20 characters, 120 bits
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(hash_password(password) + "\n")
    os.replace(tmp, path)
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.credentials", description=__doc__.splitlines()[0])
    parser.add_argument("--reset", action="store_true", help="replace the generated admin password")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.reset and operator_set_admin_password(settings):
        print("The admin password is set by RAG_ADMIN_PASSWORD or .streamlit/secrets.toml; change it there.")
        return 1
    password = write_admin_password(settings, reset=args.reset)
    path = admin_password_file(settings)
    if password is None:
        where = "configured by the operator" if operator_set_admin_password(settings) else f"stored in {path}"
        print(f"Admin password: already set ({where}). Forgot it? python -m rag.credentials --reset")
        return 0
    print(
        f"\n  Admin password (shown once, only its hash is kept in {path}):\n\n      {password}\n\n"
        "  Sign in on the Admin page with it to upload, delete and re-index.\n",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
