"""Exports for evaluators: a theme run as a REFI-QDA project (.qdpx) or a CSV."""
