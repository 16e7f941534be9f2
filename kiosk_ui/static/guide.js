/* The guide desk (导办台): tickets on a visitor's behalf with a green-channel reason, appointments
 * (book, list, reschedule, cancel, check in), reprint and cancel tickets, queues, device faults.
 *
 * Every message shown is Chinese, or English in English mode: the code's text here
 * (MESSAGES), else the daemon's own zh/en pair (every refusal carries one); a raw
 * English `detail` is never shown in Chinese mode.
 */
"use strict";

(async () => {
  const $ = (id) => document.getElementById(id);
  const cfg = await Hall.boot("guide");
  const t = Hall.t;

  // ---- messages ---------------------------------------------------------------------------------
  const MESSAGES = {
    category_closed: ["该业务现在不办理（非办公时间或节假日）", "This service is closed now (outside hours or a holiday)"],
    unknown_category: ["没有该业务", "No such service"],
    id_limit_reached: ["该证件今日取号次数已达上限", "This ID card reached today's ticket limit"],
    priority_not_allowed: ["本令牌不能办理绿色通道", "This token may not grant the green channel"],
    unknown_green_reason: ["未知的绿色通道原因", "Unknown green-channel reason"],
    unknown_appointment: ["没有这个预约码", "No appointment with this code"],
    appointment_exists: ["该预约码已存在", "This appointment code exists"],
    appointment_used: ["该预约已签到或已取消", "This appointment is already checked in or cancelled"],
    no_appointment_for_card: ["该证件今天没有预约", "This ID card has no booking today"],
    bad_qr_token: ["二维码无法识别", "QR code not recognised"],
    expired_qr_token: ["二维码已过期", "QR code expired"],
    not_an_appointment_qr: ["这是号票的二维码，不是预约二维码", "This is a ticket's QR, not a booking's"],
    unknown_ticket: ["今天没有这个号码", "No such ticket today"],
    ticket_not_waiting: ["该号票不在等候中，不能取消", "This ticket is not waiting; it cannot be cancelled"],
    no_printer: ["请选择打印机（取号机）", "Choose a printer (kiosk)"],
    unknown_kiosk: ["没有这台取号机", "No such kiosk"],
    invalid_arguments: ["输入有误，请检查", "Please check the input"],
    forbidden: ["本令牌无权进行此操作", "This token may not do that"],
    unauthorized: ["令牌无效，请重新输入", "Invalid token; enter it again"],
    rate_limited: ["操作太频繁，请稍后再试", "Too many requests; try again shortly"],
    store_unavailable: ["系统暂时无法保存，请稍后再试", "The system cannot save right now; try again"],
    network: ["网络连接中断，请稍后重试", "Network connection lost, please retry"],
  };
  const CJK = /[\u4e00-\u9fff]/;

  // The table's words for the codes a guide meets most; any other refusal in the daemon's own Chinese
  // (detail) and English (detail_en), which every refusal carries.
  function errorText(e) {
    const pair = MESSAGES[e.code];
    if (pair) return t(pair[0], pair[1]);
    if (CJK.test(e.detail || "")) return e.text();
    return t(`操作未成功（${e.code}）`, `Not done (${e.code})`);
  }

  function say(el, ok, zh, en) {
    el.className = `msg ${ok ? "ok" : "err"}`;
    el.dataset.zhText = zh;
    el.dataset.enText = en;
    el.textContent = t(zh, en);
  }
  /** Clear a message when its action starts, so what shows next is that action's answer. */
  function pending(el) {
    el.className = "msg";
    delete el.dataset.zhText;
    delete el.dataset.enText;
    el.textContent = "";
  }
  function fail(el, e) {
    if (!(e instanceof Hall.ApiError)) throw e;
    const pair = MESSAGES[e.code];
    if (pair) return say(el, false, pair[0], pair[1]);
    if (CJK.test(e.detail || "")) return say(el, false, e.detail, e.detail_en);
    say(el, false, `操作未成功（${e.code}）`, `Not done (${e.code})`);
  }

  // ---- layout from the hall's config -----------------------------------------------------------
  const catName = (prefix) => {
    const c = cfg.categories.find((x) => x.prefix === prefix);
    return c ? t(c.name, c.name_en || c.name) : prefix;
  };
  $("title").dataset.en = `Guide desk · ${cfg.hall.name_en || cfg.hall.name}`;
  $("title").dataset.zh = `导办台 · ${cfg.hall.name}`;
  Hall.applyLang();
  Hall.clock($("clock"));

  function fillCategories() {
    for (const sel of [$("issue-cat"), $("appt-cat")]) {
      const keep = sel.value;
      sel.innerHTML = "";
      for (const c of cfg.categories) {
        const o = Hall.el("option", null, `${c.prefix} ${catName(c.prefix)}`);
        o.value = c.prefix;
        sel.appendChild(o);
      }
      if (keep) sel.value = keep;
    }
    const k = $("kiosk");
    const keep = k.value;
    k.innerHTML = "";
    for (const kiosk of cfg.kiosks) {
      const desk = kiosk.id === cfg.guide_kiosk;  // [guide] kiosk: the desk's own printer
      const o = Hall.el("option", null, desk ? t("导办台打印机", "Desk printer") : t(`取号机 ${kiosk.id}`, `Kiosk ${kiosk.id}`));
      o.value = kiosk.id;
      k.appendChild(o);
    }
    k.value = keep || cfg.guide_kiosk || k.value;
  }

  let reason = null;
  function fillReasons() {
    const box = $("reasons");
    box.innerHTML = "";
    for (const r of cfg.green_reasons) {
      const b = Hall.el("button", null, t(r.name, r.name_en || r.name));
      b.type = "button";
      b.dataset.reason = r.id;
      b.setAttribute("aria-pressed", String(reason === r.id));
      b.addEventListener("click", () => { reason = reason === r.id ? null : r.id; fillReasons(); });
      box.appendChild(b);
    }
  }

  // ---- issue on a visitor's behalf ---------------------------------------------------------------
  $("issue-btn").addEventListener("click", async () => {
    pending($("issue-msg"));
    const body = { category: $("issue-cat").value };
    if (reason) Object.assign(body, { priority: "green", priority_reason: reason });
    try {
      const tk = await Hall.api("/api/v1/tickets", { method: "POST", body });
      $("issued").textContent = tk.number;
      $("ticket-no").value = tk.number;
      const label = reason ? cfg.green_reasons.find((r) => r.id === reason) : null;
      const desk = Boolean(cfg.guide_kiosk);  // [guide] kiosk: the desk's own printer prints it
      say($("issue-msg"), true,
        `已取号 ${tk.number}${label ? `（绿色通道：${label.name}）` : ""}，前面 ${tk.waiting_ahead} 人${desk ? "，正在打印号票" : ""}`,
        `Ticket ${tk.number}${label ? ` (green channel: ${label.name_en || label.name})` : ""}, ${tk.waiting_ahead} ahead${desk ? "; printing the ticket" : ""}`);
      reason = null;
      fillReasons();
      refreshTickets();
    } catch (e) { fail($("issue-msg"), e); }
  });

  // ---- check in --------------------------------------------------------------------------------
  async function checkIn(path, body, input) {
    pending($("checkin-msg"));
    try {
      const tk = await Hall.api(path, { method: "POST", body });
      input.value = "";
      $("ticket-no").value = tk.number;
      say($("checkin-msg"), true, `签到成功，号码 ${tk.number}（${catName(tk.category)}）`,
        `Checked in: ticket ${tk.number} (${catName(tk.category)})`);
      refreshAppointments();
      refreshTickets();
    } catch (e) { fail($("checkin-msg"), e); }
  }
  $("checkin-code").addEventListener("click", () => {
    pending($("checkin-msg"));
    const code = $("code").value.trim();
    if (!/^[0-9]{6,12}$/.test(code)) return say($("checkin-msg"), false, "预约码为6至12位数字", "The code is 6 to 12 digits");
    checkIn(`/api/v1/appointments/${code}/check-in`, {}, $("code"));
  });
  $("checkin-card").addEventListener("click", () => {
    const id = $("idno").value.trim();
    if (!id) return say($("checkin-msg"), false, "请输入或读取身份证号", "Enter or read the ID number");
    checkIn("/api/v1/appointments/check-in", { id_number: id }, $("idno"));
  });
  $("checkin-qr").addEventListener("click", () => {
    const qr = $("qrin").value.trim();
    if (!qr) return say($("checkin-msg"), false, "请扫描预约二维码", "Scan the booking's QR");
    checkIn("/api/v1/appointments/check-in", { qr }, $("qrin"));
  });
  $("qrin").addEventListener("keydown", (ev) => { if (ev.key === "Enter") $("checkin-qr").click(); });
  $("code").addEventListener("keydown", (ev) => { if (ev.key === "Enter") $("checkin-code").click(); });

  // ---- book, list, reschedule, cancel ----------------------------------------------------------
  const tz = cfg.hall.timezone || "Asia/Shanghai";
  const hm = (iso) => new Date(iso).toLocaleTimeString("zh-CN", { timeZone: tz, hour: "2-digit", minute: "2-digit", hour12: false });
  const md = (iso) => new Date(iso).toLocaleDateString("zh-CN", { timeZone: tz, month: "2-digit", day: "2-digit" });
  const todayIso = () => Hall.now().toLocaleDateString("sv-SE", { timeZone: tz });
  const DAY_KIND = {
    holiday: ["法定节假日", "public holiday"], makeup: ["调休上班日", "make-up working day"],
    weekend: ["周末", "weekend"], closed: ["闭馆日", "closed day"], open: ["预约开放日", "extra open day"],
    unknown: ["节假日安排未发布", "holidays not yet published"],
  };
  let slotsInfo = null;

  async function loadSlots() {
    const day = $("appt-day").value || todayIso();
    const sel = $("slot");
    try {
      slotsInfo = await Hall.api(`/api/v1/appointments/slots/${encodeURIComponent($("appt-cat").value)}/${day}`);
    } catch (e) { slotsInfo = null; fail($("book-msg"), e); }
    renderSlots();
    sel.disabled = !slotsInfo || !slotsInfo.slots.length;
  }
  function renderSlots() {
    const sel = $("slot");
    const keep = sel.value;
    sel.innerHTML = "";
    const now = Hall.now().getTime();
    const open = slotsInfo ? slotsInfo.slots.filter((s) => new Date(s.end).getTime() > now) : [];
    for (const s of open) {
      const o = Hall.el("option", null, `${hm(s.start)}–${hm(s.end)}  ${t(`余${s.free}/${s.capacity}`, `${s.free}/${s.capacity} free`)}`);
      o.value = s.start;
      o.disabled = s.free <= 0;
      sel.appendChild(o);
    }
    if (keep) sel.value = keep;
    const note = $("day-note");
    note.className = "msg";
    if (!slotsInfo) { note.textContent = ""; return; }
    const kind = DAY_KIND[slotsInfo.day_kind];
    const holiday = slotsInfo.holiday ? t(slotsInfo.holiday_zh, slotsInfo.holiday) : "";
    note.textContent = kind ? `${t(kind[0], kind[1])}${holiday ? ` · ${holiday}` : ""}` : "";
    if (!open.length) note.textContent += (note.textContent ? " · " : "") + t("当天无可约时段", "no slots that day");
  }
  $("appt-cat").addEventListener("change", loadSlots);
  $("appt-day").addEventListener("change", loadSlots);

  $("book-btn").addEventListener("click", async () => {
    pending($("book-msg"));
    const start = $("slot").value;
    if (!start) return say($("book-msg"), false, "请选择时段", "Choose a slot");
    const body = { category: $("appt-cat").value, slot_start: start };
    const name = $("appt-name").value.trim();
    const id = $("appt-id").value.trim();
    if (id) body.id_number = id;
    if (name && id) body.name = name;
    try {
      const a = await Hall.api("/api/v1/appointments", { method: "POST", body });
      $("appt-name").value = ""; $("appt-id").value = "";
      say($("book-msg"), true, `预约成功，预约码 ${a.code}（${md(a.slot_start)} ${hm(a.slot_start)}）`,
        `Booked: code ${a.code} (${md(a.slot_start)} ${hm(a.slot_start)})`);
      await Promise.all([loadSlots(), refreshAppointments()]);
    } catch (e) { fail($("book-msg"), e); }
  });

  let appointments = [];
  async function refreshAppointments() {
    try { appointments = (await Hall.api("/api/v1/appointments")).appointments; } catch (e) { return; }
    renderAppointments();
  }
  const STATE = { booked: ["已预约", "booked"], checked_in: ["已签到", "checked in"], cancelled: ["已取消", "cancelled"] };
  function renderAppointments() {
    const body = $("appts");
    body.innerHTML = "";
    for (const a of appointments) {
      const tr = Hall.el("tr", `state-${a.state}`);
      tr.dataset.code = a.code;
      tr.appendChild(Hall.el("td", "code", a.code));
      tr.appendChild(Hall.el("td", null, a.category));
      tr.appendChild(Hall.el("td", null, `${md(a.slot_start)} ${hm(a.slot_start)}`));
      tr.appendChild(Hall.el("td", null, a.holder || "—"));
      const st = STATE[a.state] || [a.state, a.state];
      tr.appendChild(Hall.el("td", null, t(st[0], st[1])));
      const td = Hall.el("td");
      if (a.state === "booked") {
        const move = Hall.el("button", "small", t("改约", "Move"));
        move.title = t("改到左侧所选时段", "Move to the slot chosen above");
        move.addEventListener("click", () => reschedule(a));
        const cancel = Hall.el("button", "small danger", t("取消", "Cancel"));
        cancel.addEventListener("click", () => cancelAppointment(a));
        td.append(move, " ", cancel);
      }
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }
  async function reschedule(a) {
    pending($("book-msg"));
    const start = $("slot").value;
    if (!start || $("appt-cat").value !== a.category) {
      return say($("book-msg"), false, `请先在上方选择${a.category}类业务的新时段`, `First choose a new ${a.category} slot above`);
    }
    try {
      const moved = await Hall.api(`/api/v1/appointments/${a.code}/reschedule`, { method: "POST", body: { slot_start: start } });
      say($("book-msg"), true, `已改约 ${a.code} 到 ${md(moved.slot_start)} ${hm(moved.slot_start)}`,
        `Moved ${a.code} to ${md(moved.slot_start)} ${hm(moved.slot_start)}`);
      await Promise.all([loadSlots(), refreshAppointments()]);
    } catch (e) { fail($("book-msg"), e); }
  }
  async function cancelAppointment(a) {
    pending($("book-msg"));
    try {
      await Hall.api(`/api/v1/appointments/${a.code}/cancel`, { method: "POST" });
      say($("book-msg"), true, `已取消预约 ${a.code}`, `Cancelled appointment ${a.code}`);
      await Promise.all([loadSlots(), refreshAppointments()]);
    } catch (e) { fail($("book-msg"), e); }
  }

  // ---- tickets: reprint, cancel ----------------------------------------------------------------
  let tickets = [];
  async function refreshTickets() {
    try { tickets = await Hall.api("/api/v1/tickets?limit=1000"); } catch (e) { return; }
    renderUnprinted();
  }
  function findTicket(number) {
    const n = number.trim().toUpperCase();
    const all = tickets.filter((x) => x.number === n);
    return all.length ? all[all.length - 1] : null;
  }
  function renderUnprinted() {
    const body = $("unprinted");
    body.innerHTML = "";
    for (const tk of tickets.filter((x) => x.print_failed && x.state === "waiting")) {
      const tr = Hall.el("tr");
      tr.appendChild(Hall.el("td", null, tk.number));
      tr.appendChild(Hall.el("td", null, t("未打印", "not printed")));
      const td = Hall.el("td");
      const b = Hall.el("button", "small", t("补打", "Reprint"));
      b.addEventListener("click", () => { $("ticket-no").value = tk.number; reprint(tk.kiosk); });
      td.appendChild(b);
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }
  async function withTicket(fn) {
    pending($("ticket-msg"));
    await refreshTickets();
    const tk = findTicket($("ticket-no").value);
    if (!tk) return say($("ticket-msg"), false, "今天没有这个号码", "No such ticket today");
    try { await fn(tk); } catch (e) { fail($("ticket-msg"), e); }
    refreshTickets();
  }
  function reprint(kiosk) {
    return withTicket(async (tk) => {
      const at = kiosk || $("kiosk").value;
      await Hall.api(`/api/v1/tickets/${encodeURIComponent(tk.id)}/reprint`, { method: "POST", body: at ? { kiosk: at } : {} });
      const desk = at === cfg.guide_kiosk;
      say($("ticket-msg"), true, `${tk.number} 已送去打印（${desk ? "导办台打印机" : `取号机 ${at}`}）`,
        `${tk.number} sent to print (${desk ? "desk printer" : `kiosk ${at}`})`);
    });
  }
  $("reprint-btn").addEventListener("click", () => reprint(null));
  $("cancel-btn").addEventListener("click", () => withTicket(async (tk) => {
    await Hall.api(`/api/v1/tickets/${encodeURIComponent(tk.id)}/cancel`, { method: "POST" });
    say($("ticket-msg"), true, `${tk.number} 已取消`, `${tk.number} cancelled`);
  }));

  // ---- queues, devices, alerts ---------------------------------------------------------------
  const queues = {};
  function renderQueues() {
    const box = $("queues");
    box.innerHTML = "";
    for (const c of cfg.categories) {
      const q = queues[c.prefix] || { waiting: 0, open: true };
      const d = Hall.el("div", `queue${q.open ? "" : " closed"}`);
      d.dataset.category = c.prefix;
      const nm = Hall.el("span", "nm", `${c.prefix} ${catName(c.prefix)}${q.open ? "" : t("（未开放）", " (closed)")}`);
      nm.title = nm.textContent;
      d.appendChild(nm);
      const b = Hall.el("b", null, String(q.waiting));
      b.title = t("等候人数", "waiting");
      d.appendChild(b);
      box.appendChild(d);
    }
  }
  const devices = {};
  let alerts = [];
  const DEVICE_STATE = { error: ["故障", "fault"], offline: ["离线", "offline"], ok: ["正常", "ok"] };
  function renderFaults() {
    const ul = $("faults");
    ul.innerHTML = "";
    // A visitor asking for help at a kiosk comes first, before device faults and other alerts.
    const shown = alerts.slice(0, 8).sort((x, y) => (y.alert === "help_requested") - (x.alert === "help_requested"));
    // The hall's unresolved alerts (stored, one per problem), newest first; the desk acknowledges
    // and resolves them under the name in "处理人".
    const alertItem = (a) => {
      const base = a.alert === "help_requested" ? "help" : a.severity === "error" ? "error" : "warning";
      const li = Hall.el("li", a.level > 0 ? `${base} escalated` : base);
      li.dataset.alert = a.id;
      li.dataset.kind = a.alert;
      li.append(Hall.el("span", "m", `${hm(a.opened_at || a.at)} ${t(a.message, a.message_en || a.alert.replace(/_/g, " "))}`));
      const st = a.state === "acknowledged" ? t("已确认", "acknowledged") : t("待处理", "open");
      li.append(Hall.el("span", "st", a.level > 0 ? `${st} · ${t(`升级${a.level}级`, `level ${a.level}`)}` : st));
      const act = (name, zh, en) => { const b = Hall.el("button", null, t(zh, en)); b.type = "button"; b.dataset.alertAct = name; return b; };
      if (a.state === "open") li.append(act("ack", "确认", "Ack"));
      li.append(act("resolve", "处理完毕", "Resolve"));
      return li;
    };
    for (const a of shown.filter((x) => x.alert === "help_requested")) ul.appendChild(alertItem(a));
    const bad = Object.values(devices).filter((d) => d.state !== "ok");
    for (const d of bad) {
      const st = DEVICE_STATE[d.state] || [d.state, d.state];
      const li = Hall.el("li", d.state === "error" ? "error" : "warning", `${d.device} · ${t(st[0], st[1])}${d.detail ? ` · ${t(d.detail_zh || d.detail, d.detail)}` : ""}`);
      ul.appendChild(li);
    }
    for (const a of shown.filter((x) => x.alert !== "help_requested")) ul.appendChild(alertItem(a));
    if (!ul.children.length) ul.appendChild(Hall.el("li", null, t("设备正常，暂无告警", "All devices fine, no alerts")));
  }
  async function loadAlerts() {
    try {
      alerts = (await Hall.api("/api/v1/alerts/query", { method: "POST", body: { state: ["open", "acknowledged"], limit: 50 } })).alerts;
    } catch (e) { console.warn("alerts", e); }
    renderFaults();
  }
  $("alert-by").value = localStorage.getItem("hallctl.guide.by") || "";
  $("faults").addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-alert-act]");
    if (!b) return;
    const by = $("alert-by").value.trim();
    if (!by) { $("alert-msg").textContent = t("请先填写处理人姓名", "Enter who handles it first"); $("alert-by").focus(); return; }
    localStorage.setItem("hallctl.guide.by", by);
    try {
      await Hall.api(`/api/v1/alerts/${b.closest("li").dataset.alert}/${b.dataset.alertAct}`, { method: "POST", body: { by } });
      $("alert-msg").textContent = "";
    } catch (err) { $("alert-msg").textContent = err.text ? err.text() : String(err); }
    loadAlerts();
  });

  function renderAll() {
    fillCategories();
    fillReasons();
    renderSlots();
    renderAppointments();
    renderUnprinted();
    renderQueues();
    renderFaults();
  }

  // Registered last: a language change redraws everything above (all of it is defined by now).
  Hall.onLang(() => {
    document.querySelectorAll(".msg[data-zh-text]").forEach((el) => {
      el.textContent = t(el.dataset.zhText, el.dataset.enText);
    });
    renderAll();
  });

  $("appt-day").value = todayIso();
  renderAll();
  await loadAlerts();
  try { for (const d of await Hall.api("/api/v1/devices")) devices[d.device] = d; } catch (e) { /* shown by stream */ }
  await Promise.all([loadSlots(), refreshAppointments(), refreshTickets()]);
  renderAll();

  Hall.stream({
    statusEl: $("conn"),
    onEvent(name, data) {
      if (name === "queue_state") { queues[data.category] = data; renderQueues(); }
      else if (name === "device_state") { devices[data.device] = data; renderFaults(); }
      else if (name === "alert" || name === "alert_changed" || name === "alert_escalated") loadAlerts();
    },
  });
})();
