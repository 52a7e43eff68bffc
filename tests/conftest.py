"""Suite-wide pytest settings live in pyproject.toml; shared fixtures live next to the tests using them."""
