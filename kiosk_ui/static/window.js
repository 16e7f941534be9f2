/* Window terminal (窗口终端): the clerk's page for one window.
 *
 * Signs in with a window token (asked once, kept in localStorage); staff sign in
 * by badge at the reader or by staff number. Every queue action is one button.
 * The QR field takes a keyboard-wedge scanner (it types the code and Enter):
 * the lookup needs the window role, and this is the only page that shows the
 * applicant's full name and ID number.
 */
"use strict";

(async () => {
  const win = Number(location.pathname.split("/").filter(Boolean)[1]);
  const cfg = await Hall.boot(`window.${win}`);
  const $ = (id) => document.getElementById(id);
  let wcfg = cfg.windows.find((w) => w.number === win) || { number: win, name: `${win}号窗口`, categories: [] };
  const STATE = {
    closed: ["未签到", "Not signed in"], idle: ["空闲", "Free"], called: ["已叫号，等候到窗", "Called, waiting"],
    serving: ["办理中", "Serving"], paused: ["暂停服务", "Paused"],
  };
  const TICKET = {
    waiting: ["等候", "Waiting"], called: ["已叫号", "Called"], serving: ["办理中", "Serving"], done: ["办结", "Done"],
    no_show: ["未到", "No-show"], transferred: ["已转移", "Transferred"], cancelled: ["已取消", "Cancelled"],
  };
  let state = null;
  let photoVersion = 0; // bumped by a config change, so a new photo is fetched
  // Refusals the page may meet, by code: the API's problem+json carries `detail` (zh) and
  // `detail_en`; these are the page's own words for codes whose answer may have no Chinese
  // (validation, network, rate limit), so a Chinese-mode clerk never reads English.
  const STORE = ["系统暂时无法保存，未做任何更改，请重试", "The system could not save; nothing changed, please retry"];
  const ERRORS = {
    invalid_arguments: ["输入有误，请检查后重试", "Invalid input; check and try again"],
    invalid_request: ["输入有误，请检查后重试", "Invalid input; check and try again"],
    malformed_json: ["输入有误，请检查后重试", "Invalid input; check and try again"],
    rate_limited: ["操作太频繁，请稍后再试", "Too many requests; try again shortly"],
    forbidden: ["本终端无权进行此操作", "This terminal may not do that"],
    wrong_window: ["本终端只能操作自己的窗口", "This terminal may act only for its own window"],
    missing_token: ["令牌无效，请重新输入", "Invalid token; enter it again"],
    bad_token: ["令牌无效，请重新输入", "Invalid token; enter it again"],
    store_locked: STORE, store_full: STORE, store_error: STORE, store_closed: STORE,
    internal_error: ["系统内部错误，请重试或联系管理员", "Internal error; retry or call the administrator"],
    network: ["网络连接中断，请稍后重试", "Network connection lost; please retry"],
    http_error: ["操作未成功，请重试", "The action failed; please retry"],
  };

  const CJK = /[\u3400-\u9fff]/;
  /** The refusal's text in the page's language: the API's own words when they are in that language. */
  // Validation answers list pydantic's findings for a developer: the page's own sentence reads better.
  const TECHNICAL = new Set(["invalid_arguments", "invalid_request", "malformed_json"]);
  function errText(e) {
    const mine = ERRORS[e.code];
    if (mine && TECHNICAL.has(e.code)) return Hall.t(mine[0], mine[1]);
    if (Hall.t("zh", "en") === "zh") {
      if (e.detail && CJK.test(e.detail)) return e.detail;
      return mine ? mine[0] : `操作未成功（${e.code}）`;
    }
    if (e.detail_en && e.detail_en !== e.detail) return e.detail_en;
    if (e.detail && !CJK.test(e.detail)) return e.detail;
    return mine ? mine[1] : `The action failed (${e.code})`;
  }
  const mins = (s) => Math.floor(s / 60);
  // Window names are configured in Chinese ("1号窗口 便民"); English mode says "Window 1" unless the
  // layout carries an English name.
  const winName = (w) => Hall.t(w.name || `${w.number}号窗口`, w.name_en || `Window ${w.number}`);

  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString("zh-CN", { timeZone: cfg.hall.timezone, hour12: false }) : "—");

  function result(el, ok, text) {
    el.className = `result ${ok ? "ok" : "err"}`;
    el.textContent = text;
  }

  function drawState() {
    $("title").textContent = `${winName(wcfg)} · ${Hall.t("窗口终端", "Window terminal")}`;
    if (!state) return;
    $("cur").textContent = state.ticket || "—";
    const st = STATE[state.state] || [state.state, state.state];
    $("cur-state").textContent = Hall.t(st[0], st[1]);
    $("staff").textContent = state.staff_name ? `${Hall.t("在岗", "On duty")}: ${state.staff_name} (${state.staff})` : Hall.t("未签到", "No staff signed in");
    // 亮牌上岗: the signed-in clerk's photo (from the admin console), when there is one.
    const photo = $("staff-photo");
    const src = state.staff ? `/api/v1/staff/${encodeURIComponent(state.staff)}/photo?token=${encodeURIComponent(Hall.token)}&v=${photoVersion}` : "";
    if (!src) photo.hidden = true;
    else if (photo.dataset.src !== src) {
      photo.dataset.src = src;
      photo.onload = () => { photo.hidden = false; };
      photo.onerror = () => { photo.hidden = true; };
      photo.src = src;
    }
    document.body.dataset.state = state.state;
    $("signin-needed").hidden = Boolean(state.staff);
  }

  /** The current visitor's clocks against the category's limits; past the limit they turn red. */
  function drawClocks(cur) {
    const box = $("clocks");
    box.replaceChildren();
    if (!cur) return;
    if (cur.wait_s !== null && cur.wait_s !== undefined) {
      const w = Hall.el("span", cur.wait_over ? "over" : null,
        Hall.t(`等候 ${mins(cur.wait_s)} 分钟（目标 ${mins(cur.target_wait_s)}）`, `Waited ${mins(cur.wait_s)} min (target ${mins(cur.target_wait_s)})`));
      w.id = "clock-wait";
      box.append(w);
    }
    if (cur.service_s !== null && cur.service_s !== undefined) {
      const v = Hall.el("span", cur.service_over ? "over" : null,
        Hall.t(`办理 ${mins(cur.service_s)} 分钟（时限 ${mins(cur.service_limit_s)}）`, `Service ${mins(cur.service_s)} min (limit ${mins(cur.service_limit_s)})`));
      v.id = "clock-service";
      box.append(v);
    }
  }

  let pendingChoice = null;
  function showChoices(e) {
    pendingChoice = e;
    $("choices-text").textContent = errText(e);
    $("choices").hidden = false;
  }
  function hideChoices() { pendingChoice = null; $("choices").hidden = true; }

  /** Today's own figures (GET /stats, this window's line): served, average service, ratings. */
  async function figures() {
    try {
      const day = await Hall.api("/api/v1/stats");
      const f = (day.by_window || {})[String(win)] || {};
      $("f-avg").textContent = f.avg_service_s === null || f.avg_service_s === undefined ? "—" : Hall.t(`${(f.avg_service_s / 60).toFixed(1)}分`, `${(f.avg_service_s / 60).toFixed(1)} min`);
      $("f-rated").textContent = String(f.evaluations || 0);
      $("f-sat").textContent = f.satisfaction === null || f.satisfaction === undefined ? "—" : `${Math.round(f.satisfaction * 100)}%`;
      document.body.dataset.figures = "1";
    } catch (e) {
      console.warn("figures", e);
    }
  }

  async function refresh() {
    try {
      const q = await Hall.api(`/api/v1/windows/${win}/queue`);
      state = q.window;
      drawState();
      drawClocks(q.current);
      if (pendingChoice && !(q.current && q.current.state === "called")) hideChoices();
      $("served").textContent = q.served_today;
      $("waiting-count").textContent = `(${q.waiting.length})`;
      const rows = [];
      q.waiting.slice(0, 15).forEach((t) => {
        const tr = Hall.el("tr");
        rows.push(tr);
        tr.dataset.number = t.number;
        const pri = t.priority === "green" ? Hall.t(" 绿色通道", " priority") : t.priority === "appointment" ? Hall.t(" 预约", " appt") : "";
        const from = t.from_window ? Hall.t(` ← ${t.from_window}号窗口转来`, ` ← from window ${t.from_window}`) : "";
        tr.append(Hall.el("td", null, t.number), Hall.el("td", t.priority === "green" ? "green" : null, t.category + pri + from),
          Hall.el("td", null, t.wait_over ? `${time(t.issued_at)} · ${Hall.t(`已等${mins(t.wait_s)}分`, `${mins(t.wait_s)} min`)}` : time(t.issued_at)));
        if (t.wait_over) { tr.classList.add("wait-over"); tr.dataset.waitOver = "true"; }
        if (t.from_window) tr.dataset.fromWindow = String(t.from_window);
        if (t.transfer_note) {
          // The sending clerk's note: what is done, what is missing.
          tr.classList.add("transferred-in");
          const note = Hall.el("tr", "note");
          const td = Hall.el("td", null, `${Hall.t("备注：", "Note: ")}${t.transfer_note}`);
          td.colSpan = 4;
          note.append(td);
          rows.push(note);
        }
        if (t.print_failed) {
          // The slip never came out: the visitor only has the number the kiosk showed.
          tr.classList.add("print-failed");
          tr.dataset.printFailed = "true";
          const btn = Hall.el("button", "reprint", Hall.t("未打印 · 补打", "Not printed · Reprint"));
          btn.type = "button";
          btn.addEventListener("click", () => reprint(t));
          const td = Hall.el("td");
          td.append(btn);
          tr.append(td);
        }
      });
      $("queue").replaceChildren(...rows);
      $("history").replaceChildren(...q.history.slice().reverse().slice(0, 12).map((t) => {
        const tr = Hall.el("tr");
        const st = TICKET[t.state] || [t.state, t.state];
        tr.append(Hall.el("td", null, t.number), Hall.el("td", null, Hall.t(st[0], st[1])), Hall.el("td", null, time(t.called_at)));
        return tr;
      }));
    } catch (e) {
      result($("result"), false, errText(e));
    }
  }

  async function reprint(t) {
    try {
      await Hall.api(`/api/v1/tickets/${encodeURIComponent(t.id)}/reprint`, { method: "POST", body: {} });
      result($("result"), true, `${Hall.t("补打", "Reprint")} ${t.number} ✓`);
      soon();
    } catch (e) {
      result($("result"), false, errText(e));
    }
  }

  let refreshTimer = null;
  const soon = () => { clearTimeout(refreshTimer); refreshTimer = setTimeout(refresh, 150); };

  async function act(path, body, label) {
    try {
      const out = await Hall.api(`/api/v1/windows/${win}/${path}`, { method: "POST", body: body || {} });
      const t = out && out.ticket;
      if (path === "call-next" && out && out.ticket === null) result($("result"), true, Hall.t("没有等候的号码", "Nobody is waiting"));
      else result($("result"), true, `${label}${t ? ` ${t.number}` : ""} ✓`);
      if (path !== "call-next" && path !== "call") hideChoices();
      refresh();
      return true;
    } catch (e) {
      if (e.code === "current_not_started") {
        // The called visitor never came to the window: the clerk says what happened.
        showChoices(e);
        result($("result"), false, "");
      } else {
        result($("result"), false, errText(e));
      }
      return false;
    }
  }

  document.querySelectorAll("[data-act]").forEach((b) => b.addEventListener("click", () => act(b.dataset.act, null, b.textContent)));
  document.querySelectorAll("[data-choice]").forEach((b) => b.addEventListener("click", async () => {
    const choice = b.dataset.choice;
    hideChoices();
    if (choice === "recall") { await act("recall", null, b.textContent); return; }
    if (await act(choice, null, b.textContent)) await act("call-next", null, Hall.t("叫下一位", "Call next"));
  }));
  $("call-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const n = $("call-number").value.trim().toUpperCase();
    if (n) act("call", { number: n }, Hall.t("叫号", "Called"));
  });
  $("transfer-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = {};
    if ($("transfer-cat").value) body.to_category = $("transfer-cat").value;
    if ($("transfer-win").value) body.to_window = Number($("transfer-win").value);
    const note = $("transfer-note").value.trim();
    if (note) body.note = note;
    act("transfer", body, Hall.t("已转移", "Transferred")).then((ok) => { if (ok) $("transfer-note").value = ""; });
  });
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const s = $("staff-id").value.trim();
    if (s) act("sign-in", { staff: s }, Hall.t("签到", "Signed in"));
  });

  function drawTransferOptions() {
    $("transfer-cat").replaceChildren(Hall.el("option", null, Hall.t("（类别）", "(category)")),
      ...cfg.categories.map((c) => { const o = Hall.el("option", null, `${c.prefix} ${Hall.t(c.name, c.name_en)}`); o.value = c.prefix; return o; }));
    $("transfer-cat").options[0].value = "";
    $("transfer-win").replaceChildren(Hall.el("option", null, Hall.t("（窗口）", "(window)")),
      ...cfg.windows.filter((w) => w.number !== win).map((w) => { const o = Hall.el("option", null, winName(w)); o.value = String(w.number); return o; }));
    $("transfer-win").options[0].value = "";
  }

  /** The admin console changed the hall's layout: take the new names and categories without a reload. */
  async function reconfigured() {
    try {
      const fresh = await Hall.api("/ui/config.json");
      cfg.categories = fresh.categories;
      cfg.windows = fresh.windows;
      wcfg = fresh.windows.find((w) => w.number === win) || wcfg;
    } catch (e) {
      return; // the stream's next snapshot (reconnect) or the next change tries again
    }
    photoVersion += 1;
    drawTransferOptions();
    drawState();
    soon();
  }

  // Keyboard-wedge scanner: types the code then Enter into the focused field.
  $("qr-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const code = $("qr").value.trim();
    $("qr").value = "";
    if (!code) return;
    const dl = $("holder");
    dl.replaceChildren();
    try {
      const out = await Hall.api(`/api/v1/tickets/by-qr/${encodeURIComponent(code)}`);
      const t = out.ticket;
      const st = TICKET[t.state] || [t.state, t.state];
      result($("qr-result"), true, `${t.number} · ${t.category} · ${Hall.t(st[0], st[1])}`);
      const h = out.holder;
      if (!h) {
        dl.append(Hall.el("dt", null, Hall.t("持票人", "Holder")), Hall.el("dd", null, Hall.t("未刷身份证取号", "No ID card used")));
        return;
      }
      const rows = [
        ["姓名", "Name", h.name], ["身份证号", "ID number", h.id_number], ["性别", "Sex", h.sex],
        ["出生日期", "Born", h.birth], ["民族", "Nation", h.nation], ["住址", "Address", h.address],
        ["签发机关", "Issued by", h.authority], ["有效期至", "Valid to", h.valid_to],
      ];
      for (const [zh, en, v] of rows) {
        if (v === null || v === undefined || v === "") continue;
        dl.append(Hall.el("dt", null, Hall.t(zh, en)), Hall.el("dd", null, String(v)));
      }
      // Personal data does not linger on an unattended terminal.
      setTimeout(() => { dl.replaceChildren(); }, 10 * 60 * 1000);
    } catch (e) {
      result($("qr-result"), false, errText(e));
    }
  });

  // ---- this window's own alerts (电子监察) ------------------------------------------------------
  // Only alerts about this window (the API answers a window token nothing else); the signed-in
  // clerk acknowledges or resolves them by name, with an optional note.
  let myAlerts = [];
  const ALERT_STATE = { open: ["待处理", "Open"], acknowledged: ["已确认", "Acknowledged"] };
  async function loadAlerts() {
    try {
      const out = await Hall.api("/api/v1/alerts/query", { method: "POST", body: { state: ["open", "acknowledged"], window: win } });
      myAlerts = out.alerts.filter((a) => a.window === win);
    } catch (e) {
      console.warn("alerts", e);
    }
    drawAlerts();
  }
  function alertButton(act, zh, en) {
    const b = Hall.el("button", null, Hall.t(zh, en));
    b.type = "button";
    b.dataset.alertAct = act;
    return b;
  }
  function drawAlerts() {
    $("alerts").hidden = !myAlerts.length;
    $("alert-list").replaceChildren(...myAlerts.map((a) => {
      const li = Hall.el("li", a.level > 0 ? "escalated" : a.severity);
      li.dataset.alert = a.id;
      const st = ALERT_STATE[a.state] || [a.state, a.state];
      const level = a.level > 0 ? Hall.t(` · 已升级${a.level}级`, ` · escalated (${a.level})`) : "";
      li.append(Hall.el("span", "m", Hall.t(a.message, a.message_en || a.message)), Hall.el("span", "st", Hall.t(st[0], st[1]) + level));
      if (a.state === "open") li.append(alertButton("ack", "确认", "Acknowledge"));
      li.append(alertButton("resolve", "处理完毕", "Resolve"));
      return li;
    }));
  }
  $("alert-list").addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-alert-act]");
    if (!b) return;
    const by = state && state.staff_name;
    if (!by) {
      $("alert-result").textContent = Hall.t("请先签到：告警由签到的工作人员处理", "Sign in first: the signed-in clerk handles alerts");
      return;
    }
    try {
      const id = b.closest("li").dataset.alert;
      await Hall.api(`/api/v1/alerts/${id}/${b.dataset.alertAct}`, { method: "POST", body: { by, note: $("alert-note").value.trim() } });
      $("alert-note").value = "";
      $("alert-result").textContent = "";
    } catch (err) {
      $("alert-result").textContent = errText(err);
    }
    loadAlerts();
  });

  // The queue and history rows carry translated text (states, the reprint button): redraw them too.
  function drawPlaceholders() {
    document.querySelectorAll("[data-placeholder-en]").forEach((el) => {
      if (el.dataset.placeholderZh === undefined) el.dataset.placeholderZh = el.placeholder;
      el.placeholder = Hall.t(el.dataset.placeholderZh, el.dataset.placeholderEn);
    });
  }
  Hall.onLang(() => { drawState(); drawTransferOptions(); drawPlaceholders(); if (pendingChoice) showChoices(pendingChoice); refresh(); figures(); drawAlerts(); });
  drawTransferOptions();
  drawPlaceholders();
  drawState();
  figures();
  // The clocks move while nothing happens: redraw them now and then.
  setInterval(refresh, 20000);
  $("qr").focus();
  Hall.stream({
    statusEl: $("conn"),
    onReady() { refresh(); loadAlerts(); },
    onEvent(name, d) {
      if (name === "window_state" && d.window === win) { state = d; drawState(); soon(); }
      else if ((name === "alert" || name === "alert_changed" || name === "alert_escalated") && d.window === win) loadAlerts();
      else if ((name === "ticket_finished" || name === "evaluation") && d.window === win) { soon(); figures(); }
      else if (name === "queue_state" && wcfg.categories.includes(d.category)) soon();
      else if (name === "config_changed") reconfigured();
    },
  });
})();
