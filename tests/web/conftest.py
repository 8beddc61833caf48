"""The AppTest fixture of the Streamlit door tests, shared with the web tests."""

from tests.test_streamlit_app import app  # noqa: F401 - a fixture
