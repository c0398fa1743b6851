"""The Models page's *Serve* switch: the OpenAI-compatible API in a thread of the app's process, over the
same model manager as the pages. It outlives page reloads and sessions; switching it off frees the port."""

from __future__ import annotations

import streamlit as st

from engine.knobs import knobs_of
from engine.serve.answers import ServeState
from engine.serve.server import ServerHandle, ServeSpec
from ui import resources as r
from ui.knobs import knob_input
from ui.widgets import user_errors


@st.cache_resource(show_spinner=False)
def servers() -> dict[str, ServerHandle]:
    """The running server (at most one, under ``"api"``), shared by every session of the app."""
    return {}


def running() -> ServerHandle | None:
    handle = servers().get("api")
    return handle if handle is not None and handle.running else None


def serve_panel() -> None:
    """Settings, the switch, and how to call the server while it runs."""
    handle = running()
    spec = handle.spec if handle else ServeSpec()
    cols = st.columns([2, 1, 2, 1])
    host = knob_input(cols[0], ServeSpec, "host", default=spec.host, key="serve-host")
    port = knob_input(cols[1], ServeSpec, "port", default=spec.port, key="serve-port")
    key = cols[2].text_input("API key", spec.api_key, type="password", key="serve-key",
                             help=knobs_of(ServeSpec)["api_key"].help)  # fmt: skip
    concurrency = knob_input(cols[3], ServeSpec, "concurrency", default=spec.concurrency, key="serve-concurrency")
    on = st.toggle("Serve", value=handle is not None, key="serve-on",
                   help="An OpenAI-compatible API over the Studio's models (settings apply when it starts); "
                   "off frees the port.")  # fmt: skip
    with user_errors():
        if on and handle is None:
            wanted = ServeSpec(host=host, port=int(port), api_key=key, concurrency=int(concurrency))
            with st.spinner("Starting the server…"):
                servers()["api"] = handle = ServerHandle(wanted, ServeState(r.settings(), r.manager()))
        elif not on and handle is not None:
            handle.stop()
            servers().pop("api", None)
            handle = None
    if handle is None:
        st.caption("Off. Switched on, other programs (curl, the openai client, Ollama-style tools) ask the Studio's "
                   "models over HTTP; `python -m engine serve` does the same from a shell.")  # fmt: skip
        return
    st.success(f"Serving {handle.spec.url}: models `default` (the active one), catalog names, `<model>+<adapter>` "
               "and `rag:<knowledge base>`.")  # fmt: skip
    auth = ' -H "Authorization: Bearer $STUDIO_SERVE_API_KEY"' if handle.state.api_key else ""
    st.code(
        f"curl {handle.spec.url}/chat/completions -H 'Content-Type: application/json'{auth} \\\n"
        """  -d '{"model": "rag:studio-docs", "messages": [{"role": "user", "content": "What is the Studio for?"}]}'""",
        language="bash",
    )
