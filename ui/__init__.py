"""The web chat (Gradio): ``build_app(pipeline)`` builds the page, ``launch(pipeline, settings)`` serves it.

Gradio is imported on first use of either name, so ``ui.render`` (pure HTML) stays quick to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["build_app", "launch"]

if TYPE_CHECKING:
    from ui.app import build_app, launch


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ui import app

        return getattr(app, name)
    raise AttributeError(f"module 'ui' has no attribute {name!r}")
