"""The Studio's engine: models, retrieval, evaluation, tracking and jobs. Never imports streamlit."""

import logging

# bitsandbytes warns on import that it cannot fetch an optional CPU kernel from the hub;
# it falls back to its own kernel, so the warning is only noise offline.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
