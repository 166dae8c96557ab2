// The dashboard's two languages. The plants this is built for are in China: zh-CN when the browser
// prefers Chinese, English otherwise, and a switch in the header whose choice is remembered in
// localStorage (a language is not a secret, unlike the token, which stays in sessionStorage).

const KEY = "floorgate.lang";

export const LANGS = ["en", "zh-CN"];

const en = {
  "title": "Floorgate",
  "switch": "中文",
  "switch.title": "切换到中文",
  "signin.title": "Sign in",
  "signin.help": "This gateway needs an operator token.",
  "signin.label": "Operator token",
  "signin.submit": "Open dashboard",
  "signin.refused": "The gateway refused this token.",
  "signout": "Sign out",
  "conn.connecting": "connecting…",
  "conn.live": "live",
  "conn.down": "gateway unreachable",
  "banner.down": "The gateway is not answering. The values below are the last received, with their age. Reconnecting in {s} s…",
  "banner.trying": "The gateway is not answering. The values below are the last received, with their age. Reconnecting…",
  "banner.nolive": "The live feed is not available on this gateway. Retrying in {s} s…",
  "overview": "Plant",
  "overview.empty": "No devices yet.",
  "col.device": "device",
  "col.driver": "driver",
  "col.state": "state",
  "col.lastSeen": "last seen",
  "col.values": "values",
  "output.refused": "last refused",
  "col.error": "error",
  "col.tag": "tag",
  "col.value": "value",
  "col.unit": "unit",
  "col.quality": "quality",
  "col.time": "time",
  "col.age": "age",
  "col.output": "output",
  "col.type": "type",
  "col.lag": "lag",
  "col.sent": "sent",
  "col.dropped": "dropped",
  "device": "Device",
  "device.none": "Choose a device in the plant list.",
  "device.filter": "filter tags",
  "device.count": "{n} tags",
  "stale": "stale",
  "trend": "Trend",
  "trend.none": "Click a tag to see its last minutes.",
  "trend.notNumeric": "{tag} is not numeric: no trend.",
  "health": "Gateway health",
  "health.outputs": "Outputs",
  "health.noOutputs": "No outputs configured.",
  "health.journal": "Journal",
  "journal.size": "size",
  "journal.records": "records",
  "journal.dropped": "dropped",
  "journal.torn": "torn records",
  "journal.accepting": "accepting",
  "yes": "yes",
  "no": "no",
  "write": "write",
  "write.title": "Write {device} / {tag}",
  "write.current": "Current value: {v}",
  "write.newValue": "New value",
  "write.review": "Review",
  "write.confirmQ": "Write {v} to {device} / {tag}?",
  "write.confirm": "Confirm write",
  "write.back": "Back",
  "write.cancel": "Cancel",
  "write.close": "Close",
  "write.done": "Written: {device} / {tag} = {v}",
  "write.failed": "Write failed: {e}",
  "write.invalid": "Enter a number.",
  "write.sending": "writing…",
  "state.online": "online",
  "state.offline": "offline",
  "state.connecting": "connecting",
  "state.error": "error",
  "state.disabled": "disabled",
  "state.waiting": "waiting",
  "state.stopped": "stopped",
  "state.ok": "ok",
  "state.degraded": "degraded",
  "quality.good": "good",
  "quality.uncertain": "uncertain",
  "quality.bad": "bad",
};

