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
  const wcfg = cfg.windows.find((w) => w.number === win) || { name: `${win}号窗口`, categories: [] };
  const STATE = {
    closed: ["未签到", "Not signed in"], idle: ["空闲", "Free"], called: ["已叫号，等候到窗", "Called, waiting"],
    serving: ["办理中", "Serving"], paused: ["暂停服务", "Paused"],
  };
  const TICKET = {
    waiting: ["等候", "Waiting"], called: ["已叫号", "Called"], serving: ["办理中", "Serving"], done: ["办结", "Done"],
    no_show: ["未到", "No-show"], transferred: ["已转移", "Transferred"], cancelled: ["已取消", "Cancelled"],
  };
  let state = null;

  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString("zh-CN", { timeZone: cfg.hall.timezone, hour12: false }) : "—");

  function result(el, ok, text) {
    el.className = `result ${ok ? "ok" : "err"}`;
    el.textContent = text;
  }

  function drawState() {
    $("title").textContent = `${wcfg.name} · ${Hall.t("窗口终端", "Window terminal")}`;
    if (!state) return;
    $("cur").textContent = state.ticket || "—";
    const st = STATE[state.state] || [state.state, state.state];
    $("cur-state").textContent = Hall.t(st[0], st[1]);
    $("staff").textContent = state.staff_name ? `${Hall.t("在岗", "On duty")}: ${state.staff_name} (${state.staff})` : Hall.t("未签到", "No staff signed in");
    document.body.dataset.state = state.state;
  }

  async function refresh() {
    try {
      const q = await Hall.api(`/api/v1/windows/${win}/queue`);
      state = q.window;
      drawState();
      $("served").textContent = q.served_today;
      $("waiting-count").textContent = `(${q.waiting.length})`;
      $("queue").replaceChildren(...q.waiting.slice(0, 15).map((t) => {
        const tr = Hall.el("tr");
        const pri = t.priority === "green" ? Hall.t(" 绿色通道", " priority") : t.priority === "appointment" ? Hall.t(" 预约", " appt") : "";
        tr.append(Hall.el("td", null, t.number), Hall.el("td", t.priority === "green" ? "green" : null, t.category + pri), Hall.el("td", null, time(t.issued_at)));
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
        return tr;
      }));
      $("history").replaceChildren(...q.history.slice().reverse().slice(0, 12).map((t) => {
        const tr = Hall.el("tr");
        const st = TICKET[t.state] || [t.state, t.state];
        tr.append(Hall.el("td", null, t.number), Hall.el("td", null, Hall.t(st[0], st[1])), Hall.el("td", null, time(t.called_at)));
        return tr;
      }));
    } catch (e) {
      result($("result"), false, e.text());
    }
  }

  async function reprint(t) {
    try {
      await Hall.api(`/api/v1/tickets/${encodeURIComponent(t.id)}/reprint`, { method: "POST", body: {} });
      result($("result"), true, `${Hall.t("补打", "Reprint")} ${t.number} ✓`);
      soon();
    } catch (e) {
      result($("result"), false, e.text());
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
      refresh();
    } catch (e) {
      result($("result"), false, e.text());
    }
  }

  document.querySelectorAll("[data-act]").forEach((b) => b.addEventListener("click", () => act(b.dataset.act, null, b.textContent)));
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
    act("transfer", body, Hall.t("已转移", "Transferred"));
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
      ...cfg.windows.filter((w) => w.number !== win).map((w) => { const o = Hall.el("option", null, w.name); o.value = String(w.number); return o; }));
    $("transfer-win").options[0].value = "";
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
      result($("qr-result"), false, e.text());
    }
  });

  // The queue and history rows carry translated text (states, the reprint button): redraw them too.
  Hall.onLang(() => { drawState(); drawTransferOptions(); refresh(); });
  drawTransferOptions();
  drawState();
  $("qr").focus();
  Hall.stream({
    statusEl: $("conn"),
    onReady: refresh,
    onEvent(name, d) {
      if (name === "window_state" && d.window === win) { state = d; drawState(); soon(); }
      else if (name === "queue_state" && wcfg.categories.includes(d.category)) soon();
    },
  });
})();
