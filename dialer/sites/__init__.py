"""A site as its owner configured it: set-up operations, its config read once from its row, and the
short-lived cache of configs both sides read."""
