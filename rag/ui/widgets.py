"""Rendering shared by the pages: answers with their cited passages, the admin password form.

Document text is untrusted: anything from a document that is rendered as HTML goes through
:func:`html.escape` first (see :func:`highlight_html`).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import streamlit as st

from rag.auth import LoginResult, attempt_login
from rag.types import Answer, Chunk, Citation
from rag.ui.state import ADMIN_OK, client_key, is_admin, login_brake

HOW_TO_ENABLE_ADMIN = (
    "Run `python -m rag.credentials` (what `make run` does on first run) to generate one, or set "
    '`RAG_ADMIN_PASSWORD` or `admin_password = "..."` in `.streamlit/secrets.toml`, then restart the app.'
)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$])")
_BOX_STYLE = (
    "border-left:3px solid rgba(128,128,128,0.45);padding:0.2rem 0 0.2rem 0.8rem;"
    "margin:0.2rem 0 0.8rem 0;font-size:0.92rem"
)


# --- pure helpers (no Streamlit calls) ------------------------------------------------------
def md_escape(text: str) -> str:
    r"""Backslash-escape Markdown syntax so ``text`` renders literally.

    >>> md_escape("a_b *c* [1] $5")
    'a\\_b \\*c\\* \\[1\\] \\$5'
    """
    return _MD_SPECIAL.sub(r"\\\1", text)


def code_span(text: str) -> str:
    """Text for inside Markdown backticks: escapes are not processed there, so only backticks
    need care (replaced by a look-alike so the span cannot close early).

    >>> code_span("/tmp/my_home")
    '/tmp/my_home'
    """
    return text.replace("`", "\u02cb")


def unwrap(text: str) -> str:
    """Turn line-wrapping newlines (PDF text is full of them) into spaces, keeping paragraph
    breaks. Same length as ``text``, so character offsets stay valid.

    >>> unwrap("a tower\\nof iron.\\n\\nNew para")
    'a tower of iron.\\n\\nNew para'
    """
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text)


def escape_html(text: str) -> str:
    """HTML-escape ``text`` and keep its line breaks (``<br>``), on a single line.

    >>> escape_html('<b>"x"</b> & y\\nz')
    '&lt;b&gt;&quot;x&quot;&lt;/b&gt; &amp; y<br>z'
    """
    return html.escape(text.replace("\r\n", "\n").replace("\r", "\n")).replace("\n", "<br>")


def highlight_html(text: str, span: tuple[int, int]) -> str:
    """``text`` as safe HTML with ``text[start:end]`` wrapped in ``<mark>``.

    The text is escaped piece by piece, so offsets refer to the original text and
    nothing in it can become markup. An empty or out-of-range span marks nothing.

    >>> highlight_html("Built in 1889 <by> Eiffel.", (9, 13))
    'Built in <mark>1889</mark> &lt;by&gt; Eiffel.'
    >>> highlight_html("abc", (5, 9))
    'abc'
    """
    text = unwrap(text)
    start = max(0, min(span[0], len(text)))
    end = max(start, min(span[1], len(text)))
    if start == end:
        return escape_html(text)
    before, marked, after = text[:start], text[start:end], text[end:]
    return f"{escape_html(before)}<mark>{escape_html(marked)}</mark>{escape_html(after)}"


def citation_label(citation: Citation) -> str:
    """``[n] file name · page p`` (the page only for paginated formats).

    Plain text, not escaped.
    """
    return f"[{citation.n}] {chunk_label(citation.chunk)}"


def chunk_label(chunk: Chunk) -> str:
    """``file name · page p`` (the page only for paginated formats); plain text, not escaped."""
    label = Path(chunk.source).name
    if chunk.page is not None:
        label += f" · page {chunk.page}"
    return label


def citation_html(citation: Citation) -> str:
    """One cited passage as a single-line HTML block: label, then the passage with its highlight.

    Single line on purpose: Markdown leaves an HTML block alone up to the next blank line, so
    Markdown syntax inside the passage is shown as typed.
    """
    return (
        f'<div class="grounded-citation" style="{_BOX_STYLE}">'
        f"<strong>{html.escape(citation_label(citation))}</strong><br>"
        f"{highlight_html(citation.chunk.text, citation.highlight)}</div>"
    )


def timings_caption(timings_ms: dict[str, float]) -> str:
    """How long each stage took, for a small caption.

    >>> timings_caption({"retrieve": 12.3, "first_token": 80, "generate": 950.5})
    'retrieve 12 ms · first token 80 ms · generate 950 ms'
    """
    return " · ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in timings_ms.items())


def removed_sentences_title(n: int) -> str:
    """The title of the list of generated sentences that were dropped.

    >>> removed_sentences_title(1)
    '1 generated sentence was removed because no source supports it'
    >>> removed_sentences_title(2)
    '2 generated sentences were removed because no source supports them'
    """
    if n == 1:
        return "1 generated sentence was removed because no source supports it"
    return f"{n} generated sentences were removed because no source supports them"


def format_time(ts: float) -> str:
    """A unix time as local ``YYYY-MM-DD HH:MM``."""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


# --- Streamlit widgets ----------------------------------------------------------------------
def render_answer(answer: Answer, key: str | None = None) -> None:
    """The final answer: text (info style when abstaining), notes, cited passages (each with a
    button that opens it in its original when ``key`` names the answer), timings."""
    # Escaped: an answer may quote a document, and Markdown from a document (a remote image, a
    # link) must not render. Markers show as written, "$" is money, not LaTeX.
    text = md_escape(answer.text)
    if answer.searched_for:
        st.caption(f"Searched for: {md_escape(answer.searched_for)}")
    if answer.abstained:
        st.info(text)
    else:
        st.markdown(text)
    if answer.extractive:
        st.caption(
            "The generated answer could not be verified against the sources, "
            "so this answer quotes the best-matching source instead."
        )
    if answer.unsupported:
        with st.expander(removed_sentences_title(len(answer.unsupported))):
            st.markdown("\n".join(f"- {md_escape(s)}" for s in answer.unsupported))
    for citation in answer.citations:
        st.markdown(citation_html(citation), unsafe_allow_html=True)
        label = f"Open {citation_label(citation)}"
        if key is not None and st.button(label, key=f"{key}-src-{citation.n}", icon=":material/open_in_new:"):
            source_dialog(citation)
    if answer.timings_ms:
        st.caption(timings_caption(answer.timings_ms))


@st.dialog("Source", width="large")
def source_dialog(citation: Citation) -> None:
    """The cited page (PDF: the page image, the sentence highlighted) or the document text
    scrolled to the passage, with a download of the stored original."""
    import streamlit.components.v1 as components

    from rag.source_view import SourceGone
    from rag.ui.state import get_services

    st.markdown(f"**{md_escape(citation_label(citation))}**")
    try:
        view = get_services().source_view(citation)
    except (SourceGone, OSError) as e:
        st.warning(str(e) if isinstance(e, SourceGone) else f"The stored original cannot be read: {e}")
        return
    if view.image is not None:
        st.image(view.image, caption=None if view.found else "The cited sentence could not be located on the page.")
    elif view.html is not None:
        components.html(view.html, height=480)
    st.download_button("Download the original", view.original, file_name=view.name, mime=view.mime,
                       icon=":material/download:")  # fmt: skip


def brake_message(retry_after: float, refused: bool) -> str:
    """What a wrong or refused sign-in is told.

    >>> brake_message(0.0, refused=False)
    'Wrong password'
    >>> brake_message(41.2, refused=True)
    'Too many wrong passwords. Try again in 42 s.'
    """
    wait = math.ceil(retry_after)
    if refused:
        return f"Too many wrong passwords. Try again in {wait} s."
    if wait > 0:
        return f"Wrong password. Too many attempts: try again in {wait} s."
    return "Wrong password"


def verify_password(given: str, expected: str | Sequence[str], kind: str) -> LoginResult:
    """Check an entered password (or several, in order) through the sign-in brake of this
    client (``kind`` names the bucket: ``admin`` or ``signin``); on failure an error says why.
    The password itself is never shown, stored or logged."""
    result = attempt_login(given, expected, login_brake(), client_key(kind))
    if not result.ok:
        st.error(brake_message(result.retry_after, result.refused))
    return result


def verify_admin(given: str, expected: str) -> bool:
    """Check an entered admin password; on success the session counts as admin
    (``st.session_state["admin_ok"]``)."""
    if not verify_password(given, expected, "admin").ok:
        return False
    st.session_state[ADMIN_OK] = True
    return True


def admin_login_form(expected: str, key: str = "admin_login") -> bool:
    """A password form; True once this session is admin (reruns the page on success)."""
    if is_admin():
        return True
    wait = login_brake().retry_after(client_key("admin"))
    if wait > 0:
        st.warning(brake_message(wait, refused=True))
    with st.form(key, clear_on_submit=True):
        given = st.text_input("Admin password", type="password", key=f"{key}_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted and verify_admin(given, expected):
        st.rerun()
    return False


def sign_out_button(label: str, key: str, forget: Sequence[str], then: Callable[[], None] | None = None) -> None:
    """A sidebar button that drops these session keys, then reruns (or calls ``then``)."""
    if st.sidebar.button(label, key=key, icon=":material/logout:"):
        for name in forget:
            st.session_state.pop(name, None)
        (then or st.rerun)()
