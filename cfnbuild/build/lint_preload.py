"""Imported by the server that lint workers are forked from: cfn-lint, with its rules loaded.

See :mod:`cfnbuild.build.gates`. Each worker forked from that server starts with cfn-lint
imported and its rules in memory, shared with the server until written to. Everything loaded
is then frozen out of the garbage collector (:func:`gc.freeze`), so that a collection in a
worker does not write to those shared pages (and copy them) just to walk them.
"""

import gc

from cfnbuild.build.lint import warm_up

warm_up()
gc.freeze()
