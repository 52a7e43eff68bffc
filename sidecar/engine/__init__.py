"""The pure engine: decisions, recipients and dispatch. Imports no I/O library."""
