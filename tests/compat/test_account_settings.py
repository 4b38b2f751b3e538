"""Account settings: ListAccountSettings, PutAccountSetting, PutAccountSettingDefault."""

import pytest


def settings_by_name(ecs, **kw):
    out = {}
    for page in ecs.get_paginator("list_account_settings").paginate(**kw):
        for s in page["settings"]:
            out[s["name"]] = s
    return out


def test_list_account_settings_effective_includes_defaults(ecs):
    settings = settings_by_name(ecs, effectiveSettings=True)
    for name in ("serviceLongArnFormat", "taskLongArnFormat", "containerInstanceLongArnFormat"):
        assert settings[name]["value"] == "enabled"
        assert settings[name]["principalArn"].startswith("arn:aws:iam::000000000000:")


def test_put_account_setting_is_listed_for_caller(ecs):
    resp = ecs.put_account_setting(name="containerInsights", value="enabled")
    setting = resp["setting"]
    assert setting["name"] == "containerInsights" and setting["value"] == "enabled"
    assert setting["principalArn"].startswith("arn:aws:iam::000000000000:")
    listed = settings_by_name(ecs, name="containerInsights", effectiveSettings=True)
    assert listed["containerInsights"]["value"] == "enabled"
    ecs.put_account_setting(name="containerInsights", value="disabled")
    listed = settings_by_name(ecs, name="containerInsights", effectiveSettings=True)
    assert listed["containerInsights"]["value"] == "disabled"


def test_put_account_setting_default_applies_to_account(ecs):
    resp = ecs.put_account_setting_default(name="awsvpcTrunking", value="enabled")
    assert resp["setting"]["name"] == "awsvpcTrunking"
    assert resp["setting"]["value"] == "enabled"
    assert resp["setting"]["principalArn"] == "arn:aws:iam::000000000000:root"
    listed = settings_by_name(ecs, name="awsvpcTrunking", effectiveSettings=True)
    assert listed["awsvpcTrunking"]["value"] == "enabled"


def test_list_account_settings_filter_by_value(ecs):
    ecs.put_account_setting(name="tagResourceAuthorization", value="on")
    on = settings_by_name(ecs, name="tagResourceAuthorization", value="on", effectiveSettings=True)
    assert "tagResourceAuthorization" in on
    off = settings_by_name(ecs, name="tagResourceAuthorization", value="off", effectiveSettings=True)
    assert "tagResourceAuthorization" not in off


def test_put_account_setting_unknown_name_is_invalid_parameter(ecs_unvalidated):
    with pytest.raises(ecs_unvalidated.exceptions.InvalidParameterException):
        ecs_unvalidated.put_account_setting(name="noSuchSetting", value="enabled")


def test_put_account_setting_invalid_value_is_invalid_parameter(ecs):
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.put_account_setting(name="serviceLongArnFormat", value="maybe")


def test_list_account_settings_value_without_name_is_invalid_parameter(ecs):
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_account_settings(value="enabled")
