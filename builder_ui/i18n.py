"""The editor's words in English and Simplified Chinese.

Field labels and hints come from the scheme's models (their titles and descriptions); this module
adds the Chinese for the field names, the editor's own words, and the loader's error codes in
operators' words. A missing Chinese entry falls back to the English, never to a blank.
"""

from __future__ import annotations

from typing import Any

LOCALES = ("en", "zh-CN")

_WORDS: dict[str, tuple[str, str]] = {
    # frame and sign-in
    "app": ("Perkflow", "Perkflow 会员规则"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "username": ("Username", "用户名"),
    "password": ("Password", "密码"),
    "bad_credentials": ("Wrong username or password.", "用户名或密码错误。"),
    "locked_out": ("Too many failed sign-ins: try again after {until} UTC.", "登录失败次数过多，请在 {until} (UTC) 之后再试。"),
    "new_password": ("New password (at least 12 characters)", "新密码（至少 12 个字符）"),
    "change_password": ("Change password", "修改密码"),
    "must_change": ("Choose a new password before you go on.", "请先设置新密码。"),
    "language": ("Language", "语言"),
    "not_allowed": ("Your role may not open this page.", "您的角色无权访问此页面。"),
    "home": ("Home", "首页"),
    "drafts": ("Drafts", "草稿"),
    "approvals": ("Approvals", "审批"),
    "versions": ("Versions", "版本"),
    "members": ("Members", "会员"),
    "audit": ("Audit log", "审计日志"),
    "events": ("Events", "事件"),
    "users": ("Users", "用户"),
    "welcome": ("Signed in as {user} ({roles})", "当前用户 {user}（{roles}）"),
    # drafts
    "new_empty": ("New empty scheme", "新建空白方案"),
    "new_from_example": ("New from example", "从示例新建"),
    "new_from_version": ("New from the active version", "从当前生效版本新建"),
    "open": ("Open", "打开"),
    "title": ("Title", "标题"),
    "status": ("Status", "状态"),
    "updated": ("Last saved", "最近保存"),
    "no_drafts": ("No drafts yet.", "暂无草稿。"),
    "saved": ("Saved", "已保存"),
    "saving_refused": ("Not saved: {detail}", "未保存：{detail}"),
    "conflict": ("{detail}. Reload to see their changes; your last edit was not saved.", "{detail}。请重新加载查看对方的修改；您最近的修改未保存。"),
    "reload": ("Reload", "重新加载"),
    "errors_count": ("{n} error(s) to fix before submitting", "提交前需修正 {n} 个错误"),
    "no_errors": ("The scheme is valid.", "方案校验通过。"),
    "read_only": ("This draft is {status}: it can no longer be edited.", "此草稿状态为 {status}，不能再编辑。"),
    "general": ("General", "基本信息"),
    "yaml": ("YAML", "YAML"),
    "preview": ("Preview", "预览"),
    "submit": ("Submit for approval", "提交审批"),
    "comment": ("Comment", "备注"),
    "submitted": ("Submitted as version id:{id} ({status}).", "已提交为版本 id:{id}（{status}）。"),
    "import_yaml": ("Import a YAML file", "导入 YAML 文件"),
    "export_yaml": ("Download YAML", "下载 YAML"),
    "imported": ("Imported: the draft now holds the file.", "已导入：草稿内容已替换为该文件。"),
    "add": ("Add", "添加"),
    "remove": ("Remove", "删除"),
    "key": ("Key", "键"),
    "new_key": ("Name of the new entry", "新条目的名称"),
    "kind": ("Kind", "类型"),
    "default": ("default", "默认"),
    "none": ("(none)", "（无）"),
    "names_available": ("Names available here", "可用的名称"),
    "text_en": ("English", "英文"),
    "text_zh": ("Chinese", "中文"),
    # preview
    "test_event": ("Test one event", "测试单个事件"),
    "event_json": ("Event (JSON, as the API takes it)", "事件（JSON，与 API 相同）"),
    "run": ("Run", "运行"),
    "trace": ("Trace", "决策轨迹"),
    "effects": ("Effects", "结果"),
    "fired": ("fired", "已触发"),
    "skipped": ("skipped", "未触发"),
    "replay": ("Replay against the active version", "与当前版本对比回放"),
    "days": ("Stored events of the last N days", "最近 N 天的已存事件"),
    "upload_jsonl": ("…or upload a JSONL file of events", "……或上传事件 JSONL 文件"),
    "cancel": ("Cancel", "取消"),
    "cancelled": ("Replay cancelled.", "回放已取消。"),
    "replayed": ("{n} events replayed.", "已回放 {n} 个事件。"),
    "metric": ("Metric", "指标"),
    "draft": ("Draft", "草稿"),
    "active": ("Active", "当前版本"),
    "difference": ("Difference", "差异"),
    "cost": ("Cost (minor units: points at their value, coupons at face value)", "成本（分：积分按价值，优惠券按面额）"),
    "no_active": ("No version is in force yet: only the draft is shown.", "尚无生效版本：仅显示草稿结果。"),
    # approvals and versions
    "waiting": ("Waiting for approval", "待审批"),
    "nothing_waiting": ("Nothing is waiting for approval.", "没有待审批的版本。"),
    "author": ("Author", "作者"),
    "approver": ("Approver", "审批人"),
    "approve_now": ("Publish now", "立即发布"),
    "approve_at": ("Publish at (UTC, e.g. 2026-12-01T00:00)", "定时发布（UTC，如 2026-12-01T00:00）"),
    "send_back": ("Send back", "退回"),
    "published": ("Published as version {n}.", "已发布为版本 {n}。"),
    "returned": ("Sent back to its author.", "已退回作者。"),
    "diff_against_active": ("Changes against the active version", "与当前版本的差异"),
    "no_changes": ("No changes.", "无变化。"),
    "history": ("Version history", "版本历史"),
    "compare": ("Compare", "对比"),
    "rollback": ("Roll back to this version", "回滚到此版本"),
    "rolled_back": ("Rollback submitted as version id:{id} ({status}).", "回滚已提交为版本 id:{id}（{status}）。"),
    "download": ("Download", "下载"),
    "hash": ("Hash", "哈希"),
    "when": ("When", "时间"),
    # members
    "find_member": ("Phone, email or member id", "手机号、邮箱或会员号"),
    "search": ("Search", "查找"),
    "no_members": ("No member found.", "未找到会员。"),
    "tier": ("Tier", "等级"),
    "balances": ("Balances", "余额"),
    "lots": ("Lots", "批次"),
    "expires": ("Expires", "过期时间"),
    "coupons": ("Coupons", "优惠券"),
    "ledger": ("Ledger", "流水"),
    "recent_events": ("Events and their decisions", "事件及决策"),
    "adjust": ("Adjust a balance", "调整余额"),
    "balance": ("Balance", "余额账户"),
    "amount": ("Amount", "数量"),
    "adjust_amount": ("Amount (negative to deduct)", "数量（负数为扣减）"),
    "reason": ("Reason (required)", "原因（必填）"),
    "adjusted": ("Adjusted.", "已调整。"),
    "event_id": ("Event id", "事件 ID"),
    "look_up": ("Look up", "查询"),
    # audit
    "actor": ("Actor", "操作人"),
    "action": ("Action", "操作"),
    "target": ("Target", "对象"),
    "detail": ("Detail", "详情"),
    "occurred_at": ("Occurred", "发生时间"),
    "earned": ("Earned", "获得时间"),
    "available": ("Available from", "解冻时间"),
    "rule": ("Rule", "规则"),
    "policy": ("Policy", "券种"),
    "valid_until": ("Valid until", "有效期至"),
    "id": ("Id", "编号"),
    "at": ("At", "时间"),
    "roles": ("Roles", "角色"),
    "stores": ("Stores", "门店"),
    "name": ("Name", "名称"),
    "stores_hint": ("Stores (comma-separated; store managers)", "门店（逗号分隔，门店经理用）"),
    "create_user": ("Create user", "创建用户"),
    "one_time_password": ("One-time password for {user} (shown once; changed at first sign-in):", "{user} 的一次性密码（仅显示一次，首次登录时须修改）："),
    "revoke_sessions": ("End all sessions of this user", "结束该用户的全部会话"),
    "sessions_revoked": ("{n} session(s) ended.", "已结束 {n} 个会话。"),
    "api_keys": ("API keys", "API 密钥"),
    "scopes": ("Scopes", "权限范围"),
    "create_key": ("Create key", "创建密钥"),
    "key_once": ("The key, shown once: give it to the integrator now.", "密钥仅显示一次，请立即交给对接方。"),
    "revoke_key": ("Revoke key", "吊销密钥"),
    "disabled": ("Disabled", "已停用"),
    "locked": ("Locked", "已锁定"),
    "created_by": ("Created by", "创建人"),
    "revoked": ("Revoked", "已吊销"),
    "reports": ("Reports", "数据分析"),
    "report_liability": ("Liability", "积分负债"),
    "report_flows": ("Flows", "积分流水"),
    "report_tiers": ("Tiers", "会员等级"),
    "report_coupons": ("Coupons", "优惠券"),
    "report_rewards": ("Rewards", "积分商城"),
    "report_campaigns": ("Campaigns", "营销活动"),
    "report_retention": ("Retention", "留存"),
    "report_rfm": ("RFM and churn risk", "RFM 与流失预警"),
    "filter_from": ("From (YYYY-MM-DD)", "开始日期"),
    "filter_to": ("To (YYYY-MM-DD)", "结束日期"),
    "filter_store": ("Store", "门店"),
    "filter_channel": ("Channel", "渠道"),
    "filter_tier": ("Tier", "等级"),
    "filter_campaign": ("Campaign", "活动"),
    "bucket": ("By", "时间粒度"),
    "month": ("month", "月"),
    "week": ("week", "周"),
    "day": ("day", "日"),
    "progress": ("What the member still needs", "距离下一目标还差"),
    "personal": ("Personal data", "个人信息"),
    "reveal": ("Reveal (audited)", "查看完整信息（留痕）"),
    "export_subject": ("Export everything held (JSON)", "导出全部数据（JSON）"),
    "erase": ("Erase personal data", "删除个人信息"),
    "erased": ("Erased: the ledger stays under {id}.", "已删除：流水以 {id} 保留。"),
    "first_version": ("The first version: nothing is in force yet. Its whole content:", "首个版本：尚无生效版本。完整内容："),
    "filter": ("Filter", "筛选"),
}

# Chinese labels for the fields of the scheme language, by field name (the English comes from the models).
FIELD_ZH: dict[str, str] = {
    "id": "标识", "name": "名称", "description": "说明", "currency": "币种", "timezone": "时区",
    "auto_enroll": "自动入会", "late_event_limit": "迟到事件期限", "balances": "余额账户", "tiers": "会员等级",
    "counters": "计数器", "event_types": "事件类型", "rules": "规则", "coupons": "优惠券", "rewards": "积分商城",
    "campaigns": "营销活动", "templates": "消息模板", "inactivity": "沉睡提醒", "governance": "审批设置",
    "label": "显示名称", "unit": "单位", "expiry": "过期策略", "consumption": "消耗顺序", "allow_negative": "允许负数",
    "spendable": "可消费", "rounding": "取整方式", "parts": "分账部分", "spending": "消费方式", "pending": "冻结期",
    "remind_before": "到期提醒提前量", "value": "价值", "kind": "类型", "after": "期限", "period": "周期",
    "periods_after": "延后周期数", "order": "顺序", "ratio": "比例", "duration": "时长", "metric": "定级指标",
    "levels": "等级列表", "downgrade": "降级规则", "balance": "余额账户", "counter": "计数器", "expr": "表达式",
    "threshold": "门槛", "retain": "保级门槛", "benefits": "权益", "on_reach": "升级时动作", "every": "复核周期",
    "grace": "宽限期", "on": "事件", "when": "条件", "of": "累计值", "window": "时间窗口", "type": "类型",
    "required": "必填", "values": "可选值", "attributes": "属性", "limit": "上限", "per": "每", "stores": "门店",
    "channels": "渠道", "amount": "数量", "part": "部分", "coupon": "优惠券", "count": "数量", "reward": "奖励",
    "tier": "等级", "template": "模板", "channel": "渠道", "then": "动作", "priority": "优先级", "exclusive": "互斥",
    "caps": "频次限制", "scope": "适用范围", "enabled": "启用", "percent": "折扣百分比", "max_off": "最高优惠",
    "sku": "商品编码", "days": "有效天数", "start": "开始", "end": "结束", "with_others": "可与其他券叠加",
    "max_per_order": "每单最多张数", "benefit": "优惠内容", "min_spend": "最低消费", "validity": "有效期",
    "budget": "预算", "per_member": "每人上限", "stacking": "叠加规则", "cost": "兑换成本", "grants": "兑换内容",
    "stock": "库存", "audience": "目标人群", "tags": "标签", "rollout": "灰度比例", "holdout": "对照组比例",
    "text": "文本", "require_approval": "需要审批", "award": "发放", "deduct": "扣减", "issue_coupon": "发券",
    "grant_reward": "发放奖励", "set_tier": "设置等级", "tag": "打标签", "untag": "移除标签", "notify": "通知",
    "achievements": "成就", "measure": "统计方式", "target": "目标", "repeat": "重复", "badge": "徽章",
    "referrals": "邀请有礼", "qualify": "首单达标条件", "reward_event": "邀请人事件", "referee_then": "受邀好友奖励",
}

# The loader's error codes in operators' words; {message} is the loader's own English sentence.
_ERRORS_ZH: dict[str, str] = {
    "missing_field": "必填项",
    "unknown_field": "未知字段",
    "invalid_choice": "不是可选的值",
    "invalid_format": "格式不正确",
    "invalid_value": "取值无效",
    "unknown_name": "未知的名称",
    "syntax_error": "表达式语法错误",
    "type_error": "表达式类型错误",
}


def tr(key: str, locale: str, **values: Any) -> str:
    en, zh = _WORDS[key]
    text = zh if locale == "zh-CN" else en
    return text.format(**values) if values else text


def field_label(name: str, english: str, locale: str) -> str:
    if locale == "zh-CN" and name in FIELD_ZH:
        return FIELD_ZH[name]
    return english


def error_text(code: str, message: str, locale: str) -> str:
    """An error next to its field: the loader's message, led in Chinese by what kind of error it is."""
    if locale == "zh-CN":
        lead = _ERRORS_ZH.get(code)
        return f"{lead}：{message}" if lead else message
    return message
