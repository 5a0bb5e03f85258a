"""The home page, language switch, health check, API docs page, base templates and static assets."""
