"""The staff library: stories a facilitator approved, to read, hear and search, anonymised."""
