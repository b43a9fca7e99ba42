"""One module per page; each ``setup(app)`` adds its routes."""
