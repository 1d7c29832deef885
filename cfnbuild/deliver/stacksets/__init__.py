"""StackSets delivery, being split into one module per concern; for now all of it is in :mod:`.operation`."""

from cfnbuild.deliver.stacksets.operation import *  # noqa: F403  # the module's names, as before the move
from cfnbuild.deliver.stacksets.operation import stackset  # noqa: F401  # the CLI's lazy command
