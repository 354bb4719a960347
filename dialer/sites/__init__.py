"""A site as its owner configured it: set-up operations and the short-lived cache both sides read."""
