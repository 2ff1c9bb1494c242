"""`python -m lsp --stdio`: the language server without going through the `potion` command."""

import sys

from lsp.cli import main

sys.exit(main())
