"""``python -m cli`` runs the ``bilat-eval`` command line."""

from cli.main import main

main()
