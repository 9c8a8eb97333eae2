"""The process environment the product runs in: offline, no telemetry, quiet threads.

Set once by every entry point (CLI, HTTP server, chat, eval) before anything that could
reach a network or spin OpenMP threads is imported. Part of the core: imports nothing else
of the product.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_WAIT_POLICY": "PASSIVE",  # see index/embed.py: spinning OpenMP threads collapse on shared cores
}


def set_offline_env() -> None:
    """Default the variables above; a value the user set wins."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
