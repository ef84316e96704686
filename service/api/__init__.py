"""The HTTP layer: `create_app` in service.api.app (imported lazily: gunicorn's master
imports service.logs and service.config only, never Flask views or torch)."""
