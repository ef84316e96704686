"""Flask's JSON provider with the service's strict wire encoding (schemas.jsonio)."""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider

from schemas.jsonio import dumps, dumps_bytes


class StrictJSONProvider(DefaultJSONProvider):
    """Every response goes through `schemas.jsonio.dumps_bytes`: compact, no NaN/Infinity."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # Flask internals passing options: honour them but never allow NaN
            kwargs["allow_nan"] = False
            return json.dumps(obj, **kwargs)
        return dumps(obj)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(dumps_bytes(obj) + b"\n", mimetype=self.mimetype)