const zh = {
  "title": "Floorgate",
  "switch": "English",
  "switch.title": "Switch to English",
  "signin.title": "登录",
  "signin.help": "此网关需要操作员令牌。",
  "signin.label": "操作员令牌",
  "signin.submit": "打开仪表盘",
  "signin.refused": "网关拒绝了此令牌。",
  "signout": "退出",
  "conn.connecting": "连接中…",
  "conn.live": "实时",
  "conn.down": "网关无响应",
  "banner.down": "网关无响应。下面是最后收到的数值及其时长。{s} 秒后重新连接…",
  "banner.trying": "网关无响应。下面是最后收到的数值及其时长。正在重新连接…",
  "banner.nolive": "此网关没有实时数据流。{s} 秒后重试…",
  "overview": "工厂",
  "overview.empty": "暂无设备。",
  "col.device": "设备",
  "col.driver": "驱动",
  "col.state": "状态",
  "col.lastSeen": "最后数据",
  "col.values": "数值",
  "output.refused": "最近拒收",
  "col.error": "错误",
  "col.tag": "点位",
  "col.value": "数值",
  "col.unit": "单位",
  "col.quality": "质量",
  "col.time": "时间",
  "col.age": "时长",
  "col.output": "输出",
  "col.type": "类型",
  "col.lag": "积压",
  "col.sent": "已发送",
  "col.dropped": "已丢弃",
  "device": "设备",
  "device.none": "请在工厂列表中选择一个设备。",
  "device.filter": "筛选点位",
  "device.count": "{n} 个点位",
  "stale": "过时",
  "trend": "趋势",
  "trend.none": "点击一个点位查看最近几分钟的趋势。",
  "trend.notNumeric": "{tag} 不是数值：没有趋势。",
  "health": "网关状态",
  "health.outputs": "输出",
  "health.noOutputs": "未配置输出。",
  "health.journal": "日志",
  "journal.size": "大小",
  "journal.records": "记录",
  "journal.dropped": "已丢弃",
  "journal.torn": "损坏记录",
  "journal.accepting": "可写入",
  "yes": "是",
  "no": "否",
  "write": "写入",
  "write.title": "写入 {device} / {tag}",
  "write.current": "当前值：{v}",
  "write.newValue": "新值",
  "write.review": "检查",
  "write.confirmQ": "将 {v} 写入 {device} / {tag}？",
  "write.confirm": "确认写入",
  "write.back": "返回",
  "write.cancel": "取消",
  "write.close": "关闭",
  "write.done": "已写入：{device} / {tag} = {v}",
  "write.failed": "写入失败：{e}",
  "write.invalid": "请输入数字。",
  "write.sending": "写入中…",
  "state.online": "在线",
  "state.offline": "离线",
  "state.connecting": "连接中",
  "state.error": "故障",
  "state.disabled": "已停用",
  "state.waiting": "等待中",
  "state.stopped": "已停止",
  "state.ok": "正常",
  "state.degraded": "降级",
  "quality.good": "良好",
  "quality.uncertain": "不确定",
  "quality.bad": "坏值",
};

const TABLES = { en, "zh-CN": zh };

/** The language to start with: the remembered choice, else the browser's preference. */
export function initialLang(storage, languages) {
  const saved = safeGet(storage, KEY);
  if (saved && Object.hasOwn(TABLES, saved)) return saved;
  for (const l of languages ?? []) {
    if (/^zh\b/i.test(l)) return "zh-CN";
    if (/^en\b/i.test(l)) return "en";
  }
  return "en";
}

export function rememberLang(storage, lang) {
  try { storage.setItem(KEY, lang); } catch { /* private mode: the switch still works for this page */ }
}

/** `t(key, {name: value})`: the text of `key` in `lang` with `{name}` filled in; the key itself when unknown. */
export function translator(lang) {
  const table = TABLES[lang] ?? en;
  return (key, vars) => {
    let s = table[key] ?? en[key] ?? key;
    if (vars) for (const k of Object.keys(vars)) s = s.split(`{${k}}`).join(String(vars[k]));
    return s;
  };
}

/** Every key has both languages: checked by test/unit/dashboard-format.test.ts. */
export function missingKeys() {
  return [...Object.keys(en).filter((k) => !Object.hasOwn(zh, k)), ...Object.keys(zh).filter((k) => !Object.hasOwn(en, k))];
}

function safeGet(storage, key) {
  try { return storage?.getItem(key) ?? null; } catch { return null; }
}
