"""What the dashboard reports: the leads list and what the leads cost."""
