"""schemathesis hooks for facegate's API (loaded by schemathesis.toml).

`POST /v1/scenarios` takes a scenario manifest as TOML text
(`application/toml`); schemathesis has no serializer for that media type,
so send the generated text as UTF-8, as any TOML file is.

CPython 3.11 keeps the AST builder's recursion counter in state shared by
every thread, so two threads parsing at once can fail with "AST constructor
recursion depth mismatch" (python/cpython#106905). schemathesis runs two
workers, and hypothesis parses source with `ast.parse` to describe its
strategies: that failed one CI run as a "Runtime Error" that had nothing to
do with facegate. One lock around `ast.parse` keeps the two workers and
takes that race away (re-entrant, in case a finalizer run by the
collector mid-parse parses too).
"""

import ast
import json
import threading

import schemathesis

_ast_parse = ast.parse
_ast_lock = threading.RLock()


def _parse_one_at_a_time(*args, **kwargs):
    with _ast_lock:
        return _ast_parse(*args, **kwargs)


ast.parse = _parse_one_at_a_time


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
