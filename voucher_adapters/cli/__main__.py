"""``python -m voucher_adapters.cli``: the ``voucher`` command."""

import sys

from voucher_adapters.cli.main import main

sys.exit(main())
