"""The one ASGI application of a Perkflow process, assembled from its parts.

The rule API (perkflow/api) is the top-level Starlette app: its routes are matched first. The
browser editor (builder_ui/) is mounted onto it here, in `create_app`, and nowhere else.
"""

from __future__ import annotations

from starlette.applications import Starlette

from perkflow.api.app import create_api
from perkflow.service.core import Service, open_service
from perkflow.settings import Settings


def create_app(service: Service, settings: Settings) -> Starlette:
    from perkflow.builder_ui.app import mount  # NiceGUI is imported only where the editor runs

    app = create_api(service, settings)
    mount(app, service, settings.data_dir, secure_cookies=settings.secure_cookies)
    return app


def api_factory() -> Starlette:
    """For `uvicorn --factory` (what `perkflow serve --api-only --workers N` runs): each worker
    reads the settings from the environment and opens its own service."""
    settings = Settings.from_env()
    return create_api(
        open_service(settings.database_url, settings.data_dir, data_key=settings.data_key), settings
    )
