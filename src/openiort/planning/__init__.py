"""openiort.planning."""
