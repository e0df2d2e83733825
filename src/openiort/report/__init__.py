"""openiort.report."""
