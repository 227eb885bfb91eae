"""`safe_load` for configuration documents: PyYAML's safe loader, with every failure a `yaml.YAMLError`.

The safe loader raises YAMLError for bad syntax, but its constructors raise ValueError, KeyError or
AttributeError for a well-formed scalar they cannot build (`!!float x`, `!!bool x`, `!!timestamp x`,
the date 2025-13-45), and deep nesting raises RecursionError. Loaders catch YAMLError and name their
file; here the others become one too (`UnbuildableYaml`), so no document reaches a caller as a raw error.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["UnbuildableYaml", "safe_load"]


class UnbuildableYaml(yaml.YAMLError):
    """Well-formed YAML the safe loader cannot turn into values; str() says why."""


def safe_load(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise
    except RecursionError:
        raise UnbuildableYaml("nested too deeply") from None
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise UnbuildableYaml(f"a value cannot be read ({type(exc).__name__}: {exc})") from None
