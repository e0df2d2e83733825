"""openiort.devices."""
