"""Chat page: ask a question, watch the answer stream in, then read it with its cited passages.

A page file: ``app.py`` runs it through ``st.navigation`` (as ``__main__``); importing it
renders nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from rag.followup import Turn
from rag.pipeline import MAX_QUESTION_CHARS
from rag.services import Services
from rag.types import Answer
from rag.ui.state import get_services
from rag.ui.widgets import md_escape, render_answer

log = logging.getLogger(__name__)

# list of {"role": "user", "question": str} and {"role": "assistant", "answer": Answer}
HISTORY_KEY = "chat_history"
DOCUMENTS_PAGE = "rag/ui/documents.py"


def history() -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = st.session_state.setdefault(HISTORY_KEY, [])
    return turns


def render_turn(turn: dict[str, Any], key: str | None = None) -> None:
    """One turn; ``key`` (unique in the conversation) lets an answer's citations open their source."""
    with st.chat_message(turn["role"]):
        if turn["role"] == "user":
            st.markdown(turn["question"])
        else:
            render_answer(turn["answer"], key)


def empty_index_hint() -> None:
    st.info("No documents are indexed yet. Add some on the Documents page, then ask away.")
    st.page_link(DOCUMENTS_PAGE, label="Go to Documents", icon=":material/upload_file:")


# What the user reads above the streaming draft.
DRAFT_CAPTION = "Draft, being written — each sentence is checked against the sources when it is done."


def conversation(turns: list[dict[str, Any]]) -> list[Turn]:
    """The finished exchanges of the conversation, oldest first (for follow-up questions)."""
    out = []
    for asked, replied in zip(turns[::2], turns[1::2], strict=False):
        if asked["role"] == "user" and replied["role"] == "assistant":
            out.append(Turn(asked["question"], replied["answer"].text))
    return out


def answer(
    services: Services,
    question: str,
    doc_ids: list[str] | None = None,
    key: str | None = None,
    history: list[Turn] | None = None,
) -> Answer | None:
    """Stream the answer into an assistant message, then replace it with the final, checked one."""
    with st.chat_message("assistant"):
        slot = st.empty()
        try:
            if services.generator_loaded:
                stream = services.ask_stream(question, doc_ids or None, history or ())
            else:
                with st.spinner("Loading the language model (first question only)…"):
                    stream = services.ask_stream(question, doc_ids or None, history or ())
            with slot.container():
                # The raw draft streams in; every sentence is then checked against the sources
                # and the checked answer replaces it, so say so up front.
                st.caption(DRAFT_CAPTION)
                # Escaped piece by piece: nothing a document or the model wrote renders as
                # Markdown (a remote image would load the moment the draft shows it).
                st.write_stream(md_escape(piece) for piece in stream)
        except Exception as e:  # show the failure in place of the answer; keep the app alive
            log.exception("answering failed")
            slot.error(f"Could not answer: {type(e).__name__}: {e}")
            return None
        if stream.answer is None:
            slot.error("Could not answer: the answer stream ended early.")
            return None
        with slot.container():
            render_answer(stream.answer, key)
        return stream.answer


def document_filter(services: Services) -> list[str]:
    """Sidebar choice of documents to search; none chosen = all of them."""
    docs = {d.doc_id: d.source for d in services.documents()}
    if len(docs) < 2:
        return []
    return st.sidebar.multiselect(
        "Search only in",
        options=list(docs),
        format_func=lambda d: docs[d].rsplit("/", 1)[-1],
        placeholder="All documents",
        help="Limit retrieval (dense and BM25) to these documents.",
    )


def render() -> None:
    services = get_services()
    st.title("Ask your documents")
    turns = history()
    if turns and st.sidebar.button("Clear conversation", icon=":material/delete_sweep:"):
        turns.clear()
    doc_ids = document_filter(services)
    for i, past in enumerate(turns):
        render_turn(past, f"turn{i}")
    question = st.chat_input("Ask a question about your documents", max_chars=MAX_QUESTION_CHARS)
    if services.document_count() == 0:
        empty_index_hint()
        return
    if not question:
        if not turns:
            st.caption("Answers cite their sources as [1], [2], … with the supporting passage highlighted.")
        return
    turn: dict[str, Any] = {"role": "user", "question": question}
    render_turn(turn)
    final = answer(services, question, doc_ids, key=f"turn{len(turns) + 1}", history=conversation(turns))
    if final is not None:
        turns.extend([turn, {"role": "assistant", "answer": final}])


if __name__ == "__main__":
    render()
