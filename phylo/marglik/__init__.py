"""marglik."""
