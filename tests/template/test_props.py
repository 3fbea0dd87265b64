"""The construct's keyword arguments and ``ServiceProps`` stay in step (no synth)."""

from __future__ import annotations

import dataclasses
import inspect

from gunicorn_alb import ApplicationLoadBalancedGunicornService
from gunicorn_alb.props import ServiceProps


def test_service_props_has_one_field_per_keyword_argument_in_order() -> None:
    parameters = inspect.signature(ApplicationLoadBalancedGunicornService.__init__).parameters
    keywords = [p.name for p in parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert [field.name for field in dataclasses.fields(ServiceProps)] == keywords


def test_every_prop_is_documented_with_its_default() -> None:
    doc = inspect.getdoc(ApplicationLoadBalancedGunicornService) or ""
    parameters = inspect.signature(ApplicationLoadBalancedGunicornService.__init__).parameters
    for parameter in parameters.values():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            assert f":param {parameter.name}:" in doc
            if parameter.default is not inspect.Parameter.empty:
                entry = doc.split(f":param {parameter.name}:", 1)[1].split(":param ", 1)[0]
                assert "Default: -" in entry, parameter.name
