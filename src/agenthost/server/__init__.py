"""The web service: the FastAPI app, its routes, middleware and streaming."""
