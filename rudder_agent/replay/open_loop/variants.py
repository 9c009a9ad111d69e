"""Several prompt variants in one open-loop replay: ``--prompt-version v1,v2,v2+cot``.

Each comma-separated item is a prompt version, optionally with ``+cot`` or ``+nocot`` (chain of thought for that
variant alone; otherwise ``--cot``/``--no-cot`` as given, or the recorded run's). Every version is checked before
anything is replayed, so a typo in the third variant does not cost the first two.
"""

from __future__ import annotations

from typing import Any

from rudder_agent.agent.prompts import PromptSet, PromptTemplateError
from rudder_agent.errors import SettingError
from rudder_agent.paths import PROMPTS_DIR

COT = {"+cot": True, "+nocot": False}


def prompt_variants(versions: str | None, cot: bool | None) -> list[tuple[str, dict[str, Any]]]:
    """(label, agent-setting overrides) per variant; one variant with no overrides when no version is given."""
    if versions is None:
        return [("recorded", {})]
    variants = []
    for item in (v.strip() for v in versions.split(",")):
        version, suffix = item, None
        for tag in COT:
            if item.endswith(tag):
                version, suffix = item[: -len(tag)], tag
        if not version:
            raise SettingError("prompt_version", f"{versions!r}: an empty variant; give VERSION[+cot|+nocot],...")
        try:
            PromptSet.load(PROMPTS_DIR, version)
        except PromptTemplateError as err:
            raise SettingError("prompt_version", str(err)) from None
        with_cot = COT[suffix] if suffix else cot
        variants.append((item, {"prompt_version": version, **({"cot": with_cot} if with_cot is not None else {})}))
    labels = [label for label, _ in variants]
    if len(set(labels)) < len(labels):
        raise SettingError("prompt_version", f"{versions!r} names a variant twice")
    return variants
