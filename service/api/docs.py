"""GET /docs: a self-contained HTML page rendered from the OpenAPI document (no CDN, no JS);
GET /docs/console/: Swagger UI on the same document, to try calls (with an API key: Authorize).

flask-smorest's Swagger UI and ReDoc load their assets from a CDN; a classroom or an
air-gapped cluster has none, so the page is plain HTML built from the same spec, and the console's
assets come from the installed `swagger-ui-bundle` package (pinned in constraints.txt), served here.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template_string, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

_METHODS = ("get", "post", "put", "patch", "delete")
_COUNTS = (("minItems", "min items"), ("maxItems", "max items"))


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(prop: dict[str, Any]) -> str:
    """A short human type: integer, number | null, array of TensorStats, one of …"""
    if "$ref" in prop:
        return _ref_name(prop["$ref"])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in prop:
            return " | ".join(type_of(p) for p in prop[key])
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        kind = " | ".join(kind)
    if kind == "array":
        kind = f"array of {type_of(prop.get('items', {}))}"
    elif kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        kind = f"object of {type_of(prop['additionalProperties'])}"
    if prop.get("nullable"):
        kind += " | null"
    return kind


def _notes(prop: dict[str, Any]) -> str:
    """Range, count and enum constraints in words (OpenAPI 3.0: exclusiveMinimum is a flag)."""
    notes = []
    for bound, sign, strict in (("minimum", "≥", ">"), ("maximum", "≤", "<")):
        if bound in prop:
            exclusive = prop.get("exclusive" + bound.capitalize()) is True
            notes.append(f"{strict if exclusive else sign} {prop[bound]}")
    notes += [f"{label} {prop[key]}" for key, label in _COUNTS if key in prop]
    if "enum" in prop:
        notes.append("one of " + ", ".join(str(v) for v in prop["enum"]))
    return "; ".join(notes)


def schema_rows(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": type_of(prop),
            "required": name in required,
            "default": json.dumps(prop["default"]) if "default" in prop else "",
            "notes": _notes(prop),
            "description": prop.get("description", ""),
            "link": _ref_name(prop["$ref"])
            if "$ref" in prop
            else _ref_name(prop.get("items", {}).get("$ref", "")) or None,
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _response(spec: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """A response object, following a $ref into components/responses."""
    if "$ref" in response:
        return spec.get("components", {}).get("responses", {}).get(_ref_name(response["$ref"]), {"description": ""})
    return response


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for path, item in spec.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {})
            body_ref = next((c["schema"].get("$ref") for c in body.values() if "schema" in c), None)
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "body": _ref_name(body_ref) if body_ref else None,
                    "responses": sorted(
                        (code, _response(spec, r)["description"]) for code, r in op.get("responses", {}).items()
                    ),
                }
            )
    return out


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ info.title }} {{ info.version }}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
code,.m{font-family:ui-monospace,monospace}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.m{font-weight:bold}h3{margin-bottom:.2rem}
.op{border-left:4px solid #4a7;padding-left:.8rem;margin:1rem 0}
</style></head><body>
<h1>{{ info.title }} <small>{{ info.version }}</small></h1>
<p><a href="/docs/console/">Try it: the interactive console</a> (Swagger UI, served by this service).</p>
<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI {{ openapi }}).
Errors are RFC 9457 <code>application/problem+json</code> bodies
(see <a href="#schema-Problem">Problem</a>).</p>
<h2>Endpoints</h2>
{% for op in ops %}<div class="op" id="op-{{ op.method }}-{{ op.path }}">
<h3><span class="m">{{ op.method }}</span> <code>{{ op.path }}</code> — {{ op.summary }}</h3>
{% if op.description %}<p>{{ op.description }}</p>{% endif %}
{% if op.body %}<p>Body: <a href="#schema-{{ op.body }}">{{ op.body }}</a> (application/json)</p>{% endif %}
<p>Responses: {% for code, text in op.responses %}<code>{{ code }}</code> {{ text }}
{%- if not loop.last %}; {% endif %}{% endfor %}</p>
</div>{% endfor %}
<h2>Schemas</h2>
{% for name, rows in schemas %}<h3 id="schema-{{ name }}">{{ name }}</h3>
{% if descriptions[name] %}<p>{{ descriptions[name] }}</p>{% endif %}
<table><tr><th>field</th><th>type</th><th>default</th><th>allowed</th><th>description</th></tr>
{% for r in rows %}<tr><td><code>{{ r.name }}</code>{% if r.required %} <b>required</b>{% endif %}</td>
<td>{% if r.link %}<a href="#schema-{{ r.link }}">{{ r.type }}</a>{% else %}{{ r.type }}{% endif %}</td>
<td>{{ r.default }}</td><td>{{ r.notes }}</td><td>{{ r.description }}</td></tr>
{% endfor %}</table>{% endfor %}
</body></html>
"""

bp = Blueprint("docs", __name__)


@bp.get("/docs")
def docs() -> str:
    spec = current_app.extensions["gradstab"].api.spec.to_dict()
    components = spec.get("components", {}).get("schemas", {})
    return render_template_string(
        TEMPLATE,
        info=spec["info"],
        openapi=spec["openapi"],
        ops=operations(spec),
        schemas=[(name, schema_rows(s)) for name, s in sorted(components.items())],
        descriptions={name: s.get("description", "") for name, s in components.items()},
    )


# The Swagger UI files the console needs, from the installed bundle (nothing else is served).
CONSOLE_ASSETS = frozenset(
    {"swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"}
)
CONSOLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}: console</title>
<link rel="stylesheet" href="swagger-ui.css"><link rel="icon" type="image/png" href="favicon-32x32.png">
</head><body><div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script><script src="swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: {{ spec_url | tojson }}, dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout", validatorUrl: null, persistAuthorization: false,
  displayOperationId: true, tryItOutEnabled: true
});
</script></body></html>
"""


@bp.get("/docs/console/")
def console() -> str:
    title = current_app.extensions["gradstab"].api.spec.title
    return render_template_string(CONSOLE, title=title, spec_url=url_for("api-docs.openapi_json"))


@bp.get("/docs/console/<name>")
def console_asset(name: str) -> Response:
    if name not in CONSOLE_ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=86400)
