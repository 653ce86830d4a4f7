"""Settings of the process and the projects file: models, loading, validation, diffs."""
