"""The engine: decisions, recipients, compare-and-swap, running plans and dispatch. Imports no I/O library."""
