"""Documents page: upload files into the index, see what is indexed, delete a document (admin).

A page file: ``app.py`` runs it through ``st.navigation`` (as ``__main__``); importing it
renders nothing, so :func:`ingest_uploads` can be tested on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from ingest.names import safe_filename
from ingest.pipeline import Indexer, Progress
from rag.services import Services
from rag.types import FileResult, IndexedDocument
from rag.ui.state import admin_password, get_services, is_admin
from rag.ui.widgets import HOW_TO_ENABLE_ADMIN, format_time, md_escape, verify_admin

UPLOAD_TYPES = ["pdf", "docx", "html", "htm", "md", "markdown", "txt"]
RESULTS_KEY = "ingest_results"  # list[FileResult] of the last "Index files" click
UPLOADER_GEN_KEY = "uploader_generation"  # bumped to empty the uploader after indexing
DELETED_KEY = "deleted_message"


def ingest_uploads(
    indexer: Indexer, files: Sequence[tuple[str, bytes]], progress: Progress | None = None
) -> list[FileResult]:
    """Index uploaded ``(file name, bytes)`` pairs under sanitised names, one result per file."""
    results: list[FileResult] = []
    for i, (name, data) in enumerate(files):
        safe = safe_filename(name)
        if progress:
            progress(i, len(files), safe)
        results.append(indexer.ingest_bytes(data, safe))
    if progress:
        progress(len(files), len(files), "done")
    return results


def render_results(results: Sequence[FileResult]) -> None:
    counts = Counter(r.status for r in results)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("indexed", "unchanged", "failed") if counts[s])
    st.markdown(f"**Last upload:** {summary}")
    done = [r for r in results if r.status != "failed"]
    if done:
        st.dataframe(
            [{"File": r.source, "Result": r.status, "Chunks": r.chunks, "Newly embedded": r.embedded} for r in done],
            hide_index=True,
        )
    for r in results:
        if r.status == "failed":
            reason = r.reason if r.reason.startswith(r.source) else f"{r.source}: {r.reason}"
            st.error(md_escape(reason), icon=":material/error:")


def upload_section(services: Services) -> None:
    generation = st.session_state.setdefault(UPLOADER_GEN_KEY, 0)
    files = st.file_uploader(
        "Add documents",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"uploads_{generation}",
        help=f"PDF, Word, HTML, Markdown or text; at most {services.settings.max_file_mb:g} MB per file.",
    )
    if st.button("Index files", type="primary", disabled=not files, key="index_files") and files:
        bar = st.progress(0.0, text="Starting…")

        def progress(done: int, total: int, message: str) -> None:
            bar.progress(done / total if total else 1.0, text=f"{done}/{total} · {message}")

        st.session_state[RESULTS_KEY] = ingest_uploads(
            services.indexer, [(f.name, f.getvalue()) for f in files], progress
        )
        st.session_state[UPLOADER_GEN_KEY] = generation + 1  # a fresh, empty uploader
        st.rerun()
    results = st.session_state.get(RESULTS_KEY)
    if results:
        render_results(results)


def documents_table(docs: Sequence[IndexedDocument]) -> None:
    st.subheader("Indexed documents")
    if not docs:
        st.info("Nothing is indexed yet. Upload files above.")
        return
    st.dataframe(
        [
            {
                "Name": Path(d.source).name,
                "Pages": d.pages,
                "Chunks": d.chunks,
                "Indexed at": format_time(d.indexed_at),
            }
            for d in docs
        ],
        hide_index=True,
    )


def delete_section(services: Services, docs: Sequence[IndexedDocument]) -> None:
    st.subheader("Delete a document")
    message = st.session_state.pop(DELETED_KEY, None)
    if message:
        st.success(message)
    expected = admin_password()
    if expected is None:
        st.info(f"Deleting documents needs an admin password. {HOW_TO_ENABLE_ADMIN}")
        return
    if not docs:
        return
    by_id = {d.doc_id: d for d in docs}
    with st.form("delete_document", clear_on_submit=True):
        doc_id = st.selectbox(
            "Document",
            options=list(by_id),
            index=None,
            format_func=lambda i: by_id[i].source,
            placeholder="Choose a document",
        )
        admin = is_admin()
        given = "" if admin else st.text_input("Admin password", type="password", key="delete_password")
        submitted = st.form_submit_button("Delete", icon=":material/delete:")
    if not submitted:
        return
    if doc_id is None:
        st.warning("Choose a document to delete.")
        return
    if not admin and not verify_admin(given, expected):
        return
    if services.indexer.delete(doc_id):
        st.session_state[DELETED_KEY] = f"Deleted {md_escape(by_id[doc_id].source)}."
        st.rerun()
    st.warning("That document was already deleted.")


def render() -> None:
    services = get_services()
    st.title("Documents")
    upload_section(services)
    docs = services.registry.documents()
    documents_table(docs)
    delete_section(services, docs)


if __name__ == "__main__":
    render()
