"""The web layer: intake API, live status, webhooks, the widget file, the dashboard and the CLI."""
