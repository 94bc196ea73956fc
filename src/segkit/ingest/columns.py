"""Column resolution: which header in the file plays which logical role.

Order: explicit mapping (``--map role=header`` / ``[columns]``), then the alias table below,
matched case-, space- and punctuation-insensitively. Two headers matching one role is an error
naming both and the ``--map`` fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from segkit.errors import DataError, clip, option

ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer", "customer id", "customerid", "customer code", "customer no",
                    "customer number", "client id", "clientid", "client code", "account id",
                    "客户编码", "客户编号", "客户代码", "客户ID", "客户号"),
    "customer_name": ("customer name", "client name", "client", "account name",
                      "客户名称", "客户", "客户全称"),
    "order_date": ("date", "order date", "invoice date", "transaction date", "sales date",
                   "document date", "单据日期", "订单日期", "业务日期", "日期", "销售日期", "开票日期"),
    "amount": ("amount", "sales", "revenue", "net amount", "sales amount", "line amount",
               "价税合计", "含税金额", "金额", "销售额", "实收金额", "销售金额"),
    "order_id": ("order id", "order no", "order number", "invoice", "invoiceno", "invoice no",
                 "invoice number", "document no", "单据编号", "订单号", "订单编号", "单号"),
    "quantity": ("qty", "quantity", "数量", "销售数量"),
    "unit_price": ("price", "unit price", "单价", "含税单价"),
    "channel": ("channel", "sales channel", "渠道", "销售渠道"),
    "region": ("region", "area", "country", "区域", "地区", "大区", "国家"),
    "customer_type": ("customer type", "customer category", "customer group",
                      "客户类型", "客户类别", "客户分类"),
    "category": ("category", "product category", "品类", "产品类别", "商品类别"),
    "cost": ("cost", "cogs", "成本", "成本金额"),
    "gross_profit": ("gross profit", "margin amount", "毛利", "毛利额"),
    "payment_terms_days": ("payment terms", "payment terms days", "terms days", "账期", "账期天数"),
}

REQUIRED = ("customer_id", "order_date")


def normalize(header: str) -> str:
    """Lower-case, drop a bracketed unit or note, spaces and punctuation:
    'Customer ID' -> 'customerid', '价税合计（元）' -> '价税合计', 'Amount (USD)' -> 'amount'."""
    text = re.sub(r"[(（\[【].*?[)）\]】]", "", str(header))
    return re.sub(r"[\W_]+", "", text.lower())


_ALIAS_INDEX: dict[str, str] = {
    normalize(alias): role for role, aliases in ALIASES.items() for alias in aliases
}
_ALIAS_INDEX.update({normalize(role): role for role in ALIASES})


def alias_score(cells: Sequence[object]) -> int:
    """How many cells of a row are known column names (used to find the header row)."""
    return sum(1 for c in cells if c is not None and normalize(str(c)) in _ALIAS_INDEX)


def resolve(headers: Sequence[str], mapping: dict[str, str], source: str) -> dict[str, str]:
    """Return ``{role: header}`` for every role found.

    Raises DataError for an explicit mapping naming a missing header, for ambiguity, and for a
    missing required column (customer_id, order_date, and amount or quantity + unit_price).
    """
    found: dict[str, str] = {}
    for role, header in mapping.items():
        if header not in headers:
            close = [h for h in headers if normalize(h) == normalize(header)]
            hint = f" (did you mean '{clip(close[0])}'?)" if close else ""
            msg = (f"{source}: {option('columns.' + role)}={clip(header)}: no column '{clip(header)}'{hint}; "
                   f"columns are: {_shown(headers)}")
            raise DataError(msg)
        found[role] = header
    mapped_headers = set(found.values())
    candidates: dict[str, list[str]] = {}
    for header in headers:
        if header in mapped_headers:
            continue
        alias_role = _ALIAS_INDEX.get(normalize(header))
        if alias_role and alias_role not in found:
            candidates.setdefault(alias_role, []).append(header)
    for role, hs in candidates.items():
        if len(hs) > 1:
            msg = (f"{source}: columns '{clip(hs[0])}' and '{clip(hs[1])}' both look like {role}; "
                   f"choose one with {option('columns.' + role)}=\"{clip(hs[0])}\"")
            raise DataError(msg)
        found[role] = hs[0]
    for role in REQUIRED:
        if role not in found:
            raise DataError(_missing_message(source, role, headers))
    if "amount" not in found and not ("quantity" in found and "unit_price" in found):
        raise DataError(_missing_message(source, "amount", headers))
    return found


def _shown(headers: Sequence[str], most: int = 12) -> str:
    """The first ``most`` headers, each clipped (a message stays short for any header row)."""
    return ", ".join(clip(h) for h in headers[:most]) + (" ..." if len(headers) > most else "")


def _missing_message(source: str, role: str, headers: Sequence[str]) -> str:
    examples = ", ".join(ALIASES[role][:4])
    shown = _shown(headers)
    extra = " (or quantity and unit_price)" if role == "amount" else ""
    return (f"{source}: no {role} column{extra} among: {shown}; "
            f"name it with {option('columns.' + role)}=\"<header>\" (recognised names include {examples})")
