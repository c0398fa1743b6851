"""Start the Studio: ``python -m ui.serve [streamlit options]`` (what ``make run`` does).

The same as ``streamlit run Home.py``, except that the model, the embedder and the docs
knowledge base start loading the moment the server process starts, instead of when the
first page is opened: the browser takes a few seconds to open the page, and on a small
machine importing torch and transformers takes a few more, so the two now overlap.
``streamlit run Home.py`` still works; it only starts loading later.
"""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path

HOME = Path(__file__).resolve().parent.parent / "Home.py"


def preload() -> None:
    try:
        from ui import resources  # noqa: PLC0415 - imported in this thread, while the server starts

        resources.warm_up().join()
    finally:
        gc.enable()


def main(argv: list[str]) -> None:
    # Importing torch, transformers, chromadb and Streamlit creates millions of objects and
    # almost no garbage, yet triggers the cyclic collector again and again over a growing
    # heap: switched off until the warm-up is done, the first answer comes about a second
    # sooner on 2 cores (measured). The warm-up then freezes what it loaded (see resources).
    gc.disable()
    # The server starts in this thread while the preload imports and loads in another.
    threading.Thread(target=preload, name="studio-preload", daemon=True).start()
    from streamlit.web import cli  # noqa: PLC0415 - after the preload thread has started

    cli.main(["run", str(HOME), *argv], prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
