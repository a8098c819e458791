"""Grounded: ask questions about your own documents and get answers that cite them.

Start with ``streamlit run app.py`` from the repository root (so ``.streamlit/`` is found).
"""

import streamlit as st

from rag.ui.gate import signed_in

st.set_page_config(page_title="Grounded", page_icon=":material/menu_book:", layout="centered")

pages = [
    st.Page("rag/ui/chat.py", title="Chat", icon=":material/chat:", url_path="chat", default=True),
    st.Page("rag/ui/documents.py", title="Documents", icon=":material/description:", url_path="documents"),
    st.Page("rag/ui/admin.py", title="Admin", icon=":material/admin_panel_settings:", url_path="admin"),
]
if signed_in():  # RAG_AUTH: otherwise the sign-in form is all that renders
    st.navigation(pages).run()
