"""poptune's read-only web dashboard (``poptune dashboard`` or :func:`serve`).

The server needs the ``dashboard`` extra (``pip install 'poptune[dashboard]'``: starlette and
uvicorn), imported only when :func:`create_app` or :func:`serve` is called. The front end is
plain HTML and JavaScript shipped in ``static/`` (no CDN, works offline).

Example:
    >>> from poptune.dashboard import create_app
    >>> app = create_app("~/poptune_results")            # doctest: +SKIP
"""

from __future__ import annotations

from poptune.dashboard.app import create_app, serve

__all__ = ["create_app", "serve"]
