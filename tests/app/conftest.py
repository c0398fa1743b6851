import pytest
import streamlit as st


@pytest.fixture
def app_env(settings, generator):
    """The app on a fresh data dir (the model cache is shared and already converted).

    AppTest runs pages in this process, where ``st.cache_resource`` outlives one test:
    clear it so each test's pages see that test's data dir.
    """
    st.cache_resource.clear()
    yield settings
    st.cache_resource.clear()
