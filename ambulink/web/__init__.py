"""Browser pages served by the hub (static files, no build step): the live case viewer."""
