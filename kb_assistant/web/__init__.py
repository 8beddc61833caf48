"""Pieces of the Streamlit app that are plain Python: background jobs and safe rendering."""
