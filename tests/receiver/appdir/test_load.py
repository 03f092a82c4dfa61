"""receiver.appdir: the JitAI app dir becomes typed config, and every mistake is one line naming file + key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers.config import (
    DINGTALK_API_BASE,
    WECOM_API_BASE,
    AppConfig,
    CorpType,
    DingTalkCorp,
    RateLimits,
    Secret,
    SuiteAuth,
    SyncSettings,
    WecomInnerCorp,
    WecomProxyCorp,
)
from handlers.errors import ConfigError
from receiver.appdir import load_app_dir
from receiver.appdir.registration import registration_lines
from receiver.errors import IllegalAesKey
from receiver.testing.harness import callback_keys
from tests.support.paths import JITAI_APP

HQ_AES = ("hqAesKey0" * 5)[:43]
SALES_AES = ("salesAes1" * 5)[:43]
SUITE_AES = ("suiteAes2" * 5)[:43]
SECRETS = [
    "hq-app-secret-7f3a",
    "hq-contact-secret-91bd",
    "tokHQ5521",
    HQ_AES,
    "sales-app-secret-c0de",
    "tokSales8814",
    SALES_AES,
    "suite-secret-ab12",
    "tokSuite3390",
    SUITE_AES,
]


def wecom_inner(**extra: Any) -> dict[str, Any]:
    return {
        "corpId": "wwHQ0001",
        "agentId": "1000002",
        "secret": "hq-app-secret-7f3a",
        "contactSecret": "hq-contact-secret-91bd",
        "callback": {"token": "tokHQ5521", "encodingAESKey": HQ_AES},
        **extra,
    }


def dingtalk(**extra: Any) -> dict[str, Any]:
    return {
        "authConfig": {
            "corpId": "dingSales01",
            "agentId": 2233445566,
            "appKey": "dingappkey0000001",
            "appSecret": "sales-app-secret-c0de",
        },
        "callback": {"token": "tokSales8814", "aesKey": SALES_AES},
        **extra,
    }


def proxy(**extra: Any) -> dict[str, Any]:
    return {"corpId": "wwT1corp", "authFullName": "auths.Suite", **extra}


def suite(**extra: Any) -> dict[str, Any]:
    return {
        "suiteId": "dk0123456789",
        "suiteSecret": "suite-secret-ab12",
        "token": "tokSuite3390",
        "encodingAESKey": SUITE_AES,
        **extra,
    }


def write(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False), "utf-8")


def element(root: Path, folder: str, name: str, kind: str, config: object, **e_json: Any) -> None:
    write(root / folder / name / "e.json", {"title": name, "type": kind, **e_json})
    write(root / folder / name / f"{name}.json", config)


def corp(root: Path, name: str, kind: CorpType, config: object) -> None:
    element(root, "corps", name, kind.value, config)


def auth(root: Path, name: str, config: object) -> None:
    element(root, "auths", name, "auths.loginTypes.QywxProxyType", config)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner())
    corp(tmp_path, "Sales", CorpType.DINGTALK_INNER, dingtalk())
    corp(tmp_path, "T1", CorpType.WECOM_PROXY, proxy())
    auth(tmp_path, "Suite", suite())
    return tmp_path


def load_error(root: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_app_dir(root, environ or {})
    message = str(info.value)
    assert "\n" not in message
    for secret in SECRETS:
        assert secret not in message
    return message


# --- loading each element type ------------------------------------------------------------------------


def test_loads_wecom_self_built_corp_with_every_field(app_dir: Path) -> None:
    hq = load_app_dir(app_dir, {}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert (hq.name, hq.title, hq.type) == ("HQ", "HQ", CorpType.WECOM_INNER)
    assert (hq.corp_id, hq.agent_id) == ("wwHQ0001", "1000002")
    assert hq.secret == Secret("hq-app-secret-7f3a")
    assert hq.contact_secret == Secret("hq-contact-secret-91bd")
    assert callback_keys(hq).token.reveal() == "tokHQ5521"
    assert callback_keys(hq).aes_key.reveal() == HQ_AES
    assert hq.api_base == WECOM_API_BASE
    assert hq.rate_limits is None
    assert hq.sync == SyncSettings()


def test_wecom_self_built_receive_ids_are_its_corp_id(app_dir: Path) -> None:
    hq = load_app_dir(app_dir, {}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert callback_keys(hq).receive_ids == frozenset({"wwHQ0001"})


def test_contact_secret_is_optional(tmp_path: Path) -> None:
    config = wecom_inner()
    del config["contactSecret"]
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, config)
    hq = load_app_dir(tmp_path, {}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert hq.contact_secret is None


def test_integer_ids_are_stored_as_strings(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(corpId=12345, agentId=1000002))
    hq = load_app_dir(tmp_path, {}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert (hq.corp_id, hq.agent_id) == ("12345", "1000002")
    assert callback_keys(hq).receive_ids == frozenset({"12345"})


def test_loads_dingtalk_corp_from_auth_config(app_dir: Path) -> None:
    sales = load_app_dir(app_dir, {}).corps["Sales"]
    assert isinstance(sales, DingTalkCorp)
    assert sales.type is CorpType.DINGTALK_INNER
    assert (sales.corp_id, sales.agent_id, sales.app_key) == ("dingSales01", "2233445566", "dingappkey0000001")
    assert sales.app_secret.reveal() == "sales-app-secret-c0de"
    assert callback_keys(sales).token.reveal() == "tokSales8814"
    assert callback_keys(sales).aes_key.reveal() == SALES_AES
    assert sales.api_base == DINGTALK_API_BASE


def test_dingtalk_receive_ids_default_to_app_key_and_corp_id(app_dir: Path) -> None:
    sales = load_app_dir(app_dir, {}).corps["Sales"]
    assert isinstance(sales, DingTalkCorp)
    assert callback_keys(sales).receive_ids == frozenset({"dingappkey0000001", "dingSales01"})


def test_dingtalk_owner_key_replaces_app_key_in_receive_ids(tmp_path: Path) -> None:
    config = dingtalk()
    config["callback"]["ownerKey"] = "suiteKeyXYZ"
    corp(tmp_path, "Sales", CorpType.DINGTALK_INNER, config)
    sales = load_app_dir(tmp_path, {}).corps["Sales"]
    assert isinstance(sales, DingTalkCorp)
    assert callback_keys(sales).receive_ids == frozenset({"suiteKeyXYZ", "dingSales01"})


def test_loads_suite_auth(app_dir: Path) -> None:
    config = load_app_dir(app_dir, {})
    suite_auth = config.auths["Suite"]
    assert isinstance(suite_auth, SuiteAuth)
    assert (suite_auth.name, suite_auth.title, suite_auth.suite_id) == ("Suite", "Suite", "dk0123456789")
    assert suite_auth.suite_secret.reveal() == "suite-secret-ab12"
    assert suite_auth.token.reveal() == "tokSuite3390"
    assert suite_auth.aes_key.reveal() == SUITE_AES
    assert suite_auth.provider_corp_id is None
    assert suite_auth.api_base == WECOM_API_BASE
    assert suite_auth.is_proxy_template


def test_suite_auth_optional_fields(tmp_path: Path) -> None:
    auth(tmp_path, "Suite", suite(providerCorpId="wwProvider", apiBase="https://wecom.example/"))
    suite_auth = load_app_dir(tmp_path, {}).auths["Suite"]
    assert suite_auth.provider_corp_id == "wwProvider"
    assert suite_auth.api_base == "https://wecom.example"


def test_loads_wecom_proxy_corp_bound_to_its_auth(app_dir: Path) -> None:
    config = load_app_dir(app_dir, {})
    t1 = config.corps["T1"]
    assert isinstance(t1, WecomProxyCorp)
    assert (t1.name, t1.corp_id, t1.type) == ("T1", "wwT1corp", CorpType.WECOM_PROXY)
    assert t1.auth is config.auths["Suite"]
    assert t1.api_base == WECOM_API_BASE
    assert not hasattr(t1, "callback")


def test_rate_limits_and_sync_settings_are_parsed(tmp_path: Path) -> None:
    limits = {"callsPerSecond": 2.5, "burst": 5, "concurrency": 3, "perApi": {"/cgi-bin/user/get": 1}}
    sync = {"rootDeptId": 42, "deleteThreshold": 0.05, "maxAgeSeconds": 0, "scheduleSeconds": None}
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(rateLimits=limits, sync=sync))
    hq = load_app_dir(tmp_path, {}).corps["HQ"]
    assert hq.rate_limits == RateLimits(
        calls_per_second=2.5, burst=5, per_api={"/cgi-bin/user/get": 1.0}, concurrency=3
    )
    assert hq.sync == SyncSettings(root_dept_id="42", delete_threshold=0.05, max_age_seconds=0, schedule_seconds=None)


def test_rate_limit_defaults_derive_burst_from_rate(tmp_path: Path) -> None:
    auth(tmp_path, "Suite", suite(rateLimits={"callsPerSecond": 2.5}))
    limits = load_app_dir(tmp_path, {}).auths["Suite"].rate_limits
    assert limits == RateLimits(calls_per_second=2.5, burst=3, per_api={}, concurrency=8)


def test_proxy_corp_takes_its_own_rate_limits_and_sync(app_dir: Path) -> None:
    corp(app_dir, "T1", CorpType.WECOM_PROXY, proxy(rateLimits={"callsPerSecond": 1}, sync={"rootDeptId": "7"}))
    t1 = load_app_dir(app_dir, {}).corps["T1"]
    assert isinstance(t1, WecomProxyCorp)
    assert t1.rate_limits is not None
    assert t1.rate_limits.calls_per_second == 1.0
    assert t1.sync.root_dept_id == "7"


def test_missing_schedule_keeps_default_period(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(sync={"deleteThreshold": 1}))
    sync = load_app_dir(tmp_path, {}).corps["HQ"].sync
    assert sync.schedule_seconds == SyncSettings().schedule_seconds
    assert sync.delete_threshold == 1.0


def test_corps_and_auths_are_loaded_in_sorted_order(tmp_path: Path) -> None:
    for name in ("b", "C", "a", "A-1", "z_9"):
        corp(tmp_path, name, CorpType.WECOM_INNER, wecom_inner(corpId=f"ww{name}"))
    config = load_app_dir(tmp_path, {})
    assert list(config.corps) == sorted(["b", "C", "a", "A-1", "z_9"])
    assert config == load_app_dir(tmp_path, {})


def test_app_with_empty_corps_dir_loads_with_zero_corps(tmp_path: Path) -> None:
    (tmp_path / "corps").mkdir()
    config = load_app_dir(tmp_path, {})
    assert (config.corps, config.auths) == ({}, {})
    assert config.root == str(tmp_path.resolve())


def test_tolerates_jitai_extra_keys_in_e_json(tmp_path: Path) -> None:
    element(
        tmp_path,
        "corps",
        "testNailDivision",
        "corps.DDInnerType",
        dingtalk(),
        title="测试钉钉组织",
        backendBundleEntry=".",
        frontBundleEntry="./testNailDivision.json",
        fullName="corps.testNailDivision",
        version="1.0.0",
    )
    assert load_app_dir(tmp_path, {}).corps["testNailDivision"].title == "测试钉钉组织"


def test_skips_files_hidden_dirs_and_python_caches(app_dir: Path) -> None:
    write(app_dir / "corps" / "__init__.py", "")
    (app_dir / "corps" / "__pycache__").mkdir()
    (app_dir / "corps" / ".git").mkdir()
    write(app_dir / "corps" / "README.md", "notes")
    assert list(load_app_dir(app_dir, {}).corps) == ["HQ", "Sales", "T1"]


def test_auths_of_other_jitai_login_types_are_ignored_but_recorded(app_dir: Path) -> None:
    element(app_dir, "auths", "Login", "auths.loginTypes.AccountType", {"anything": 1})
    config = load_app_dir(app_dir, {})
    assert list(config.auths) == ["Suite"]
    assert config.ignored_auths == {"Login": "auths.loginTypes.AccountType"}


def test_two_apps_of_one_wecom_corp_may_both_be_configured(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner())
    corp(tmp_path, "HQ2", CorpType.WECOM_INNER, wecom_inner(agentId="1000003"))
    assert list(load_app_dir(tmp_path, {}).corps) == ["HQ", "HQ2"]


def test_one_corp_may_be_tenant_of_two_suites(app_dir: Path) -> None:
    auth(app_dir, "Other", suite(suiteId="wwsuite2"))
    corp(app_dir, "T2", CorpType.WECOM_PROXY, proxy(authFullName="auths.Other"))
    assert load_app_dir(app_dir, {}).corps["T2"].corp_id == "wwT1corp"


def test_surrounding_whitespace_is_stripped(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(secret="  {{S}}\n"))
    hq = load_app_dir(tmp_path, {"S": "value\n"}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert hq.secret.reveal() == "value"


# --- placeholders ---------------------------------------------------------------------------------------


def test_placeholder_is_replaced_from_environ(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(secret="{{HQ_SECRET}}"))
    hq = load_app_dir(tmp_path, {"HQ_SECRET": "from-env"}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert hq.secret.reveal() == "from-env"


def test_several_placeholders_in_one_string(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(corpId="{{A}}-{{B}}:{{A}}"))
    assert load_app_dir(tmp_path, {"A": "x", "B": "y"}).corps["HQ"].corp_id == "x-y:x"


def test_placeholder_tolerates_whitespace_inside_braces(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(corpId="{{ CORP }}", agentId="{{\tAGENT  }}"))
    hq = load_app_dir(tmp_path, {"CORP": "wwEnv", "AGENT": "7"}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert (hq.corp_id, hq.agent_id) == ("wwEnv", "7")


def test_placeholders_work_in_nested_keys_and_in_e_json(tmp_path: Path) -> None:
    config = dingtalk()
    config["authConfig"]["appSecret"] = "{{DD_SECRET}}"
    config["callback"]["aesKey"] = "{{DD_AES}}"
    element(tmp_path, "corps", "Sales", "corps.DDInnerType", config, title="{{TITLE}}")
    sales = load_app_dir(tmp_path, {"DD_SECRET": "s", "DD_AES": SALES_AES, "TITLE": "销售"}).corps["Sales"]
    assert isinstance(sales, DingTalkCorp)
    assert (sales.title, sales.app_secret.reveal(), callback_keys(sales).aes_key.reveal()) == ("销售", "s", SALES_AES)


def test_jitai_style_camel_case_placeholder_names(tmp_path: Path) -> None:
    auth(tmp_path, "QywxProxyAuth", suite())
    corp(tmp_path, "T1", CorpType.WECOM_PROXY, proxy(corpId="{{qywxProxyCorpId}}", authFullName="auths.QywxProxyAuth"))
    assert load_app_dir(tmp_path, {"qywxProxyCorpId": "wwT"}).corps["T1"].corp_id == "wwT"


def test_substituted_values_are_not_expanded_again(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(secret="{{S}}"))
    hq = load_app_dir(tmp_path, {"S": "{{OTHER}}"}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert hq.secret.reveal() == "{{OTHER}}"


def test_missing_environment_variable_names_file_and_key_not_value(tmp_path: Path) -> None:
    config = wecom_inner()
    config["callback"]["token"] = "tokHQ5521{{HQ_TOKEN}}"
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, config)
    message = load_error(tmp_path)
    assert message == "corps/HQ/HQ.json: callback.token: environment variable HQ_TOKEN is not set"


def test_missing_environment_variable_in_auth_config(tmp_path: Path) -> None:
    config = dingtalk()
    config["authConfig"]["appSecret"] = "{{ DD_APP_SECRET }}"
    corp(tmp_path, "Sales", CorpType.DINGTALK_INNER, config)
    message = load_error(tmp_path, {"UNRELATED": "x"})
    assert message == "corps/Sales/Sales.json: authConfig.appSecret: environment variable DD_APP_SECRET is not set"


def test_placeholders_in_keys_corpsync_does_not_use_need_no_environment(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(jitaiOnly="{{NOT_SET}}"))
    assert "HQ" in load_app_dir(tmp_path, {}).corps


def test_malformed_placeholder_is_rejected(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(secret="hq-app-secret-7f3a{{HQ-SECRET}}"))
    message = load_error(tmp_path)
    assert message.startswith("corps/HQ/HQ.json: secret: malformed placeholder")


def test_placeholder_that_expands_to_empty_required_value_is_rejected(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(secret="{{S}}"))
    assert load_error(tmp_path, {"S": ""}) == "corps/HQ/HQ.json: secret: must not be empty"


def test_placeholder_that_expands_to_empty_optional_value_means_absent(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(contactSecret="{{C}}"))
    hq = load_app_dir(tmp_path, {"C": ""}).corps["HQ"]
    assert isinstance(hq, WecomInnerCorp)
    assert hq.contact_secret is None


# --- errors: one line naming file and key ----------------------------------------------------------------


def test_app_dir_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nope")
    assert str(tmp_path / "nope") in message
    assert "does not exist" in message


def test_unknown_corp_type(tmp_path: Path) -> None:
    element(tmp_path, "corps", "HQ", "corps.FeishuType", wecom_inner())
    message = load_error(tmp_path)
    assert message.startswith("corps/HQ/e.json: type: unknown corp type 'corps.FeishuType'")
    assert "corps.QywxInnerType" in message


def test_auth_type_outside_auths_namespace(app_dir: Path) -> None:
    element(app_dir, "auths", "Bad", "corps.QywxInnerType", suite())
    assert load_error(app_dir).startswith("auths/Bad/e.json: type: unknown auth type")


def test_missing_e_json(app_dir: Path) -> None:
    (app_dir / "corps" / "HQ" / "e.json").unlink()
    assert load_error(app_dir) == "corps/HQ/e.json: file is missing"


def test_missing_business_config_file(app_dir: Path) -> None:
    (app_dir / "auths" / "Suite" / "Suite.json").unlink()
    assert load_error(app_dir) == "auths/Suite/Suite.json: file is missing"


def test_missing_type_in_e_json(tmp_path: Path) -> None:
    write(tmp_path / "corps" / "HQ" / "e.json", {"title": "HQ"})
    assert load_error(tmp_path) == "corps/HQ/e.json: type: missing required key"


def test_malformed_json_names_line_and_column(app_dir: Path) -> None:
    write(app_dir / "corps" / "HQ" / "HQ.json", '{\n  "corpId": "ww1",\n  "secret": "hq-app-secret-7f3a"\n  "x": 1\n}')
    message = load_error(app_dir)
    assert message.startswith("corps/HQ/HQ.json: malformed JSON at line 4 column 3: ")


def test_duplicate_json_key(app_dir: Path) -> None:
    write(app_dir / "corps" / "HQ" / "HQ.json", '{"corpId": "a", "corpId": "b"}')
    assert load_error(app_dir) == "corps/HQ/HQ.json: malformed JSON: duplicate key 'corpId'"


def test_nan_literal_is_not_json(app_dir: Path) -> None:
    corp(app_dir, "HQ", CorpType.WECOM_INNER, json.dumps(wecom_inner()).replace("{", '{"rateLimits": NaN, ', 1))
    assert load_error(app_dir) == "corps/HQ/HQ.json: malformed JSON: NaN is not valid JSON"


def test_top_level_must_be_an_object(app_dir: Path) -> None:
    write(app_dir / "corps" / "HQ" / "HQ.json", "[]")
    assert load_error(app_dir) == "corps/HQ/HQ.json: expected a JSON object at the top level, got an array"


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        ({"corpId": ["ww1"]}, "corpId", "expected a string or an integer, got an array"),
        ({"agentId": True}, "agentId", "expected a string or an integer, got a boolean"),
        ({"agentId": 1.5}, "agentId", "expected a string or an integer, got a number"),
        ({"secret": 12345}, "secret", "expected a string, got an integer"),
        ({"callback": "tokHQ5521"}, "callback", "expected an object, got a string"),
        ({"callback": None}, "callback", "expected an object, got null"),
        ({"rateLimits": {"callsPerSecond": "5"}}, "rateLimits.callsPerSecond", "expected a number, got a string"),
        ({"sync": {"maxAgeSeconds": 1.5}}, "sync.maxAgeSeconds", "expected an integer, got a number"),
    ],
)
def test_wrong_json_type_names_file_and_key(tmp_path: Path, change: dict[str, Any], key: str, expected: str) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(**change))
    assert load_error(tmp_path) == f"corps/HQ/HQ.json: {key}: {expected}"


MISSING_CASES = [
    ("HQ", CorpType.WECOM_INNER, {"agentId": "1", "secret": "s"}, "corpId"),
    ("HQ", CorpType.WECOM_INNER, {**wecom_inner(), "callback": {"token": "t"}}, "callback.encodingAESKey"),
    (
        "Sales",
        CorpType.DINGTALK_INNER,
        {"authConfig": {"corpId": "d", "agentId": "1", "appKey": "k"}},
        "authConfig.appSecret",
    ),
    ("T1", CorpType.WECOM_PROXY, {"corpId": "ww"}, "authFullName"),
]


@pytest.mark.parametrize(("name", "kind", "config", "key"), MISSING_CASES)
def test_missing_required_key(tmp_path: Path, name: str, kind: CorpType, config: object, key: str) -> None:
    corp(tmp_path, name, kind, config)
    assert load_error(tmp_path) == f"corps/{name}/{name}.json: {key}: missing required key"


def test_missing_suite_secret(tmp_path: Path) -> None:
    config = suite()
    del config["suiteSecret"]
    auth(tmp_path, "Suite", config)
    assert load_error(tmp_path) == "auths/Suite/Suite.json: suiteSecret: missing required key"


def test_empty_required_value(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(corpId="  "))
    assert load_error(tmp_path) == "corps/HQ/HQ.json: corpId: must not be empty"


def test_wecom_credentials_under_auth_config_get_a_hint(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, {"authConfig": {"corpId": "ww", "agentId": "1", "secret": "s"}})
    message = load_error(tmp_path)
    assert message.startswith("corps/HQ/HQ.json: corpId: missing required key")
    assert "top level" in message


def test_dingtalk_credentials_at_top_level_get_a_hint(tmp_path: Path) -> None:
    corp(tmp_path, "Sales", CorpType.DINGTALK_INNER, {"corpId": "d", "appKey": "k"})
    message = load_error(tmp_path)
    assert message.startswith("corps/Sales/Sales.json: authConfig: missing required key")


@pytest.mark.parametrize("bad_key", ["short", HQ_AES + "x", HQ_AES[:42] + "+", HQ_AES[:42] + "="])
def test_wecom_encoding_aes_key_must_be_43_alphanumerics(tmp_path: Path, bad_key: str) -> None:
    config = wecom_inner()
    config["callback"]["encodingAESKey"] = bad_key
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, config)
    with pytest.raises(IllegalAesKey) as info:
        load_app_dir(tmp_path, {})
    message = str(info.value)
    assert isinstance(info.value, ConfigError)
    assert message.startswith("corps/HQ/HQ.json: callback.encodingAESKey: must be exactly 43 characters")
    assert bad_key not in message


def test_dingtalk_aes_key_must_be_43_alphanumerics(tmp_path: Path) -> None:
    config = dingtalk()
    config["callback"]["aesKey"] = SALES_AES[:40]
    corp(tmp_path, "Sales", CorpType.DINGTALK_INNER, config)
    with pytest.raises(IllegalAesKey, match=r"^corps/Sales/Sales\.json: callback\.aesKey: .*\(got 40\)"):
        load_app_dir(tmp_path, {})


def test_suite_encoding_aes_key_must_be_43_alphanumerics(tmp_path: Path) -> None:
    auth(tmp_path, "Suite", suite(encodingAESKey=SUITE_AES[:42] + "/"))
    with pytest.raises(IllegalAesKey, match=r"^auths/Suite/Suite\.json: encodingAESKey: "):
        load_app_dir(tmp_path, {})


def test_proxy_corp_pointing_at_missing_auth(app_dir: Path) -> None:
    corp(app_dir, "T1", CorpType.WECOM_PROXY, proxy(authFullName="auths.Nope"))
    assert load_error(app_dir) == "corps/T1/T1.json: authFullName: auths/Nope does not exist"


@pytest.mark.parametrize("reference", ["Suite", "auth.Suite", "auths.Su ite", "auths.", "auths.Suite.x"])
def test_proxy_auth_full_name_must_be_auths_dot_name(app_dir: Path, reference: str) -> None:
    corp(app_dir, "T1", CorpType.WECOM_PROXY, proxy(authFullName=reference))
    assert load_error(app_dir).startswith("corps/T1/T1.json: authFullName: must be auths.<Name>")


def test_proxy_corp_pointing_at_auth_of_another_type(app_dir: Path) -> None:
    element(app_dir, "auths", "Login", "auths.loginTypes.AccountType", {})
    corp(app_dir, "T1", CorpType.WECOM_PROXY, proxy(authFullName="auths.Login"))
    message = load_error(app_dir)
    assert message.startswith("corps/T1/T1.json: authFullName: auths/Login is of type auths.loginTypes.AccountType")


def test_duplicate_tenant_corp_id_under_one_auth(app_dir: Path) -> None:
    corp(app_dir, "T2", CorpType.WECOM_PROXY, proxy())
    message = load_error(app_dir)
    assert message.startswith("corps/T2/T2.json: corpId: duplicates corps/T1 (same corpId under the same auth")
    assert "ambiguous" in message


def test_duplicate_wecom_app(app_dir: Path) -> None:
    corp(app_dir, "HQ2", CorpType.WECOM_INNER, wecom_inner())
    assert load_error(app_dir).startswith("corps/HQ2/HQ2.json: corpId: duplicates corps/HQ (same corpId and agentId")


def test_duplicate_dingtalk_app(app_dir: Path) -> None:
    corp(app_dir, "Sales2", CorpType.DINGTALK_INNER, dingtalk())
    message = load_error(app_dir)
    assert message.startswith(
        "corps/Sales2/Sales2.json: authConfig.corpId: duplicates corps/Sales (same corpId and appKey"
    )


def test_duplicate_suite_id(app_dir: Path) -> None:
    auth(app_dir, "Suite2", suite())
    assert load_error(app_dir).startswith("auths/Suite2/Suite2.json: suiteId: same suiteId as auths/Suite")


@pytest.mark.parametrize("name", ["H Q", "HQ.v2", "总部", "a%2f"])
def test_element_names_must_be_usable_in_urls(tmp_path: Path, name: str) -> None:
    corp(tmp_path, name, CorpType.WECOM_INNER, wecom_inner())
    message = load_error(tmp_path)
    assert message.startswith(f"corps/{name}: element name must use only letters, digits, _ and -")


def test_full_name_in_e_json_must_match_directory(tmp_path: Path) -> None:
    element(tmp_path, "corps", "Sales", "corps.DDInnerType", dingtalk(), fullName="corps.Copied")
    assert load_error(tmp_path) == "corps/Sales/e.json: fullName: must be corps.Sales, after its directory"


def test_unknown_key_in_corpsync_owned_object(tmp_path: Path) -> None:
    config = wecom_inner()
    config["callback"]["aesKey"] = HQ_AES
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, config)
    message = load_error(tmp_path)
    assert message == "corps/HQ/HQ.json: callback.aesKey: unknown key (expected one of: encodingAESKey, token)"


@pytest.mark.parametrize("typo", ["contactsecret", "contactSecrt", "ApiBase"])
def test_near_miss_of_a_known_key_is_rejected(tmp_path: Path, typo: str) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(**{typo: "x"}))
    assert load_error(tmp_path).startswith(f"corps/HQ/HQ.json: {typo}: unknown key; did you mean ")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"sync": {"deleteThreshold": 1.5}}, "sync.deleteThreshold"),
        ({"sync": {"scheduleSeconds": 0}}, "sync.scheduleSeconds"),
        ({"rateLimits": {"callsPerSecond": 0}}, "rateLimits.callsPerSecond"),
        ({"rateLimits": {"callsPerSecond": 1, "burst": 0}}, "rateLimits.burst"),
        ({"rateLimits": {"callsPerSecond": 1, "perApi": {"/x": -1}}}, "rateLimits.perApi./x"),
    ],
)
def test_out_of_range_numbers(tmp_path: Path, change: dict[str, Any], key: str) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(**change))
    assert load_error(tmp_path).startswith(f"corps/HQ/HQ.json: {key}: must be ")


def test_rate_limits_need_calls_per_second(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(rateLimits={"burst": 3}))
    assert load_error(tmp_path) == "corps/HQ/HQ.json: rateLimits.callsPerSecond: missing required key"


def test_api_base_must_be_http_url(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(apiBase="qyapi.weixin.qq.com"))
    assert load_error(tmp_path) == "corps/HQ/HQ.json: apiBase: must be an http:// or https:// URL"


# --- secrets stay hidden ---------------------------------------------------------------------------------


def test_repr_of_whole_config_shows_no_secret(app_dir: Path) -> None:
    config = load_app_dir(app_dir, {})
    text = repr(config) + str(config)
    for secret in SECRETS:
        assert secret not in text
    assert "Secret('***')" in text


def test_secrets_from_environment_stay_hidden(tmp_path: Path) -> None:
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, wecom_inner(secret="{{S}}"))
    assert "env-secret-value" not in repr(load_app_dir(tmp_path, {"S": "env-secret-value"}))


# --- describe -----------------------------------------------------------------------------------------------


def test_describe_lists_each_corp_with_type_corp_id_and_callback_url(app_dir: Path) -> None:
    text = "\n".join(registration_lines(load_app_dir(app_dir, {}), "https://sync.example.com/"))
    assert "corps/HQ: 'HQ' corps.QywxInnerType" in text
    assert "corpId wwHQ0001" in text
    assert "https://sync.example.com/callback/wecom/HQ" in text
    assert "corps/Sales: 'Sales' corps.DDInnerType" in text
    assert "corpId dingSales01" in text
    assert "https://sync.example.com/callback/dingtalk/Sales" in text
    assert "corps/T1: 'T1' corps.QywxProxyType" in text
    assert "corpId wwT1corp" in text
    assert "https://sync.example.com/callback/wecom/T1" in text
    assert "//callback" not in text
    assert text.startswith(f"app dir {app_dir.resolve()}: 3 corps, 1 suite auth\n")


def test_describe_gives_suite_instruction_and_data_urls_with_corpid_hint(app_dir: Path) -> None:
    lines = registration_lines(load_app_dir(app_dir, {}), "https://sync.example.com")
    assert any(line.endswith(": https://sync.example.com/callback/wecom-suite/Suite") for line in lines)
    assert any(line.endswith(": https://sync.example.com/callback/wecom-suite/Suite/data") for line in lines)
    assert any("?corpid=$CORPID$" in line for line in lines)


def test_describe_names_where_token_and_key_come_from_never_values(app_dir: Path) -> None:
    lines = registration_lines(load_app_dir(app_dir, {}), "https://sync.example.com")
    text = "\n".join(lines)
    assert "callback.token / callback.encodingAESKey in corps/HQ/HQ.json" in text
    assert "callback.token / callback.aesKey in corps/Sales/Sales.json" in text
    assert "token / encodingAESKey in auths/Suite/Suite.json" in text
    for secret in SECRETS:
        assert secret not in text


def test_describe_proxy_corp_uses_its_auths_keys(app_dir: Path) -> None:
    lines = registration_lines(load_app_dir(app_dir, {}), "https://x")
    start = next(i for i, line in enumerate(lines) if line.startswith("corps/T1:"))
    assert "auths/Suite/Suite.json" in lines[start + 2]


def test_describe_empty_app_and_ignored_auths(tmp_path: Path) -> None:
    element(tmp_path, "auths", "Login", "auths.loginTypes.AccountType", {})
    lines = registration_lines(load_app_dir(tmp_path, {}), "http://127.0.0.1:8080")
    assert lines[0] == f"app dir {tmp_path.resolve()}: 0 corps, 0 suite auths"
    assert any("no corps" in line for line in lines)
    assert any(line.startswith("auths/Login: auths.loginTypes.AccountType") for line in lines)


def test_describe_is_deterministic(app_dir: Path) -> None:
    config: AppConfig = load_app_dir(app_dir, {})
    assert registration_lines(config, "https://x") == registration_lines(load_app_dir(app_dir, {}), "https://x")


def test_control_characters_in_a_key_do_not_break_the_one_line(tmp_path: Path) -> None:
    config = wecom_inner()
    config["callback"]["to\nken"] = "x"
    corp(tmp_path, "HQ", CorpType.WECOM_INNER, config)
    assert load_error(tmp_path).startswith("corps/HQ/HQ.json: callback.to\\nken: unknown key")


# --- the JitAI seeds' configs (tests/data/jitai/app: the seeds' files as written, see SOURCES.md) -------------


def test_seed_configs_load_as_written_without_callback_blocks() -> None:
    config = load_app_dir(JITAI_APP, {"qywxProxyCorpId": "wwtenant01"})
    inner, proxy, nail = (config.corps[n] for n in ("MyQywxCorp", "MyQywxProxyCorp", "testNailDivision"))
    assert isinstance(inner, WecomInnerCorp) and isinstance(nail, DingTalkCorp)
    assert (inner.corp_id, inner.agent_id, inner.callback) == ("ww1234567890abcdef", "1000001", None)
    assert (nail.corp_id, nail.app_key, nail.callback) == ("ding12345678", "dingxxxxxxxxxxxxxxx", None)
    assert isinstance(proxy, WecomProxyCorp)
    assert (proxy.corp_id, proxy.auth.name) == ("wwtenant01", "QywxProxyAuth")


def test_a_corp_without_callback_is_told_why_it_would_want_one() -> None:
    lines = registration_lines(load_app_dir(JITAI_APP, {"qywxProxyCorpId": "w"}), "https://sync.example.com")
    text = "\n".join(lines)
    assert "no callback URL (corps/MyQywxCorp/MyQywxCorp.json has no callback block)" in text
    assert "https://sync.example.com/callback/wecom/MyQywxCorp" in text  # where it would be
    assert "no callback URL (corps/testNailDivision/testNailDivision.json" in text
    assert text.count("full syncs only") == 2


def test_callback_null_is_still_a_mistake_not_an_absent_block(tmp_path: Path) -> None:
    corp(tmp_path, "Sales", CorpType.DINGTALK_INNER, {**dingtalk(), "callback": None})
    assert load_error(tmp_path) == "corps/Sales/Sales.json: callback: expected an object, got null"


def test_front_bundle_entry_names_the_business_config_file(tmp_path: Path) -> None:
    write(tmp_path / "corps" / "HQ" / "e.json", {"title": "HQ", "type": "corps.QywxInnerType",
                                                  "frontBundleEntry": "./conf/business.json"})  # fmt: skip
    write(tmp_path / "corps" / "HQ" / "conf" / "business.json", wecom_inner(corpId="wwFromEntry"))
    hq = load_app_dir(tmp_path, {}).corps["HQ"]
    assert hq.corp_id == "wwFromEntry"


@pytest.mark.parametrize("entry", ["../Other/Other.json", "/etc/passwd.json", "./HQ.txt", "./conf/../../x.json"])
def test_front_bundle_entry_outside_the_element_or_not_json_is_refused(tmp_path: Path, entry: str) -> None:
    element(tmp_path, "corps", "HQ", "corps.QywxInnerType", wecom_inner(), frontBundleEntry=entry)
    assert load_error(tmp_path).startswith("corps/HQ/e.json: frontBundleEntry: must name a .json file inside")
