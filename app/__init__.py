"""The serving package: FastAPI app, inference engine and connectivity."""
