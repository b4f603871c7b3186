"""marglik/estimators."""
