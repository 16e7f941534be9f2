/* Admin console (管理后台): people log in as themselves (session cookie, CSRF header), then edit
 * windows, categories and hours, staff, tokens, calendar overrides and accounts, and read the audit log.
 *
 * Not a token page: it does not use Hall.boot. Every change is validated by the daemon with
 * the config file's own model and applied live; its answer (problem+json, detail / detail_en)
 * is shown as it came. Chinese first; the language switch is the same as on the other pages
 * (localStorage "hallctl.lang", data-en attributes).
 */
"use strict";

(() => {
  let lang = localStorage.getItem("hallctl.lang") || "zh";
  const t = (zh, en) => (lang === "en" && en ? en : zh);
  const $ = (id) => document.getElementById(id);
  const API = "/api/v1/admin";
  let me = null;
  let cfg = null;
  let challenge = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function applyLang() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    document.querySelectorAll("[data-en]").forEach((e) => {
      if (e.dataset.zh === undefined) e.dataset.zh = e.textContent;
      e.textContent = lang === "en" ? e.dataset.en : e.dataset.zh;
    });
    document.querySelectorAll(".langbtn").forEach((b) => { b.textContent = lang === "en" ? "中文" : "English"; });
    $("title").textContent = t("管理后台", "Admin console");
    drawWho();
    if (me) route();
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || "http_error";
      this.zh = (body && body.detail) || `操作未成功（${this.code}）`;
      this.en = (body && (body.detail_en || body.detail)) || `The action failed (${this.code})`;
    }
    text() { return t(this.zh, this.en); }
  }

  function csrf() {
    const m = document.cookie.match(/(?:^|; )hallctl_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function api(path, opts = {}) {
    const method = opts.method || "GET";
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf();
    let body;
    if (opts.body !== undefined) { body = JSON.stringify(opts.body); headers["Content-Type"] = "application/json"; }
    let res;
    try {
      res = await fetch(API + path, { method, headers, body, credentials: "same-origin", cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, { code: "network", detail: "网络连接中断，请稍后重试", detail_en: "network connection lost, please retry" });
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (res.status === 401 && me && !path.startsWith("/login")) { me = null; showLogin(new ApiError(401, data)); }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  function msg(box, ok, text) { box.className = `msg ${ok ? "ok" : "err"}`; box.textContent = text; }

  // ---- login ------------------------------------------------------------------------------
  function drawWho() {
    const roles = { hall_admin: ["大厅管理员", "Hall admin"], supervisor: ["监察员", "Supervisor"], readonly: ["只读", "Read-only"] };
    $("who").textContent = me ? `${me.name} · ${t(...(roles[me.role] || [me.role, me.role]))}` : "";
    $("logout").classList.toggle("hidden", !me);
  }

  function showLogin(err) {
    $("console").classList.add("hidden");
    $("login-view").classList.remove("hidden");
    $("login-form").classList.remove("hidden");
    $("totp-form").classList.add("hidden");
    drawWho();
    if (err) msg($("login-msg"), false, err.text());
    $("name").focus();
  }

  function showConsole() {
    $("login-view").classList.add("hidden");
    $("console").classList.remove("hidden");
    $("login-msg").textContent = "";
    drawWho();
    route();
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("/login", { method: "POST", body: { name: $("name").value.trim(), password: $("password").value } });
      $("password").value = "";
      if (r.totp_required) {
        challenge = r.challenge;
        $("login-form").classList.add("hidden");
        $("totp-form").classList.remove("hidden");
        $("login-msg").textContent = "";
        $("totp").focus();
        return;
      }
      me = r;
      showConsole();
    } catch (e) { msg($("login-msg"), false, e.text()); }
  });

  $("totp-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      me = await api("/login/totp", { method: "POST", body: { challenge, code: $("totp").value.trim() } });
      $("totp").value = "";
      showConsole();
    } catch (e) {
      msg($("login-msg"), false, e.text());
      if (e.code === "login_expired" || e.code === "account_locked") showLogin(e);
    }
  });

  $("logout").addEventListener("click", async () => {
    try { await api("/logout", { method: "POST" }); } catch (e) { /* the session may already be gone */ }
    me = null;
    showLogin();
  });

  // ---- config lists and forms --------------------------------------------------------------
  const devOptions = (kind) => [["", t("（无）", "(none)")], ...cfg.devices.filter((d) => d.kind === kind).map((d) => [d.id, d.id])];
  const DEVICE_KINDS = [
    ["idcard", "身份证阅读器", "ID card reader"], ["printer", "号票打印机", "Ticket printer"], ["led_bus", "LED 屏总线", "LED bus"],
    ["evalpad", "评价器", "Evaluation pad"], ["badge", "工牌读卡器", "Badge reader"], ["modbus_sensor", "温湿度传感器", "Modbus sensor"],
  ];
  const PRINTER_STATUS = [["query", "查询状态（默认）", "query (default)"], ["none", "不查询（不应答的打印机）", "none (never answers)"]];
  const HEALTH = { ok: ["正常", "OK"], degraded: ["降级", "degraded"], offline: ["离线", "offline"], error: ["故障", "error"], unknown: ["未知", "unknown"] };
  const TABLES = {
    window: {
      key: "number", title: ["窗口", "Windows"],
      fields: [
        { k: "number", zh: "窗口号", en: "Number", type: "int", keyOnly: true },
        { k: "name", zh: "名称", en: "Name", type: "text" },
        { k: "name_en", zh: "英文名称", en: "English name", type: "text" },
        { k: "floor", zh: "楼层", en: "Floor", type: "int" },
        { k: "categories", zh: "办理类别", en: "Categories", type: "cats" },
        { k: "led", zh: "LED 屏总线", en: "LED bus", type: "device", kind: "led_bus" },
        { k: "led_address", zh: "LED 地址", en: "LED address", type: "int" },
        { k: "pad", zh: "评价器", en: "Evaluation pad", type: "device", kind: "evalpad" },
        { k: "badge_reader", zh: "工牌读卡器", en: "Badge reader", type: "device", kind: "badge" },
      ],
    },
    category: {
      key: "prefix", title: ["业务类别与时间", "Categories & hours"],
      fields: [
        { k: "prefix", zh: "字头", en: "Prefix", type: "text", keyOnly: true },
        { k: "name", zh: "名称", en: "Name", type: "text" },
        { k: "name_en", zh: "英文名称", en: "English name", type: "text" },
        { k: "hours", zh: "开放时间（每行一段）", en: "Opening hours (one span a line)", type: "lines" },
        { k: "target_wait_minutes", zh: "目标等候（分钟）", en: "Target wait (min)", type: "int" },
        { k: "service_minutes", zh: "办理时限（分钟）", en: "Service limit (min)", type: "int" },
        { k: "open_on_holidays", zh: "节假日开放", en: "Open on holidays", type: "bool" },
        // 进驻部门: the reports sum its categories up per department (issue 15 §5).
        { k: "department", zh: "进驻部门", en: "Department", type: "text" },
        // 办事指南: what the kiosk shows before a ticket; the English list pairs line for line (the config checks it).
        { k: "guide", zh: "办事指南（每行一项）", en: "Service guide (one item a line)", type: "lines", optional: true, list: false },
        { k: "guide_en", zh: "英文办事指南（逐行对应）", en: "Guide in English (line for line)", type: "lines", optional: true, list: false },
      ],
    },
    staff: {
      key: "id", title: ["工作人员", "Staff"],
      fields: [
        { k: "id", zh: "工号", en: "Staff number", type: "text", keyOnly: true },
        { k: "name", zh: "姓名", en: "Name", type: "text" },
        { k: "badge", zh: "工牌 UID", en: "Badge UID", type: "text" },
        { k: "department", zh: "进驻部门", en: "Department", type: "text" },
      ],
    },
    // [[device]]: a changed entry's driver is swapped live by the daemon; "health" is read-only (its state now).
    device: {
      key: "id", title: ["设备", "Devices"],
      fields: [
        { k: "id", zh: "设备编号", en: "Device id", type: "text", keyOnly: true },
        { k: "kind", zh: "类型", en: "Kind", type: "select", keyOnly: true, options: DEVICE_KINDS },
        { k: "port", zh: "端口", en: "Port", type: "text" },
        { k: "baudrate", zh: "波特率", en: "Baud rate", type: "int" },
        { k: "address", zh: "总线地址", en: "Bus address", type: "int" },
        { k: "printer_status", zh: "打印机状态查询", en: "Printer status", type: "select", options: PRINTER_STATUS, printerOnly: true },
        { k: "health", zh: "状态", en: "State", type: "health", readOnly: true },
      ],
    },
    kiosk: {
      key: "id", title: ["自助取号机", "Kiosks"],
      fields: [
        { k: "id", zh: "编号", en: "Kiosk id", type: "text", keyOnly: true },
        { k: "floor", zh: "楼层", en: "Floor", type: "int" },
        { k: "categories", zh: "可取号类别", en: "Categories", type: "cats" },
        { k: "reader", zh: "身份证阅读器", en: "ID card reader", type: "device", kind: "idcard" },
        { k: "printer", zh: "号票打印机", en: "Ticket printer", type: "device", kind: "printer" },
      ],
    },
  };

  function show(f, v, row) {
    if (f.printerOnly && row && row.kind !== "printer") return "—";
    if (f.k === "port" && row && row.simulate && !v) return t("模拟器", "simulator");
    if (v === null || v === undefined || v === "") return "—";
    if (f.type === "bool") return v ? t("是", "yes") : t("否", "no");
    if (f.type === "select") { const o = f.options.find((x) => x[0] === v); return o ? t(o[1], o[2]) : String(v); }
    if (f.type === "health") return el("span", { class: v.state === "ok" ? "ok-badge" : "bad-badge", title: t(v.detail_zh || v.detail || "", v.detail || "") }, t(...(HEALTH[v.state] || [v.state, v.state])));
    if (Array.isArray(v)) return v.join(f.type === "lines" ? "; " : ", ");
    return String(v);
  }

  function input(f, v) {
    if (f.type === "cats") {
      const box = el("div", { class: "cats", "data-field": f.k });
      for (const c of cfg.category) {
        box.append(el("label", {}, el("input", { type: "checkbox", value: c.prefix, checked: (v || []).includes(c.prefix) }),
          `${c.prefix} ${t(c.name, c.name_en || c.name)}`));
      }
      return box;
    }
    if (f.type === "device") {
      const s = el("select", { "data-field": f.k });
      for (const [id, label] of devOptions(f.kind)) s.append(el("option", { value: id, selected: (v || "") === id }, label));
      return s;
    }
    if (f.type === "select") {
      const s = el("select", { "data-field": f.k });
      for (const [id, zh, en] of f.options) s.append(el("option", { value: id, selected: (v || f.options[0][0]) === id }, t(zh, en)));
      return s;
    }
    if (f.type === "lines") return el("textarea", { "data-field": f.k }, (v || []).join("\n"));
    if (f.type === "bool") return el("input", { type: "checkbox", "data-field": f.k, checked: Boolean(v) });
    return el("input", { "data-field": f.k, value: v === null || v === undefined ? "" : String(v), type: f.type === "int" ? "number" : "text" });
  }

  function read(f, form) {
    const e = form.querySelector(`[data-field="${f.k}"]`);
    if (f.type === "cats") return [...e.querySelectorAll("input:checked")].map((i) => i.value);
    if (f.type === "device" || f.type === "select") return e.value || null;
    if (f.type === "lines") {
      const lines = e.value.split("\n").map((s) => s.trim()).filter(Boolean);
      return f.optional && !lines.length ? null : lines; // null removes the key rather than writing []
    }
    if (f.type === "bool") return e.checked;
    if (f.type === "int") return e.value === "" ? null : Number(e.value);
    return e.value.trim() === "" ? null : e.value.trim();
  }

  function editForm(table, row, box) {
    const spec = TABLES[table];
    const form = el("form", { class: "form", id: `edit-${table}` });
    const isNew = row === null;
    const fields = spec.fields.filter((f) => (isNew || !f.keyOnly) && !f.readOnly && !(f.printerOnly && row && row.kind !== "printer"));
    form.append(el("h2", {}, isNew ? t("新增", "Add") : `${t("编辑", "Edit")} ${row[spec.key]}`));
    for (const f of fields) form.append(el("label", {}, el("span", {}, t(f.zh, f.en)), input(f, row ? row[f.k] : undefined)));
    const out = el("div", { class: "msg", role: "status" });
    const save = el("button", { class: "primary", type: "submit" }, t("保存并立即生效", "Save and apply now"));
    const cancel = el("button", { type: "button", onclick: () => form.remove() }, t("取消", "Cancel"));
    form.append(el("div", { class: "row" }, save, cancel), out);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      // Only what changed: the file keeps every other key as written (or absent, at its default).
      const body = {};
      for (const f of fields) {
        const v = read(f, form);
        if (isNew ? v !== null : JSON.stringify(v) !== JSON.stringify(row[f.k] === undefined ? null : row[f.k])) body[f.k] = v;
      }
      if (isNew) body[spec.key] = read(spec.fields.find((f) => f.k === spec.key), form);
      if (!isNew && Object.keys(body).length === 0) { msg(out, true, t("没有修改", "Nothing changed")); return; }
      const key = isNew ? body[spec.key] : row[spec.key];
      if (key === null || key === undefined) { msg(out, false, t("请填写", "Please fill in ") + t(fields[0].zh, fields[0].en)); return; }
      try {
        await api(`/config/${table}/${encodeURIComponent(key)}`, { method: "PUT", body });
        cfg = await api("/config");
        drawTable(table, box, t("已保存，已生效", "Saved and applied"));
      } catch (e) { msg(out, false, e.text()); }
    });
    box.querySelectorAll("form.form").forEach((x) => x.remove());
    box.append(form);
    form.scrollIntoView({ block: "nearest" });
  }

  /** 亮牌上岗: pick a photo, scale it to 240×320 JPEG in the browser, send it (the daemon takes 60 KB at most). */
  function photoButton(id, out) {
    const file = el("input", { type: "file", accept: "image/*", hidden: true, "data-photo": id });
    file.addEventListener("change", async () => {
      const f = file.files[0];
      if (!f) return;
      try {
        const img = await createImageBitmap(f);
        const canvas = document.createElement("canvas");
        canvas.width = 240; canvas.height = 320;
        const scale = Math.max(240 / img.width, 320 / img.height);
        const w = img.width * scale, h = img.height * scale;
        canvas.getContext("2d").drawImage(img, (240 - w) / 2, (320 - h) / 2, w, h);
        const blob = await new Promise((r) => canvas.toBlob(r, "image/jpeg", 0.85));
        const res = await fetch(`${API}/staff/${encodeURIComponent(id)}/photo`, {
          method: "PUT", body: blob, credentials: "same-origin", headers: { "Content-Type": "image/jpeg", "X-CSRF-Token": csrf() },
        });
        const data = await res.json().catch(() => null);
        if (!res.ok) throw new ApiError(res.status, data);
        msg(out, true, t(`已更新 ${id} 的照片`, `Photo of ${id} updated`));
      } catch (e) { msg(out, false, e.text ? e.text() : String(e)); }
    });
    return el("span", {}, file, el("button", { onclick: () => file.click() }, t("上传照片", "Upload photo")));
  }

  function drawTable(table, box, note) {
    const spec = TABLES[table];
    const editable = me.role === "hall_admin";
    box.replaceChildren(el("h2", {}, t(...spec.title)));
    const out = el("div", { class: "msg ok", role: "status" }, note || "");
    const listed = spec.fields.filter((f) => f.list !== false);
    const head = el("tr", {}, ...listed.map((f) => el("th", {}, t(f.zh, f.en))), el("th", {}, ""));
    const body = el("tbody");
    for (const row of cfg[table]) {
      const actions = el("td", {});
      if (editable) {
        actions.append(el("button", { onclick: () => editForm(table, row, box), "data-edit": row[spec.key] }, t("编辑", "Edit")), " ",
          el("button", { class: "danger", onclick: async () => {
            if (!confirm(t(`确定删除 ${row[spec.key]}？`, `Delete ${row[spec.key]}?`))) return;
            try { await api(`/config/${table}/${encodeURIComponent(row[spec.key])}`, { method: "DELETE" }); cfg = await api("/config"); drawTable(table, box, t("已删除", "Deleted")); }
            catch (e) { msg(out, false, e.text()); }
          } }, t("删除", "Delete")));
      }
      if (editable && table === "staff") actions.append(" ", photoButton(row[spec.key], out));
      body.append(el("tr", { "data-key": row[spec.key] }, ...listed.map((f) => el("td", {}, show(f, row[f.k], row))), actions));
    }
    box.append(el("table", {}, el("thead", {}, head), body), out);
    if (editable) box.append(el("div", { class: "row" }, el("button", { class: "primary", onclick: () => editForm(table, null, box) }, t("新增", "Add"))));
  }

  // ---- tokens -----------------------------------------------------------------------------
  const ROLE_NAMES = {
    kiosk: ["取号机", "Kiosk"], window: ["窗口终端", "Window terminal"], pad: ["评价器", "Evaluation pad"],
    display: ["叫号屏/大屏", "Display"], hvac: ["空调接口", "HVAC"], guide: ["导办台", "Guide desk"], admin: ["管理接口", "Admin API"],
  };
  function screenPath(role, n, kiosk) {
    return { window: `/window/${n}`, pad: `/pad/${n}`, display: "/screen", guide: "/guide", kiosk: `/kiosk/${kiosk}` }[role] || "/";
  }

  async function drawTokens(box, shown) {
    const rows = await api("/tokens");
    box.replaceChildren(el("h2", {}, t("令牌与屏幕", "Tokens & screens")));
    const out = el("div", { class: "msg", role: "status" });
    if (me.role === "hall_admin") {
      // Creating comes first: the list grows long (every screen has its token).
      const role = el("select", { id: "tok-role" }, ...Object.keys(ROLE_NAMES).map((k) => el("option", { value: k }, t(...ROLE_NAMES[k]))));
      const target = el("input", { id: "tok-target", placeholder: t("窗口号或取号机编号", "window number or kiosk id") });
      const label = el("input", { id: "tok-label", placeholder: t("备注", "label") });
      const create = el("button", { class: "primary", id: "tok-create", onclick: async () => {
        const r = role.value;
        const body = { role: r, label: label.value.trim(), windows: [], kiosks: [] };
        if (r === "window" || r === "pad") body.windows = [Number(target.value)];
        if (r === "kiosk") body.kiosks = [target.value.trim() || "*"];
        try {
          const made = await api("/tokens", { method: "POST", body });
          const url = `${location.origin}${screenPath(r, target.value.trim(), target.value.trim() || "k1")}?token=${encodeURIComponent(made.token)}`;
          const svg = await fetch(`${API}/qr.svg?data=${encodeURIComponent(url)}`, { credentials: "same-origin" }).then((x) => x.text());
          const qr = el("div", { class: "qr", id: "tok-qr" });
          qr.innerHTML = svg;
          qr.append(el("div", { class: "secret", id: "tok-url" }, url),
            el("div", { class: "msg ok" }, t("令牌只显示这一次：用屏幕的摄像头扫码或复制地址打开。", "The token is shown only this once: scan the code with the screen or copy the address.")));
          await drawTokens(box, qr);
        } catch (e) { msg(out, false, e.text()); }
      } }, t("创建令牌", "Create token"));
      box.append(el("div", { class: "form" }, el("div", { class: "row" }, role, target, label, create)));
      if (shown) box.append(shown);
    }
    const body = el("tbody");
    for (const r of rows) {
      const revoke = r.revoked_at || me.role !== "hall_admin" ? "" : el("button", { class: "danger", onclick: async () => {
        try { await api(`/tokens/${r.id}`, { method: "DELETE" }); drawTokens(box); } catch (e) { msg(out, false, e.text()); }
      } }, t("吊销", "Revoke"));
      body.append(el("tr", { "data-token": r.id }, el("td", {}, String(r.id)), el("td", {}, t(...(ROLE_NAMES[r.role] || [r.role, r.role]))),
        el("td", {}, [...r.windows, ...r.kiosks].join(", ") || "—"), el("td", {}, r.label || "—"),
        el("td", {}, r.revoked_at ? t("已吊销", "revoked") : t("有效", "active")), el("td", {}, revoke)));
    }
    box.append(out, el("table", {}, el("thead", {}, el("tr", {}, ...[["编号", "Id"], ["角色", "Role"], ["窗口/取号机", "Windows/kiosks"], ["备注", "Label"], ["状态", "State"], ["", ""]].map((h) => el("th", {}, t(...h))))), body));
  }

  // ---- calendar ---------------------------------------------------------------------------
  function drawCalendar(box) {
    box.replaceChildren(el("h2", {}, t("节假日调整", "Calendar overrides")));
    const closed = el("input", { id: "closed-days", value: cfg.calendar.closed_days.join(", "), size: 60 });
    const open = el("input", { id: "open-days", value: cfg.calendar.open_days.join(", "), size: 60 });
    const out = el("div", { class: "msg", role: "status" });
    const split = (s) => s.split(/[,，\s]+/).map((x) => x.trim()).filter(Boolean);
    const form = el("form", { class: "form" },
      el("label", {}, el("span", {}, t("闭馆日（YYYY-MM-DD）", "Closed days (YYYY-MM-DD)")), closed),
      el("label", {}, el("span", {}, t("额外开放日", "Extra open days")), open),
      me.role === "hall_admin" ? el("button", { class: "primary", type: "submit" }, t("保存并立即生效", "Save and apply now")) : "",
      out);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("/config/calendar", { method: "PUT", body: { closed_days: split(closed.value), open_days: split(open.value) } });
        cfg = await api("/config");
        msg(out, true, t("已保存，已生效", "Saved and applied"));
      } catch (e) { msg(out, false, e.text()); }
    });
    box.append(form, el("p", { class: "en" }, t("法定节假日和调休由国家日历自动计算，这里只填本大厅自己的调整。", "Statutory holidays come from the national calendar; list only this hall's own changes here.")));
  }

  // ---- accounts ---------------------------------------------------------------------------
  async function drawAccounts(box) {
    const rows = await api("/accounts");
    const roleName = { hall_admin: ["大厅管理员", "Hall admin"], supervisor: ["监察员", "Supervisor"], readonly: ["只读", "Read-only"] };
    box.replaceChildren(el("h2", {}, t("账号与安全", "Accounts & security")));
    const out = el("div", { class: "msg", role: "status" });
    const body = el("tbody");
    for (const a of rows) {
      const locked = a.locked_until && new Date(a.locked_until) > new Date();
      const unlock = locked && me.role === "hall_admin" ? el("button", { onclick: async () => {
        try { await api(`/accounts/${encodeURIComponent(a.name)}/unlock`, { method: "POST" }); drawAccounts(box); } catch (e) { msg(out, false, e.text()); }
      } }, t("解锁", "Unlock")) : "";
      // A hall admin changes another account's role, or disables (enables) it; never their own.
      const mayChange = me.role === "hall_admin" && a.name !== me.name;
      const change = async (fields) => {
        try { await api(`/accounts/${encodeURIComponent(a.name)}`, { method: "PUT", body: fields }); drawAccounts(box); }
        catch (e) { msg(out, false, e.text()); drawAccounts(box); }
      };
      const roleCell = mayChange
        ? el("select", { "data-account-role": a.name, onchange: (e) => change({ role: e.target.value }) },
          ...Object.keys(roleName).map((k) => el("option", { value: k, ...(k === a.role ? { selected: "" } : {}) }, t(...roleName[k]))))
        : t(...(roleName[a.role] || [a.role, a.role]));
      const toggle = mayChange ? el("button", { "data-account-toggle": a.name, onclick: () => change({ disabled: !a.disabled }) },
        a.disabled ? t("启用", "Enable") : t("停用", "Disable")) : "";
      body.append(el("tr", a.disabled ? { class: "disabled" } : {}, el("td", {}, a.name), el("td", {}, roleCell),
        el("td", {}, a.totp_enabled ? t("已启用", "on") : t("未启用", "off")),
        el("td", {}, a.disabled ? t("已停用", "disabled") : locked ? t("已锁定", "locked") : "—"), el("td", {}, unlock, toggle)));
    }
    box.append(el("table", {}, el("thead", {}, el("tr", {}, ...[["账号", "Account"], ["角色", "Role"], ["动态验证码", "TOTP"], ["状态", "Status"], ["", ""]].map((h) => el("th", {}, t(...h))))), body), out);
    // Second factor for oneself.
    const totpBox = el("div", { class: "form" }, el("h2", {}, t("我的动态验证码（双因素认证）", "My one-time codes (second factor)")));
    if (me.totp_enabled) totpBox.append(el("p", { class: "ok-badge" }, t("已启用", "Enabled")));
    else {
      const code = el("input", { id: "totp-code", inputmode: "numeric", maxlength: 8, placeholder: "123456" });
      const qr = el("div", { class: "qr" });
      totpBox.append(el("button", { onclick: async () => {
        try {
          const o = await api("/totp/enroll", { method: "POST" });
          qr.innerHTML = o.qr_svg;
          qr.append(el("div", { class: "secret" }, o.secret));
        } catch (e) { msg(out, false, e.text()); }
      } }, t("开始启用：显示二维码", "Start: show the QR code")), qr,
      el("div", { class: "row" }, code, el("button", { class: "primary", onclick: async () => {
        try { me = await api("/totp/confirm", { method: "POST", body: { code: code.value.trim() } }); drawAccounts(box); } catch (e) { msg(out, false, e.text()); }
      } }, t("确认", "Confirm"))));
    }
    box.append(totpBox);
    if (me.role !== "hall_admin") return;
    const name = el("input", { id: "acc-name", placeholder: t("账号", "account") });
    const pw = el("input", { id: "acc-password", type: "password", autocomplete: "new-password", placeholder: t("密码（至少10位）", "password (10+ characters)") });
    const role = el("select", { id: "acc-role" }, ...Object.keys(roleName).map((k) => el("option", { value: k }, t(...roleName[k]))));
    box.append(el("div", { class: "form" }, el("h2", {}, t("新增账号", "New account")), el("div", { class: "row" }, name, pw, role,
      el("button", { class: "primary", onclick: async () => {
        try { await api("/accounts", { method: "POST", body: { name: name.value.trim(), password: pw.value, role: role.value } }); drawAccounts(box); }
        catch (e) { msg(out, false, e.text()); }
      } }, t("创建", "Create")))));
  }

  // ---- audit ------------------------------------------------------------------------------
  const ACTIONS = {
    login: ["登录", "Login"], "login.failed": ["登录失败", "Login failed"], "login.refused": ["锁定期间登录被拒", "Login refused (locked)"],
    logout: ["退出登录", "Logout"], "account.create": ["新增账号", "Account created"], "account.role": ["修改角色", "Role changed"],
    "account.unlock": ["解除锁定", "Account unlocked"], "account.disable": ["停用账号", "Account disabled"],
    "account.enable": ["启用账号", "Account enabled"], "account.totp": ["启用动态验证码", "TOTP enabled"],
    "token.create": ["创建令牌", "Token created"], "token.revoke": ["吊销令牌", "Token revoked"],
    "alert.ack": ["确认告警", "Alert acknowledged"], "alert.resolve": ["处理告警", "Alert resolved"],
    "case.note": ["差评工单备注", "Case note"], "case.verify": ["核实差评工单", "Case verified"], "case.close": ["办结差评工单", "Case closed"],
    "report.export": ["导出报表", "Report exported"],
    "audit.export": ["导出审计日志", "Audit exported"], "staff.photo": ["更新工作人员照片", "Staff photo updated"], "audit.purge": ["清理过期审计记录", "Old audit rows purged"],
  };
  const TABLE_NAMES = { window: ["窗口", "window"], category: ["业务类别", "category"], staff: ["工作人员", "staff"], calendar: ["日历", "calendar"] };
  const VERBS = { create: ["新增", "created"], update: ["修改", "changed"], delete: ["删除", "deleted"] };
  function actionName(a) {
    if (ACTIONS[a]) return t(...ACTIONS[a]);
    const m = /^config\.(\w+)\.(\w+)$/.exec(a);
    if (m && TABLE_NAMES[m[1]] && VERBS[m[2]]) return t(`${VERBS[m[2]][0]}${TABLE_NAMES[m[1]][0]}`, `${TABLE_NAMES[m[1]][1]} ${VERBS[m[2]][1]}`);
    return a;
  }
  async function drawAudit(box) {
    const rows = await api("/audit?limit=200");
    box.replaceChildren(el("h2", {}, t("审计日志", "Audit log")));
    const state = el("span", { id: "audit-state" });
    box.append(el("div", { class: "row" },
      el("button", { id: "audit-verify", onclick: async () => {
        const v = await api("/audit/verify");
        state.className = v.ok ? "ok-badge" : "bad-badge";
        state.textContent = v.ok ? t(`校验通过：${v.rows} 条记录，哈希链完整`, `Verified: ${v.rows} rows, chain intact`)
          : t(`第 ${v.first_bad} 条记录被篡改`, `Row ${v.first_bad} was tampered with`);
      } }, t("校验哈希链", "Verify the chain")),
      el("a", { href: `${API}/audit/export?format=csv`, download: "" }, el("button", {}, t("导出 CSV", "Export CSV"))),
      el("a", { href: `${API}/audit/export?format=jsonl`, download: "" }, el("button", {}, t("导出 JSONL", "Export JSONL"))),
      state));
    const fmt = (v) => (v === null || v === undefined ? "" : JSON.stringify(v));
    const tz = cfg.timezone || "Asia/Shanghai";
    const body = el("tbody");
    for (const r of rows) {
      body.append(el("tr", { "data-seq": r.seq }, el("td", {}, String(r.seq)),
        el("td", {}, new Date(r.at).toLocaleString("zh-CN", { timeZone: tz, hour12: false })),
        el("td", {}, r.actor), el("td", { title: r.action }, actionName(r.action)), el("td", {}, r.target),
        el("td", { class: "json" }, fmt(r.before)), el("td", { class: "json" }, fmt(r.after))));
    }
    box.append(el("table", {}, el("thead", {}, el("tr", {}, ...[["序号", "#"], ["时间", "When"], ["操作人", "Who"], ["操作", "What"], ["对象", "Target"], ["修改前", "Before"], ["修改后", "After"]].map((h) => el("th", {}, t(...h))))), body));
  }

  // ---- 电子监察: alerts and 好差评 cases (issue 15 §2, §3) ----------------------------------------
  // The person who acts is the logged-in account: the daemon takes the name from the session.
  const mayAct = () => me.role === "hall_admin" || me.role === "supervisor";
  const tz = () => cfg.timezone || "Asia/Shanghai";
  const when = (iso) => (iso ? new Date(iso).toLocaleString("zh-CN", { timeZone: tz(), hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }) : "—");
  const ALERT_STATES = { open: ["待确认", "Open"], acknowledged: ["已确认", "Acknowledged"], resolved: ["已处理", "Resolved"] };
  const SEVERITY = { info: ["提示", "info"], warning: ["警告", "warning"], critical: ["严重", "critical"] };
  const alertFilter = { state: "unresolved", window: "" };

  function select(id, options, value, onchange) {
    const s = el("select", { id, onchange: () => onchange(s.value) });
    for (const [v, zh, en] of options) s.append(el("option", { value: v, selected: v === value }, t(zh, en)));
    return s;
  }

  async function drawAlerts(box, note) {
    const states = { unresolved: ["open", "acknowledged"], open: ["open"], acknowledged: ["acknowledged"], resolved: ["resolved"], all: [] }[alertFilter.state];
    const q = new URLSearchParams();
    for (const s of states) q.append("state", s);
    if (alertFilter.window) q.set("window", alertFilter.window);
    const r = await api(`/alerts?${q}`);
    box.replaceChildren(el("h2", {}, t("电子监察", "Alerts")));
    const out = el("div", { class: "msg ok", role: "status" }, note || "");
    const redraw = () => drawAlerts(box).catch((e) => msg(out, false, e.text()));
    const noteBox = el("input", { id: "alert-note", maxlength: 500, size: 36, placeholder: t("处理说明（可选）", "note (optional)") });
    box.append(el("div", { class: "row" },
      el("span", {}, t("状态", "State")),
      select("alert-state", [["unresolved", "未处理完", "Not resolved"], ["open", "待确认", "Open"], ["acknowledged", "已确认", "Acknowledged"], ["resolved", "已处理", "Resolved"], ["all", "全部", "All"]],
        alertFilter.state, (v) => { alertFilter.state = v; redraw(); }),
      el("span", {}, t("窗口", "Window")),
      select("alert-window", [["", "全部", "All"], ...cfg.window.map((w) => [String(w.number), `${w.number} ${w.name}`, `${w.number} ${w.name_en || w.name}`])],
        alertFilter.window, (v) => { alertFilter.window = v; redraw(); }),
      mayAct() ? noteBox : el("span", { class: "muted" }, t("只读账号：只能查看", "Read-only account: view only")),
      // By hand, not on a timer: a page that polled would keep an idle session open for ever.
      el("button", { id: "alert-refresh", type: "button", onclick: redraw }, t("刷新", "Refresh"))));
    const act = (a, action) => async () => {
      try {
        await api(`/alerts/${a.id}/${action}`, { method: "POST", body: { note: noteBox.value.trim() } });
        noteBox.value = "";
        await drawAlerts(box, action === "ack" ? t(`告警 ${a.id} 已确认`, `Alert ${a.id} acknowledged`) : t(`告警 ${a.id} 已处理`, `Alert ${a.id} resolved`));
      } catch (e) { msg(out, false, e.text()); }
    };
    const body = el("tbody");
    for (const a of r.alerts) {
      const who = [];
      if (a.acked_by) who.push(el("div", {}, `${t("确认", "ack")}: ${a.acked_by}${a.ack_note ? ` · ${a.ack_note}` : ""}`));
      if (a.resolved_by) who.push(el("div", {}, `${t("处理", "resolved")}: ${a.resolved_by}${a.resolve_note ? ` · ${a.resolve_note}` : ""}`));
      const buttons = el("td", { class: "acts" });
      if (mayAct() && a.state === "open") buttons.append(el("button", { "data-act": "ack", onclick: act(a, "ack") }, t("确认", "Acknowledge")), " ");
      if (mayAct() && a.state !== "resolved") buttons.append(el("button", { class: "primary", "data-act": "resolve", onclick: act(a, "resolve") }, t("处理完毕", "Resolve")));
      const level = a.level > 0 ? el("span", { class: "bad-badge" }, t(`升级${a.level}级`, `escalated ${a.level}`)) : "";
      body.append(el("tr", { "data-alert": a.id, "data-state": a.state },
        el("td", {}, String(a.id)), el("td", { class: "nw" }, when(a.opened_at)),
        el("td", {}, t(a.message, a.message_en || a.message)),
        el("td", {}, a.window === null ? "—" : String(a.window)),
        el("td", {}, t(...(SEVERITY[a.severity] || [a.severity, a.severity])), " ", level),
        el("td", { class: `st-${a.state}` }, t(...ALERT_STATES[a.state])),
        el("td", { class: "who" }, ...(who.length ? who : ["—"])), buttons));
    }
    const heads = [["编号", "#"], ["发生时间", "Raised"], ["告警", "Alert"], ["窗口", "Window"], ["级别", "Level"], ["状态", "State"], ["处理人与说明", "Handled by"], ["", ""]];
    box.append(out, el("table", { id: "alert-table" }, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, t(...h))))), body));
    if (!r.alerts.length) box.append(el("p", { class: "muted" }, t("没有符合条件的告警", "No alerts match")));
  }

  const CASE_STATES = { open: ["待核实", "Open"], verified: ["已核实", "Verified"], closed: ["已办结", "Closed"] };
  const caseFilter = { state: "unclosed" };

  async function drawCases(box, note) {
    const q = new URLSearchParams();
    const f = caseFilter.state;
    if (f === "unclosed") { q.append("state", "open"); q.append("state", "verified"); }
    else if (f === "overdue") q.set("overdue", "true");
    else if (f !== "all") q.append("state", f);
    const r = await api(`/cases?${q}`);
    box.replaceChildren(el("h2", {}, t("好差评整改", "Bad-rating cases")));
    const out = el("div", { class: "msg ok", role: "status" }, note || "");
    const noteBox = el("input", { id: "case-note", maxlength: 500, size: 36, placeholder: t("核实整改情况说明", "what was checked and done") });
    box.append(el("div", { class: "row" },
      el("span", {}, t("状态", "State")),
      select("case-state", [["unclosed", "未办结", "Not closed"], ["open", "待核实", "Open"], ["verified", "已核实", "Verified"], ["closed", "已办结", "Closed"], ["overdue", "已超期", "Overdue"], ["all", "全部", "All"]],
        f, (v) => { caseFilter.state = v; drawCases(box).catch((e) => msg(out, false, e.text())); }),
      mayAct() ? noteBox : el("span", { class: "muted" }, t("只读账号：只能查看", "Read-only account: view only")),
      el("button", { id: "case-refresh", type: "button", onclick: () => drawCases(box).catch((e) => msg(out, false, e.text())) }, t("刷新", "Refresh")),
      el("span", { class: "muted" }, t(`今天 ${r.today}`, `today ${r.today}`))));
    const staffName = (id) => { const s = cfg.staff.find((x) => x.id === id); return s ? `${s.name} (${id})` : id || "—"; };
    const act = (k, action) => async () => {
      try {
        await api(`/cases/${k.id}/${action}`, { method: "POST", body: { note: noteBox.value.trim() } });
        noteBox.value = "";
        const done = { note: ["已添加备注", "note added"], verify: ["已核实", "verified"], close: ["已办结", "closed"] }[action];
        await drawCases(box, t(`工单 ${k.id} ${done[0]}`, `Case ${k.id} ${done[1]}`));
      } catch (e) { msg(out, false, e.text()); }
    };
    const body = el("tbody");
    for (const k of r.cases) {
      const notes = k.notes.map((n) => el("div", {}, `${when(n.at)} ${n.by}: ${n.note}`));
      if (k.verified_by) notes.push(el("div", {}, `${t("核实", "verified")}: ${k.verified_by}`));
      if (k.closed_by) notes.push(el("div", {}, `${t("办结", "closed")}: ${k.closed_by} ${when(k.closed_at)}`));
      const buttons = el("td", { class: "acts" });
      if (mayAct() && k.state !== "closed") {
        buttons.append(el("button", { "data-act": "note", onclick: act(k, "note") }, t("备注", "Note")), " ");
        if (k.state === "open") buttons.append(el("button", { "data-act": "verify", onclick: act(k, "verify") }, t("核实", "Verify")), " ");
        buttons.append(el("button", { class: "primary", "data-act": "close", onclick: act(k, "close") }, t("办结", "Close")));
      }
      const reasons = k.reasons.map((x) => t(x, r.reasons_en[x] || x)).join(t("、", ", ")) || "—";
      body.append(el("tr", { "data-case": k.id, "data-state": k.state },
        el("td", {}, String(k.id)), el("td", {}, k.number), el("td", {}, String(k.window)), el("td", {}, staffName(k.staff)),
        el("td", {}, `${k.level}/5`), el("td", {}, reasons), el("td", { class: "nw" }, when(k.opened_at)),
        el("td", { class: "nw" }, k.due_day, k.overdue ? el("div", { class: "bad-badge" }, t("已超期", "overdue")) : ""),
        el("td", { class: `st-${k.state}` }, t(...CASE_STATES[k.state])),
        el("td", { class: "who" }, ...(notes.length ? notes : ["—"])), buttons));
    }
    const heads = [["编号", "#"], ["号票", "Ticket"], ["窗口", "Window"], ["工作人员", "Staff"], ["评价", "Rating"], ["原因", "Reasons"], ["评价时间", "Rated"], ["办理期限", "Due"], ["状态", "State"], ["记录", "Record"], ["", ""]];
    box.append(out, el("table", { id: "case-table" }, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, t(...h))))), body));
    if (!r.cases.length) box.append(el("p", { class: "muted" }, t("没有符合条件的工单", "No cases match")));
  }

  // ---- 统计报表 (issue 15 §5): the daemon's report, the same as /api/v1/reports --------------------------
  const FIGS = [
    ["issued", "取号量", "Issued", "int"], ["served", "办结量", "Served", "int"], ["no_show", "过号未到", "No-show", "int"],
    ["avg_wait_s", "平均等候(分)", "Avg wait (min)", "min"], ["p90_wait_s", "90%等候不超过(分)", "90% waited within (min)", "min"],
    ["avg_service_s", "平均办理(分)", "Avg service (min)", "min"], ["service_level", "等候达标率", "Service level", "ratio"],
    ["satisfaction", "好评率", "Satisfaction", "ratio"], ["bad_ratings", "差评数", "Bad ratings", "int"],
    ["bad_cases", "差评整改工单", "Bad-rating cases", "int"], ["wait_overtime", "等候超时", "Waits over target", "int"],
    ["service_overtime", "办理超时", "Services over limit", "int"],
  ];
  const COLS = ["issued", "served", "no_show", "avg_wait_s", "p90_wait_s", "avg_service_s", "service_level", "satisfaction", "bad_ratings"];
  function figText(kind, v) {
    if (v === null || v === undefined) return "—";
    if (kind === "min") return (v / 60).toFixed(1);
    if (kind === "ratio") return `${(v * 100).toFixed(1)}%`;
    if (kind === "time") return String(v).slice(11, 16);
    return String(v);
  }
  const FIG = Object.fromEntries(FIGS.map((f) => [f[0], f]));
  const figCols = (keys) => keys.map((k) => [k, FIG[k][1], FIG[k][2], FIG[k][3]]);
  const BREAKDOWNS = {
    by_department: [["部门", "Departments"], [["department", "进驻部门", "Department", "text"]], figCols(COLS)],
    by_category: [["业务类别", "Categories"], [["category", "类别", "Category", "text"], ["name", "名称", "Name", "cat"], ["department", "进驻部门", "Department", "text"]], figCols(COLS)],
    by_window: [["窗口", "Windows"], [["window", "窗口", "Window", "int"], ["name", "名称", "Name", "text"]], [...figCols(COLS), ["unstaffed_s", "空岗(分)", "Unstaffed (min)", "min"]]],
    by_staff: [["工作人员", "Staff"], [["name", "姓名", "Name", "text"], ["department", "进驻部门", "Department", "text"]],
      [...figCols(["served", "avg_service_s", "satisfaction", "bad_ratings"]), ["days", "出勤天数", "Days present", "int"], ["signed_in_s", "在岗(分)", "Signed in (min)", "min"], ["late_days", "迟到", "Late", "int"], ["early_days", "早退", "Early leave", "int"]]],
    attendance: [["考勤", "Attendance"], [["day", "日期", "Day", "text"], ["name", "姓名", "Name", "text"], ["department", "进驻部门", "Department", "text"]],
      [["first_in", "首次签到", "First sign-in", "time"], ["last_out", "最后签退", "Last sign-out", "time"], ["signed_in_s", "在岗(分)", "Signed in (min)", "min"], ["late_s", "迟到(分)", "Late (min)", "min"], ["early_s", "早退(分)", "Early (min)", "min"], ["no_sign_out", "未签退", "No sign-out", "bool"]]],
    by_day: [["按日", "By day"], [["day", "日期", "Day", "text"]], figCols(COLS)],
  };
  const reportSel = { kind: "daily", day: "", month: "", table: "by_window", data: null };

  function cellText(kind, v, row) {
    if (kind === "cat") return t(v, row.name_en || v);
    if (kind === "bool") return v ? t("是", "yes") : "";
    if (kind === "text") return v === null || v === undefined || v === "" ? "—" : String(v);
    return figText(kind, v);
  }

  function drawBreakdown(holder, report) {
    const [title, lead, figs] = BREAKDOWNS[reportSel.table];
    const rows = reportSel.table === "by_staff" ? report.by_staff : (report[reportSel.table] || []);
    const cols = [...lead, ...figs];
    const body = el("tbody");
    for (const r of rows) body.append(el("tr", {}, ...cols.map(([k, , , kind]) => el("td", { "data-col": k }, cellText(kind, r[k], r)))));
    holder.replaceChildren(el("table", { id: "report-table", "data-table": reportSel.table, "aria-label": t(...title) },
      el("thead", {}, el("tr", {}, ...cols.map(([, zh, en]) => el("th", {}, t(zh, en))))), body));
    if (!rows.length) holder.append(el("p", { class: "muted" }, t("没有数据", "No data")));
  }

  async function drawReports(box) {
    box.replaceChildren(el("h2", {}, t("统计报表", "Reports")));
    const out = el("div", { class: "msg", role: "status" });
    const kind = select("report-kind", [["daily", "日报", "Daily"], ["monthly", "月报", "Monthly"]], reportSel.kind, (v) => { reportSel.kind = v; reportSel.data = null; drawReports(box); });
    const day = el("input", { id: "report-day", type: "date", value: reportSel.day });
    const month = el("input", { id: "report-month", type: "month", value: reportSel.month });
    const period = reportSel.kind === "daily" ? day : month;
    const query = () => {
      const q = new URLSearchParams();
      if (reportSel.kind === "daily" && reportSel.day) q.set("day", reportSel.day);
      if (reportSel.kind === "monthly" && reportSel.month) q.set("month", reportSel.month);
      return q;
    };
    const fileLink = (fmt) => {
      const q = query();
      q.set("format", fmt);
      q.set("lang", lang === "en" ? "en" : "zh");
      if (fmt === "csv") q.set("table", reportSel.table);
      return `${API}/reports/${reportSel.kind}?${q}`;
    };
    const show = el("button", { class: "primary", id: "report-show", type: "submit" }, t("查看", "Show"));
    const xlsx = el("a", { id: "report-xlsx", href: fileLink("xlsx"), download: "" }, el("button", { type: "button" }, t("下载 XLSX（全部分表）", "Download XLSX (all tables)")));
    const csv = el("a", { id: "report-csv", href: fileLink("csv"), download: "" }, el("button", { type: "button" }, t("下载 CSV（当前分表）", "Download CSV (this table)")));
    const form = el("form", { class: "row" }, kind, period, show, xlsx, csv);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      reportSel.day = day.value;
      reportSel.month = month.value;
      reportSel.data = null;
      await drawReports(box);
    });
    box.append(form, out);
    let report = reportSel.data;
    if (!report) {
      try { report = await api(`/reports/${reportSel.kind}?${query()}`); } catch (e) { msg(out, false, e.text()); return; }
      reportSel.data = report;
    }
    if (reportSel.kind === "daily") day.value = report.from; else month.value = report.period;
    if (reportSel.table === "by_day" && reportSel.kind !== "monthly") reportSel.table = "by_window";
    const tiles = el("div", { class: "tiles", id: "report-figures" }, ...FIGS.map(([k, zh, en, kd]) =>
      el("div", { class: "tile", "data-fig": k }, el("div", { class: "v" }, figText(kd, report.total[k])), el("div", { class: "k" }, t(zh, en)))));
    box.append(el("div", { class: "muted", id: "report-period" }, t(`${report.hall_name} · 统计期 ${report.period}（${report.from} 至 ${report.to}）`, `${report.hall_name_en || report.hall_name} · period ${report.period} (${report.from} to ${report.to})`)), tiles);
    box.append(reportCharts(report));
    const holder = el("div", {});
    const tabs = el("div", { class: "row tabs" });
    for (const key of Object.keys(BREAKDOWNS)) {
      if (key === "by_day" && report.kind !== "monthly") continue;
      tabs.append(el("button", { "data-tab": key, class: key === reportSel.table ? "on" : "", type: "button", onclick: () => {
        reportSel.table = key;
        tabs.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.tab === key));
        csv.href = fileLink("csv");
        drawBreakdown(holder, report);
      } }, t(...BREAKDOWNS[key][0])));
    }
    box.append(tabs, holder);
    drawBreakdown(holder, report);
  }

  // Charts where people would rather look than read (issue 15 §5): waiting time by hour, calls per
  // window, ratings; the vendored ECharts drawn as SVG, as on the board (no CDN).
  const CHART_RATINGS = [["5", "非常满意", "Very satisfied", "#3ddc84"], ["4", "满意", "Satisfied", "#8bd96a"],
    ["3", "基本满意", "Fair", "#ffd34d"], ["2", "不满意", "Dissatisfied", "#ff9f43"],
    ["1", "非常不满意", "Very dissatisfied", "#ff5c5c"], ["unrated", "未评价", "Unrated", "#7f9cc4"]];
  function reportCharts(report) {
    const axis = { axisLine: { lineStyle: { color: "#7f9cc4" } }, axisLabel: { color: "#dfe9f7", fontSize: 12 },
      splitLine: { lineStyle: { color: "rgba(127,156,196,0.2)" } } };
    const panel = (id, zh, en) => el("div", { class: "chart-panel" }, el("div", { class: "k" }, t(zh, en)), el("div", { class: "chart", id }));
    const row = el("div", { class: "charts", id: "report-charts" },
      panel("chart-hour", "分时平均等候（分钟）", "Average wait by hour (min)"),
      panel("chart-calls", "各窗口叫号量", "Calls per window"),
      panel("chart-ratings", "评价分布", "Ratings"));
    requestAnimationFrame(() => {
      if (typeof echarts === "undefined") return;
      const draw = (id, option) => echarts.init(document.getElementById(id), null, { renderer: "svg" }).setOption(Object.assign({ animation: false }, option));
      const hours = report.by_hour || [];
      draw("chart-hour", {
        grid: { left: 36, right: 8, top: 16, bottom: 24 },
        xAxis: Object.assign({ type: "category", data: hours.map((h) => t(`${h.hour}时`, `${h.hour}h`)) }, axis),
        yAxis: Object.assign({ type: "value" }, axis),
        series: [{ type: "bar", itemStyle: { color: "#3ea0ff" }, data: hours.map((h) => (h.avg_wait_s === null ? 0 : Math.round(h.avg_wait_s / 6) / 10)) }],
      });
      const wins = report.by_window || [];
      draw("chart-calls", {
        grid: { left: 36, right: 8, top: 16, bottom: 24 },
        xAxis: Object.assign({ type: "category", data: wins.map((r) => t(`${r.window}号`, `W${r.window}`)) }, axis),
        yAxis: Object.assign({ type: "value", minInterval: 1 }, axis),
        series: [{ type: "bar", itemStyle: { color: "#ffd34d" }, data: wins.map((r) => r.called || 0) }],
      });
      const ratings = report.ratings || {};
      draw("chart-ratings", {
        grid: { left: 96, right: 24, top: 8, bottom: 20 },
        xAxis: Object.assign({ type: "value", minInterval: 1 }, axis),
        yAxis: Object.assign({ type: "category", inverse: true, data: CHART_RATINGS.map((r) => t(r[1], r[2])) }, axis),
        series: [{ type: "bar", barWidth: "60%", data: CHART_RATINGS.map((r) => ({ value: ratings[r[0]] || 0, itemStyle: { color: r[3] } })) }],
      });
    });
    return row;
  }

  // Each navigation draws only if no later one started meanwhile: a slow first view (after the login)
  // must not draw over the view the user went on to.
  let routeSeq = 0;
  async function route() {
    const mine = ++routeSeq;
    const view = $("view");
    const name = (location.hash || "#window").slice(1);
    document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("on", a.getAttribute("href") === `#${name}`));
    try {
      cfg = await api("/config");
      if (mine !== routeSeq) return;
      if (name !== "reports") reportSel.data = null; // kept only while the view is redrawn (a language switch)
      if (TABLES[name]) drawTable(name, view);
      else if (name === "tokens") await drawTokens(view);
      else if (name === "calendar") drawCalendar(view);
      else if (name === "accounts") await drawAccounts(view);
      else if (name === "audit") await drawAudit(view);
      else if (name === "alerts") await drawAlerts(view);
      else if (name === "cases") await drawCases(view);
      else if (name === "reports") await drawReports(view);
    } catch (e) {
      if (me) view.replaceChildren(el("div", { class: "msg err" }, e.text()));
    }
  }

  window.addEventListener("hashchange", () => { if (me) route(); });
  document.querySelectorAll(".langbtn").forEach((b) => b.addEventListener("click", () => {
    lang = lang === "en" ? "zh" : "en";
    localStorage.setItem("hallctl.lang", lang);
    applyLang();
  }));

  (async () => {
    applyLang();
    try { me = await api("/me"); showConsole(); } catch (e) { showLogin(); }
  })();
})();
