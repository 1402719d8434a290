"""Command line: `python -m nsm_core COMMAND`. Each command lives in a module of its own."""
