"""``python -m cli``: the same as the ``bilat-eval`` command."""

from cli.main import main

main()
