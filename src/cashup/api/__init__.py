"""The HTTP edge: app factory, lifespan, dependencies, error handlers and routers."""
