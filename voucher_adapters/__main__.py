"""``python -m voucher_adapters``: the ``voucher`` command, for an environment whose scripts
folder is not on ``PATH``."""

import sys

from voucher_adapters.cli.main import main

sys.exit(main())
