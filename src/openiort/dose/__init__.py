"""openiort.dose."""
