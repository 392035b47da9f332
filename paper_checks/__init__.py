"""paper_checks package."""
