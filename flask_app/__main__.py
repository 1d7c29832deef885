"""``python -m flask_app migrate`` (see :mod:`flask_app.cli`)."""

import sys

from flask_app.cli import main

sys.exit(main())
