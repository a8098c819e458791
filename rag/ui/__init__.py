"""Streamlit user interface: the pages started by ``app.py`` and the widgets they share.

Only this package and ``app.py`` import Streamlit. Pages stay thin: read widgets, call one
service from :class:`rag.services.Services`, render the result.
"""
