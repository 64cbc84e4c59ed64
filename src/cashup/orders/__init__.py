"""The orders slice: HTTP routes, service, repository and schemas."""
