"""Dashboard users, their roles and sites, and the audit log."""
