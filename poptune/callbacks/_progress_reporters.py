"""The reporters that print the progress table: :class:`CLIReporter` (console) and
:class:`JupyterNotebookReporter` (HTML in a notebook, updated in place).

Both only decide where :meth:`TuneReporterBase._render`'s output goes; they are importable
from :mod:`poptune.callbacks.progress`.
"""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING, Any

from poptune.callbacks._progress_base import TuneReporterBase
from poptune.callbacks._progress_format import Columns
from poptune.experiment.trial import Trial

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["CLIReporter", "JupyterNotebookReporter"]


class CLIReporter(TuneReporterBase):
    """Prints the progress table to the console (Ray Tune's ``CLIReporter``).

    Takes the arguments of :class:`TuneReporterBase`. Passed as
    ``RunConfig(progress_reporter=...)``, it chooses the columns and how often plain output
    is printed; in a terminal the table is shown live instead.

    Example:
        >>> reporter = CLIReporter(metric_columns=["loss", "accuracy"], parameter_columns=["lr"])
        >>> reporter.add_metric_column("f1")
    """

    def report(self, trials: list[Trial], done: bool, *sys_info: Any) -> None:
        self._get_console().print(self._render(trials, done, sys_info), crop=False)


def _notebook_shell() -> Any:
    """The running IPython kernel shell, or ``None`` outside a notebook (never imports IPython)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return None if shell is None or "Terminal" in type(shell).__name__ else shell


class JupyterNotebookReporter(TuneReporterBase):
    """Shows the progress table as HTML in a Jupyter notebook (Ray's ``JupyterNotebookReporter``).

    Args:
        overwrite: update one output in place instead of appending a table per report.
        **kwargs: the arguments of :class:`TuneReporterBase`.

    Outside a notebook kernel it prints text to the console like :class:`CLIReporter`.
    """

    def __init__(self, overwrite: bool = True, metric_columns: Columns = None, *args: Any,
                 **kwargs: Any) -> None:
        super().__init__(metric_columns, *args, **kwargs)
        self._overwrite = overwrite
        self._handle: Any = None

    def _html(self, renderable: RenderableType) -> str:
        from rich.console import Console

        width = self._console.width if self._console is not None else 120
        recorder = Console(file=io.StringIO(), record=True, width=width, force_jupyter=False,
                           force_terminal=True, color_system="truecolor")
        recorder.print(renderable)
        return recorder.export_html(inline_styles=True, code_format=(
            "<pre style=\"white-space:pre;overflow-x:auto;line-height:normal;"
            "font-family:Menlo,'DejaVu Sans Mono',consolas,monospace\">{code}</pre>"))

    def report(self, trials: list[Trial], done: bool, *sys_info: Any) -> None:
        renderable = self._render(trials, done, sys_info)
        if _notebook_shell() is None:
            self._get_console().print(renderable, crop=False)
            return
        from IPython.display import HTML, display

        html = HTML(self._html(renderable))
        if self._overwrite and self._handle is not None:
            self._handle.update(html)
        else:
            self._handle = display(html, display_id=True)
