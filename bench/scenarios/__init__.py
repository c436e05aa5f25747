"""The scenarios of bench/suite.py, one module each, in the issue's order. Each has
TITLE and run(ctx) -> list[Row]."""
