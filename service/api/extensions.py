"""The extension hook: what create_app registers, in order.

To add a resource, append its blueprint factory to RESOURCES (it is documented in
OpenAPI and served). To add app-wide behaviour (API keys, rate limits, a cache), append
an init function to EXTENSIONS; it gets the app and the Api after the resources exist.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from service.config import Settings

from . import analyses, autograder, capabilities, health, jobs
from .smorest import Api, Blueprint

BlueprintFactory = Callable[[Settings], Blueprint]
Extension = Callable[[Flask, Api], None]

RESOURCES: list[BlueprintFactory] = [
    analyses.blueprint,
    capabilities.blueprint,
    health.blueprint,
]

EXTENSIONS: list[Extension] = [
    autograder.init_app,  # API keys, rate limits, report cache, assignments, /v1/grade
    jobs.init_app,  # /v1/sweeps, /v1/jobs: RQ with REDIS_URL, else an in-process pool
]
