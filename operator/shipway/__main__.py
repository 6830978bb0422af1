"""``python -m shipway`` is the ``shipway`` command."""

import sys

from shipway.cli import main

sys.exit(main())
