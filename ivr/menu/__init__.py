"""The menu: model, YAML loading, calendar and hours."""
