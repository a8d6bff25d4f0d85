"""schemathesis hooks for facegate's API (loaded by schemathesis.toml).

`POST /v1/scenarios` takes a scenario manifest as TOML text
(`application/toml`); schemathesis has no serializer for that media type,
so send the generated text as UTF-8, as any TOML file is.
"""

import json

import schemathesis


@schemathesis.serializer("application/toml")
def toml_text(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    # A negative test may generate a non-string body: send it as text too.
    return json.dumps(value).encode("utf-8")
