"""openiort.evaluation."""
