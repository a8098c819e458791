"""Admin page (password protected): index statistics, models in use, re-index everything.

The re-index runs as a background job (:mod:`rag.jobs`): clicks, page switches and closed tabs
do not stop it, and a second one is refused while it runs.

A page file: ``app.py`` runs it through ``st.navigation`` (as ``__main__``); importing it
renders nothing.
"""

from __future__ import annotations

import streamlit as st

from rag.jobs import REINDEX, JobBusy, JobRunner, runner_for, start_reindex
from rag.models import describe
from rag.services import IndexStats, Services
from rag.types import ReindexReport
from rag.ui.state import ADMIN_OK, admin_password, get_services
from rag.ui.widgets import HOW_TO_ENABLE_ADMIN, admin_login_form, code_span, md_escape, sign_out_button

POLL_S = 0.5


def index_section(stats: IndexStats) -> None:
    st.subheader("Index")
    docs, chunks = st.columns(2)
    docs.metric("Documents", stats.documents)
    chunks.metric("Chunks", stats.chunks)
    st.markdown(
        f"- Active collection: `{stats.collection}`\n"
        f"- Embedding model of the index: `{describe('embedding', stats.indexed_with)}`\n"
        f"- Embedding model configured: `{describe('embedding', stats.embedder)}`"
    )
    if stats.indexed_with != stats.embedder:
        st.warning(
            f"The index was built with `{stats.indexed_with}` but `{stats.embedder}` is configured: "
            "re-index needed. Until then, questions are embedded with a model the index does not match."
        )


def models_section(services: Services, stats: IndexStats) -> None:
    settings = services.settings
    loaded = "loaded" if services.generator_loaded else "not loaded yet (loads on the first question)"
    st.subheader("Models and data")
    st.markdown(
        f"- Embedding model: `{describe('embedding', stats.embedder)}`\n"
        f"- Reranker: `{code_span(stats.reranker)}`\n"
        f"- Generator: `{describe('llm', stats.generator)}`, {loaded}\n"
        + (f"- Generator adapter (LoRA): `{code_span(stats.adapter)}`\n" if stats.adapter else "")
        + (f"- Decode steps: {stats.decoding}\n" if stats.decoding else "")
        + f"- Data directory: `{code_span(str(settings.home_dir))}`\n"
        f"- Model cache: `{code_span(str(settings.model_cache_dir))}`"
    )


def render_report(report: ReindexReport) -> None:
    st.success(
        f"Re-indexed {report.documents} document(s) into {report.chunks} chunks "
        f"in {report.seconds:.1f} s (collection `{report.collection}`)."
    )
    for failure in report.failed:
        st.warning(md_escape(f"{failure.source}: {failure.reason}"))


@st.fragment(run_every=POLL_S)
def reindex_progress(runner: JobRunner) -> None:
    """Polls the running re-index; reruns the whole page (fresh statistics) once it has finished."""
    job = runner.active(REINDEX)
    if job is None:
        st.rerun()
    st.progress(job.fraction, text=f"Re-index: {runner.status_text(job)}")
    st.caption("It runs on if you leave this page or close the tab.")


def reindex_section(services: Services) -> None:
    st.subheader("Re-index")
    st.caption(
        "Rebuilds every document from its stored copy into a new collection with the configured "
        "embedding model, then switches over. Questions keep working meanwhile."
    )
    runner = runner_for(services)
    if st.button("Re-index everything", key="reindex", icon=":material/refresh:"):
        try:
            start_reindex(runner, services)
        except JobBusy as e:
            st.warning(str(e))
    if runner.active(REINDEX) is not None:
        reindex_progress(runner)
        return
    last = runner.last(REINDEX)
    if last is not None and last.result is not None:
        render_report(last.result)
    elif last is not None:
        st.error(
            f"Re-index failed: {md_escape(last.error)}. The index answers as before; "
            "correct the cause, then press Re-index again."
        )


def render() -> None:
    st.title("Admin")
    expected = admin_password()
    if expected is None:
        st.warning(f"The admin page is disabled because no admin password is set. {HOW_TO_ENABLE_ADMIN}")
        return
    if not admin_login_form(expected):
        return
    services = get_services()
    # With RAG_AUTH=password the sign-in gate's own button already signs out of everything.
    if services.settings.auth != "password":
        label = "Sign out" if services.settings.auth == "none" else "Leave admin"
        sign_out_button(label, "admin_sign_out", (ADMIN_OK,))
    stats = services.stats()
    index_section(stats)
    models_section(services, stats)
    reindex_section(services)


if __name__ == "__main__":
    render()
