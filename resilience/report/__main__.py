"""`python -m resilience.report DIR`: the same as `resilience report DIR`."""

import sys

from resilience.report.cli import main

sys.exit(main())
