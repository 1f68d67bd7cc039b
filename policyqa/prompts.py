"""Prompt files (``prompts/*.yaml``) and their strict rendering.

A prompt file is YAML with a ``system`` and a ``user`` template (Jinja2) and an optional
``description``. Rendering is strict both ways: a variable the templates use but the caller
does not pass raises, and so does a variable the caller passes that no template uses (a typo
would otherwise be dropped silently). Not handled: few-shot example turns, per-model variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

# trim/lstrip so that {% for %} lines in the YAML block scalars leave no blank lines behind.
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)


class PromptError(ValueError):
    """A prompt file that cannot be loaded, or a render call with missing/unknown variables."""


@dataclass(frozen=True)
class Prompt:
    name: str
    system: str
    user: str
    description: str = ""
    path: Path | None = None

    @property
    def variables(self) -> frozenset[str]:
        """The variables the system and user templates use (all are required)."""
        names: set[str] = set()
        for source in (self.system, self.user):
            names |= jinja2.meta.find_undeclared_variables(_ENV.parse(source))
        return frozenset(names)


def prompt_names(prompts_dir: Path | None = None) -> list[str]:
    """The names of the prompt files in ``prompts_dir`` (default: ``prompts/`` at the repo root)."""
    d = prompts_dir or PROMPTS_DIR
    return sorted(p.stem for p in d.glob("*.yaml"))


def load_prompt(name: str, prompts_dir: Path | None = None) -> Prompt:
    """Load ``<prompts_dir>/<name>.yaml``. Raises PromptError if it is missing or malformed."""
    d = prompts_dir or PROMPTS_DIR
    path = d / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(prompt_names(d)) or "none"
        raise PromptError(f"no prompt {name!r} in {d} (known: {known})")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("system"), str)
        or not isinstance(data.get("user"), str)
    ):
        raise PromptError(f"{path}: needs string keys 'system' and 'user'")
    extra = set(data) - {"system", "user", "description"}
    if extra:
        raise PromptError(f"{path}: unknown keys {sorted(extra)}")
    prompt = Prompt(
        name=name,
        system=data["system"].strip(),
        user=data["user"].strip(),
        description=str(data.get("description", "")),
        path=path,
    )
    try:
        prompt.variables  # noqa: B018 - parse now so a syntax error names the file at load time
    except jinja2.TemplateSyntaxError as e:
        raise PromptError(f"{path}: {e}") from e
    return prompt


def render(prompt: Prompt, **variables: Any) -> list[BaseMessage]:
    """Render ``prompt`` into [SystemMessage, HumanMessage].

    Raises PromptError when a variable the templates use is missing or a passed variable is
    unknown; jinja2.UndefinedError when a passed object lacks an attribute the template reads.
    """
    wanted = prompt.variables
    missing = wanted - variables.keys()
    unknown = variables.keys() - wanted
    if missing or unknown:
        raise PromptError(
            f"prompt {prompt.name!r}: missing variables {sorted(missing)}, unknown variables "
            f"{sorted(unknown)} (it takes {sorted(wanted)})"
        )
    system = _ENV.from_string(prompt.system).render(**variables).strip()
    user = _ENV.from_string(prompt.user).render(**variables).strip()
    return [SystemMessage(content=system), HumanMessage(content=user)]
