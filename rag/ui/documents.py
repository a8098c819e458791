"""Documents page: upload files into the index (sessions that may write), see what is indexed,
delete a document (admin).

Uploads run as background jobs (:mod:`rag.jobs`): a click, a page switch or a closed tab while
one runs does not stop it. A page file: ``app.py`` runs it through ``st.navigation`` (as
``__main__``); importing it renders nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from rag.jobs import UPLOAD, Job, JobRunner, runner_for, start_upload
from rag.services import Services
from rag.types import IndexedDocument, UploadReport
from rag.ui.state import admin_password, get_services, is_admin, may_write
from rag.ui.widgets import HOW_TO_ENABLE_ADMIN, format_time, md_escape, verify_admin

UPLOAD_JOB_KEY = "upload_job"  # id of this session's upload job while it runs
RESULTS_KEY = "ingest_results"  # Job[UploadReport]: this session's last finished upload
UPLOADER_GEN_KEY = "uploader_generation"  # bumped to empty the uploader once its files are queued
DELETED_KEY = "deleted_message"
POLL_S = 0.5
WHO_MAY_UPLOAD = (
    "Only the admin may add documents: sign in on the Admin page first. To let every signed-in "
    "reader upload, set `RAG_WRITERS=readers` and restart the app."
)


def render_results(report: UploadReport) -> None:
    results = report.results
    counts = Counter(r.status for r in results)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("indexed", "unchanged", "failed") if counts[s])
    st.markdown(f"**Last upload:** {summary}")
    done = [r for r in results if r.status != "failed"]
    if done:
        st.dataframe(
            [
                {
                    "File": r.source,
                    "Result": "new version" if report.is_new_version(r) else r.status,
                    "Chunks": r.chunks,
                    "Newly embedded": r.embedded,
                }
                for r in done
            ],
            hide_index=True,
        )
    for r in done:
        if report.is_new_version(r):
            st.info(
                f"New version of {md_escape(r.source)}: it replaces the document of that name indexed before.",
                icon=":material/update:",
            )
    for r in results:
        if r.status == "failed":
            reason = r.reason if r.reason.startswith(r.source) else f"{r.source}: {r.reason}"
            st.error(md_escape(reason), icon=":material/error:")


@st.fragment(run_every=POLL_S)
def upload_progress(runner: JobRunner, job_id: int) -> None:
    """Polls the upload job; reruns the whole page once it has finished."""
    job = runner.get(UPLOAD, job_id)
    if job is None or job.finished:
        st.rerun()
    st.progress(job.fraction, text=f"Indexing: {runner.status_text(job)}")


def show_upload(job: Job[UploadReport]) -> None:
    if job.result is not None:
        render_results(job.result)
    else:
        st.error(
            f"The upload stopped: {md_escape(job.error)}. What it indexed before that is listed below; "
            "upload the other files again."
        )


def upload_section(services: Services) -> None:
    if not may_write():
        st.info(WHO_MAY_UPLOAD if admin_password() else f"Uploads need an admin password. {HOW_TO_ENABLE_ADMIN}")
        return
    runner = runner_for(services)
    job_id = st.session_state.get(UPLOAD_JOB_KEY)
    job = runner.get(UPLOAD, job_id) if job_id is not None else None
    if job is not None and not job.finished:  # runs on, whatever this session does meanwhile
        upload_progress(runner, job.id)
        return
    if job is not None:
        st.session_state[RESULTS_KEY] = job
    st.session_state.pop(UPLOAD_JOB_KEY, None)
    generation = st.session_state.setdefault(UPLOADER_GEN_KEY, 0)
    types = services.file_types  # with their dots: a bare "text" would mean any text/* file to Streamlit
    files = st.file_uploader(
        "Add documents",
        type=list(types),
        accept_multiple_files=True,
        key=f"uploads_{generation}",
        help=f"{', '.join(types)}; at most {services.settings.max_file_mb:g} MB per file.",
    )
    if st.button("Index files", type="primary", disabled=not files, key="index_files") and files:
        queued = start_upload(runner, services, [(f.name, f.getvalue()) for f in files])
        st.session_state[UPLOAD_JOB_KEY] = queued.id
        st.session_state[UPLOADER_GEN_KEY] = generation + 1  # a fresh, empty uploader
        st.rerun()
    last = st.session_state.get(RESULTS_KEY)
    if last is not None:
        show_upload(last)


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
    if services.delete(doc_id):
        st.session_state[DELETED_KEY] = f"Deleted {md_escape(by_id[doc_id].source)}."
        st.rerun()
    st.warning("That document was already deleted.")


def render() -> None:
    services = get_services()
    st.title("Documents")
    upload_section(services)
    docs = services.documents()
    documents_table(docs)
    delete_section(services, docs)


if __name__ == "__main__":
    render()
