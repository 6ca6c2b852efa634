"""`/docs`: the API reference as one server-rendered page made from the OpenAPI document. FastAPI's own
Swagger UI loads its JavaScript from a CDN, which a deployment without internet access cannot reach; this
page needs nothing but the service. Tools that want the machine-readable form use `/openapi.json`."""

from __future__ import annotations

from html import escape
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1d2430}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ccd;padding-bottom:.2rem}
.op{border:1px solid #dde;border-radius:6px;margin:.8rem 0;padding:.6rem .9rem}
.m{display:inline-block;min-width:3.6rem;font-weight:700;text-transform:uppercase}
.get{color:#17602e}.post{color:#1c4f9c}.delete{color:#9c1c1c}code{background:#f2f3f7;padding:0 .25rem}
table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #dde;padding:.15rem .5rem;text-align:left}
.muted{color:#667}
"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    fmt = f" ({schema['format']})" if "format" in schema else ""
    return escape(str(kind) + fmt)


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    secured = op.get("security") != []
    parts = [f'<div class="op" id="{escape(op.get("operationId", ""))}"><span class="m {method}">{method}</span> '
             f'<code>{escape(path)}</code> — {escape(op.get("summary", ""))}'
             f'{"" if secured else " <span class=muted>(no key needed)</span>"}']
    if op.get("description"):
        parts.append(f"<p>{escape(op['description'])}</p>")
    params = op.get("parameters", [])
    if params:
        rows = "".join(f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p.get('in', ''))}</td>"
                       f"<td>{_type(p.get('schema', {}))}</td><td>{'yes' if p.get('required') else ''}</td>"
                       f"<td>{escape(p.get('description', '') or p.get('schema', {}).get('description', ''))}</td></tr>"
                       for p in params)
        parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th></th></tr>"
                     f"{rows}</table>")
    body = op.get("requestBody", {}).get("content", {})
    if body:
        items = "".join(f"<li><code>{escape(ct)}</code>: {_type(c.get('schema', {}))}</li>" for ct, c in body.items())
        parts.append(f"<p>Body:</p><ul>{items}</ul>")
    codes = ", ".join(f"<code>{escape(code)}</code> {escape(r.get('description', ''))}"
                      for code, r in op.get("responses", {}).items())
    parts.append(f"<p class=muted>Responses: {codes}</p></div>")
    return "".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = "".join(f"<tr><td><code>{escape(prop)}</code></td><td>{_type(s)}</td>"
                   f"<td>{'yes' if prop in required else ''}</td><td>{escape(s.get('description', ''))}</td></tr>"
                   for prop, s in schema.get("properties", {}).items())
    desc = f"<p>{escape(schema['description'])}</p>" if schema.get("description") else ""
    return (f'<h3 id="schema-{escape(name)}">{escape(name)}</h3>{desc}'
            f"<table><tr><th>field</th><th>type</th><th>required</th><th></th></tr>{rows}</table>")


def render(doc: dict[str, Any]) -> str:
    info = doc.get("info", {})
    by_tag: dict[str, list[str]] = {}
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append(_operation(path, method, item[method]))
    sections = "".join(f"<h2>{escape(tag)}</h2>{''.join(ops)}" for tag, ops in by_tag.items())
    schemas = "".join(_schema(n, s) for n, s in doc.get("components", {}).get("schemas", {}).items())
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(info.get('title', 'API'))} API</title>"
            f"<style>{STYLE}</style><h1>{escape(info.get('title', ''))} {escape(info.get('version', ''))} — API</h1>"
            f"<p>{escape(info.get('description', ''))}</p><p>Machine-readable: <a href=/openapi.json>/openapi.json"
            f"</a> (OpenAPI {escape(doc.get('openapi', ''))}). The review console: <a href=/console/>/console/</a>.</p>"
            f"{sections}<h2>Schemas</h2>{schemas}</html>")
