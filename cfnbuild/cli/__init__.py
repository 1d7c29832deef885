"""The command line: one module per command group; :mod:`.main` is the entry point.

``main`` holds the ``cfnbuild`` group and the commands that build (``build``, ``lint``, ``list``,
``graph``); :mod:`.deploy` the stack commands (``plan``, ``deploy``, ``status``, ``outputs``,
``delete``, ``drift``, ``recover``) on :mod:`.targets` (the options every stack command takes, and
the engines they resolve to), with :mod:`.graph_commands` for every stack of an environment at
once; :mod:`.stackset` and :mod:`.export` the delivery commands; :mod:`.local` the local session
(``local start``, ``status``, ``stop``); :mod:`.init` a new project (``init``).
A command's module is imported only when it runs. The CLI uses every room; no room imports it.
"""

from cfnbuild.cli.main import cli, main, run

__all__ = ["cli", "main", "run"]
