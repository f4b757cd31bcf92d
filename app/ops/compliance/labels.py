"""Chinese names for what the reports show: the people who open an export read Chinese (the console
of a later issue takes its labels from message catalogues; these are the exports' own)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.domain.catalogue import CardService, OutletKind

CST = timezone(timedelta(hours=8), "CST")

SERVICE_NAMES = {
    CardService.activation: "启用（激活）",
    CardService.info_inquiry: "信息查询",
    CardService.password_change: "密码修改",
    CardService.password_reset: "密码重置",
    CardService.password_unlock: "密码解锁",
    CardService.temp_loss_report: "临时挂失",
    CardService.loss_release: "解除挂失",
    CardService.financial_activation: "金融功能启用",
    CardService.financial_password_change: "金融密码修改",
    CardService.financial_password_reset: "金融密码重置",
    CardService.financial_loss_report: "金融账户挂失",
    CardService.bank_account_cancellation: "银行账户注销",
}

KIND_NAMES = {
    OutletKind.hrss_hall: "人社服务大厅",
    OutletKind.grassroots_platform: "基层服务平台",
    OutletKind.bank_outlet: "银行网点",
    OutletKind.designated_hospital: "定点医院",
    OutletKind.designated_pharmacy: "定点药店",
    OutletKind.self_service_terminal: "自助终端",
    OutletKind.hotline: "12333热线",
}

STATUTORY_NAMES = {
    "builtin:hospital_first_use": "法定：定点医院首次就医启用",
    "builtin:pharmacy_first_use": "法定：定点药店首次购药启用",
}


def service_name(service: str) -> str:
    return SERVICE_NAMES.get(service, service)  # type: ignore[call-overload]


def kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind)  # type: ignore[call-overload]


def cst_text(moment: datetime | None) -> str:
    """A stored UTC time as people read it: China Standard Time, to the second."""
    return "" if moment is None else moment.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
