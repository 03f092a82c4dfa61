"""Upstream simulator and callback helpers, for corpsync's tests and for users replaying events in theirs."""

from receiver.testing import mutations
from receiver.testing.accounts import DingTalkApp, SuiteTenant, WecomCorp, WecomSuite
from receiver.testing.callbacks import (
    dingtalk_check_url,
    sign_dingtalk_callback,
    sign_wecom_callback,
    sign_wecom_url_verification,
)
from receiver.testing.events import Callbacks
from receiver.testing.gate import ApiError, RateLimits
from receiver.testing.harness import (
    Pushed,
    push_event,
    signed_request,
    write_dingtalk_corp,
    write_proxy_corp,
    write_suite,
    write_wecom_corp,
)
from receiver.testing.org import SimDept, SimMember, SimOrg, SimRole, SimRoleGroup, SimTag, generate_org
from receiver.testing.serve import describe, main, run_simulator
from receiver.testing.simulator import PushResult, Simulator

__all__ = [
    "ApiError",
    "Callbacks",
    "DingTalkApp",
    "PushResult",
    "Pushed",
    "RateLimits",
    "SimDept",
    "SimMember",
    "SimOrg",
    "SimRole",
    "SimRoleGroup",
    "SimTag",
    "Simulator",
    "SuiteTenant",
    "WecomCorp",
    "WecomSuite",
    "describe",
    "dingtalk_check_url",
    "generate_org",
    "main",
    "mutations",
    "push_event",
    "run_simulator",
    "sign_dingtalk_callback",
    "sign_wecom_callback",
    "sign_wecom_url_verification",
    "signed_request",
    "write_dingtalk_corp",
    "write_proxy_corp",
    "write_suite",
    "write_wecom_corp",
]
