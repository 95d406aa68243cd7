"""``python -m kdinspect`` = the ``kdinspect`` console script."""

import sys

from kdinspect.cli.main import main

sys.exit(main())
