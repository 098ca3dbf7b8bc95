"""The ``bilat-eval`` command line: parsing, printing and exit codes; the work happens in the library."""
