/* Ticket kiosk (排队取号), portrait touch screen.
 *
 * Start screen: one big button per category with its waiting count and hours
 * (closed ones disabled with the reason), the ID-card prompt and appointment
 * check-in. A swipe on this kiosk's reader arrives as `card_read` (masked name
 * only) with an opaque offer; the visitor then picks a category and the page
 * issues with that offer. Every other screen returns to the start by itself.
 * A printer or ID-card reader in error/offline puts a red banner on every screen;
 * with the reader out the swipe prompt is hidden and the buttons still issue.
 *
 * Tools on every screen (适老化): 办事指南 (what to bring, from `[[category]] guide`),
 * large text (kept while this visitor is here, off again when the kiosk returns to
 * the start by itself or a visit ends with 完成), and 需要帮助, which raises an
 * alert the guide desk sees at once. A QR scanner that types like a keyboard checks
 * a booking in by its QR on any screen.
 *
 * URL parameter: ?idle=N seconds before returning to the start (default 20 on
 * the ticket screen, 45 elsewhere).
 */
"use strict";

(async () => {
  const kioskId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const cfg = await Hall.boot(`kiosk.${kioskId}`);
  const $ = (id) => document.getElementById(id);
  const idleParam = Number(Hall.params.get("idle")) || null;
  let kcfg = cfg.kiosks.find((k) => k.id === kioskId) || { categories: cfg.categories.map((c) => c.prefix) };

  let cats = new Map(); // prefix -> /categories row (live waiting/open from queue_state)
  let printer = null; // device_state of this kiosk's printer
  let reader = null; // device_state of this kiosk's ID-card reader
  let card = null; // pending card_read {offer, holder, categories, at}
  let posting = false;
  let lastMessage = { code: null, at: 0 };
  let idleTimer = null;
  let countdownTimer = null;
  let bigText = false;

  // ------------------------------------------------------------------ views and idle return
  function show(view) {
    document.querySelectorAll(".view").forEach((v) => v.classList.toggle("hidden", v.id !== view));
    document.body.dataset.view = view;
    armIdle(view);
  }

  function armIdle(view) {
    clearTimeout(idleTimer);
    clearInterval(countdownTimer);
    if (view === "v-start") {
      card = null;
      // Large text left on at the start screen goes off once nobody has touched it for a while.
      if (bigText) idleTimer = setTimeout(() => setBig(false), (idleParam || 45) * 1000);
      return;
    }
    const seconds = idleParam || (view === "v-ticket" ? 20 : 45);
    const deadline = Date.now() + seconds * 1000;
    const cd = view === "v-ticket" ? $("countdown") : view === "v-msg" ? $("msg-countdown") : null;
    const tick = () => {
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      if (cd) cd.textContent = Hall.t(`${left} 秒后返回首页`, `Back to start in ${left} s`);
    };
    tick();
    countdownTimer = setInterval(tick, 500);
    idleTimer = setTimeout(() => { setBig(false); home(); }, seconds * 1000);
  }

  function home() {
    card = null;
    $("code").textContent = "";
    drawStart();
    show("v-start");
  }

  function setBig(on) {
    bigText = on;
    document.body.classList.toggle("big", on);
    $("big-btn").setAttribute("aria-pressed", String(on));
    if (on && document.body.dataset.view === "v-start") armIdle("v-start");
  }

  // Any touch keeps the current screen up a little longer (and large text on, at the start screen).
  document.addEventListener("pointerdown", () => {
    const view = document.body.dataset.view;
    if (view && view !== "v-ticket") armIdle(view);
  });
  document.querySelectorAll("[data-home]").forEach((b) => b.addEventListener("click", home));
  // 完成 ends this visitor's visit: the next one starts at normal size.
  document.querySelectorAll("#v-ticket [data-home]").forEach((b) => b.addEventListener("click", () => setBig(false)));
  $("big-btn").addEventListener("click", () => setBig(!bigText));
  $("guide-btn").addEventListener("click", () => { drawGuide(); show("v-guide"); });

  let helpTimer = null;
  $("help-btn").addEventListener("click", async () => {
    const btn = $("help-btn");
    if (btn.disabled) return;
    btn.disabled = true;
    try {
      await Hall.api(`/api/v1/kiosks/${encodeURIComponent(kioskId)}/help`, { method: "POST", body: {} });
      notice("help_sent", "已通知导办台，工作人员马上就到，请稍候", "The guide desk has been told: someone is on the way");
      btn.textContent = Hall.t("已通知工作人员", "Staff notified");
      // One call is enough: the button rests for a minute rather than sending the desk ten alerts.
      clearTimeout(helpTimer);
      helpTimer = setTimeout(() => { btn.disabled = false; btn.textContent = Hall.t("需要帮助", "Need help"); }, 60000);
    } catch (e) {
      btn.disabled = false;
      message(e.code, e.detail, e.detail_en);
    }
  });

  // A QR scanner is a keyboard: characters then Enter, faster than anyone types. A booking's QR
  // checks in on any screen; anything else is ignored (the on-screen keypad is for the code).
  let scanned = "";
  let scannedAt = 0;
  document.addEventListener("keydown", (ev) => {
    const now = Date.now();
    if (now - scannedAt > 300) scanned = "";
    scannedAt = now;
    if (ev.key === "Enter") {
      const qr = scanned.trim();
      scanned = "";
      if (qr.length >= 8) {
        ev.preventDefault(); // the scanner's Enter must not also press the button last touched
        checkInQr(qr);
      }
    } else if (ev.key.length === 1 && scanned.length < 512) {
      scanned += ev.key;
    }
  });
  // ------------------------------------------------------------------ drawing
  function catButton(prefix, onPick) {
    const c = cats.get(prefix) || cfg.categories.find((x) => x.prefix === prefix);
    const btn = Hall.el("button", "catbtn");
    btn.dataset.category = prefix;
    const mid = Hall.el("div");
    mid.append(Hall.el("div", "n", Hall.t(c.name, c.name_en)),
      Hall.el("div", "h", (c.hours || []).map(Hall.hours).join("，")));
    const open = c.open !== false;
    if (!open) {
      btn.disabled = true;
      mid.append(Hall.el("div", "reason", Hall.t("不在办理时间，暂停取号", "Closed now: outside opening hours")));
    }
    const w = Hall.el("div", "w");
    const b = Hall.el("b", null, c.waiting === undefined ? "—" : String(c.waiting));
    w.append(Hall.el("span", null, Hall.t("等候人数", "Waiting")), b);
    btn.append(Hall.el("div", "p", prefix), mid, w);
    btn.addEventListener("click", () => onPick(prefix));
    return btn;
  }

  function drawStart() {
    $("hall").textContent = Hall.t(cfg.hall.name, cfg.hall.name_en || cfg.hall.name);
    $("cats").replaceChildren(...kcfg.categories.map((p) => catButton(p, (pick) => issue(pick, null))));
    if (card) {
      const offered = card.categories.length ? card.categories : kcfg.categories;
      $("card-cats").replaceChildren(...offered.map((p) => catButton(p, (pick) => issue(pick, card && card.offer))));
      $("greet").textContent = Hall.t(`${card.holder}，您好`, `Hello, ${card.holder}`);
      if (card.elderly) $("greet").append(Hall.el("span", "green", Hall.t("绿色通道", "Priority")));
    }
  }

  function drawPrinter() {
    const banner = $("printer-banner");
    const bad = printer && (printer.state === "error" || printer.state === "offline");
    banner.classList.toggle("hidden", !bad);
    if (!bad) return;
    banner.classList.add("bad");
    banner.textContent = printer.detail === "paper_out"
      ? Hall.t("打印机缺纸：号码只显示在屏幕上，请记住您的号码", "Printer out of paper: please note your number on screen")
      : Hall.t("打印机暂停服务：请记住屏幕上的号码", "Printer unavailable: please note your number on screen");
  }

  function drawReader() {
    const banner = $("reader-banner");
    const bad = !!reader && (reader.state === "error" || reader.state === "offline");
    banner.classList.toggle("hidden", !bad);
    // Without a reader the only ways in are the buttons and the guide desk: don't invite a swipe.
    document.querySelector("#v-start .swipe").classList.toggle("hidden", bad);
    if (!bad) { banner.replaceChildren(); return; }
    // Chinese first, English below, whatever the language button says: a fault notice is for everyone.
    banner.replaceChildren(
      document.createTextNode("身份证阅读器暂停使用，请点击业务按钮取号或到导办台办理"),
      Hall.el("span", "en", "The ID card reader is out of service: tap a service to take a number, or see the guide desk"),
    );
  }

  /** A refusal or a fault, in the page's language (the daemon sends every one in Chinese and English). */
  function message(code, zh, en, ok = false) {
    lastMessage = { code, at: Date.now() };
    const box = $("msg");
    box.dataset.code = code || "";
    box.classList.toggle("ok", ok);
    box.replaceChildren(document.createTextNode(Hall.t(zh, en)));
    show("v-msg");
  }
  function notice(code, zh, en) { message(code, zh, en, true); }

  function drawGuide() {
    const list = kcfg.categories.map((p) => cfg.categories.find((x) => x.prefix === p)).filter(Boolean);
    $("guidelist").replaceChildren(...list.map((c) => {
      const sec = Hall.el("section");
      sec.dataset.category = c.prefix;
      const h = Hall.el("h3");
      h.append(Hall.el("span", "px", c.prefix), document.createTextNode(Hall.t(c.name, c.name_en)));
      sec.append(h);
      const items = Hall.lang === "en" && c.guide_en && c.guide_en.length ? c.guide_en : c.guide || [];
      if (items.length) {
        const ul = Hall.el("ul");
        ul.append(...items.map((x) => Hall.el("li", null, x)));
        sec.append(ul);
      } else {
        sec.append(Hall.el("div", "none", Hall.t("请咨询导办台", "Please ask at the guide desk")));
      }
      return sec;
    }));
  }

  let printedNumber = null;

  function showPrinted(number) {
    // The demo's printer is a simulator that renders the real ESC/POS bytes: show exactly what it printed.
    if (!cfg.demo || !kcfg.printer) return;
    const img = Hall.el("img", "printed");
    img.alt = Hall.t("模拟打印机输出的号票", "ticket as printed by the simulated printer");
    img.src = `/api/v1/sim/printers/${encodeURIComponent(kcfg.printer)}/tickets/-1.png?n=${encodeURIComponent(number)}&token=${encodeURIComponent(Hall.token)}`;
    $("slip").replaceChildren(img, Hall.el("div", "demo", "演示：模拟打印机输出的号票 · Demo: as printed by the simulated printer"));
  }

  function showTicket(t) {
    $("t-num").textContent = t.number;
    const c = cfg.categories.find((x) => x.prefix === t.category);
    $("t-cat").textContent = c ? Hall.t(c.name, c.name_en) : t.category;
    const ahead = t.waiting_ahead ?? null;
    $("t-ahead").innerHTML = "";
    if (ahead !== null) {
      $("t-ahead").append(Hall.t("前面还有 ", "Ahead of you: "), Hall.el("b", null, String(ahead)));
      if (Hall.lang !== "en") $("t-ahead").append(" 人");
    }
    $("t-eta").innerHTML = "";
    if (ahead === 0) {
      // Nobody ahead: an estimate of "about 5 minutes" would be the category's average, not this visit.
      $("t-eta").append(Hall.el("b", null, Hall.t("无需等待", "No wait")), Hall.t("，请留意叫号", ": watch for your number"));
    } else if (t.estimated_wait_s !== undefined && t.estimated_wait_s !== null) {
      $("t-eta").append(Hall.t("预计等候约 ", "Estimated wait: about "), Hall.el("b", null, Hall.minutes(t.estimated_wait_s)), Hall.t(" 分钟", " min"));
    }
    const paperOut = printer && (printer.state === "error" || printer.state === "offline");
    $("t-note").textContent = paperOut
      ? Hall.t("打印机暂时无法出票，请记住您的号码", "The printer cannot print now: please remember your number")
      : Hall.t("请取走号票，留意叫号屏和语音提示", "Please take your ticket and wait for your number to be called");
    const slip = $("slip");
    slip.classList.toggle("hidden", !cfg.demo || paperOut);
    if (cfg.demo && !paperOut) {
      // The demo has no paper: show what the simulated printer prints (masked data only).
      slip.replaceChildren(
        Hall.el("div", null, cfg.hall.name),
        Hall.el("div", "sn", t.number),
        Hall.el("div", null, c ? c.name : t.category),
        Hall.el("div", null, `前面等候 ${ahead ?? "—"} 人  ${new Date(t.issued_at).toLocaleString("zh-CN", { timeZone: cfg.hall.timezone, hour12: false })}`),
      );
      if (t.qr) {
        const img = Hall.el("img");
        img.alt = "QR";
        img.src = `/ui/qr.svg?data=${encodeURIComponent(t.qr)}&token=${encodeURIComponent(Hall.token)}`;
        slip.append(img);
      }
      slip.append(Hall.el("div", "demo", "演示：模拟打印的号票 · Demo: simulated printed ticket"));
      if (printedNumber === t.number) showPrinted(t.number);
    }
    show("v-ticket");
  }

  // ------------------------------------------------------------------ actions
  async function issue(category, offer) {
    if (posting) return;
    posting = true;
    try {
      const body = offer ? { offer, category } : { category, kiosk: kioskId };
      // A kiosk retry must never print twice: one key per press.
      const headers = offer ? {} : { "Idempotency-Key": `${kioskId}-${Date.now()}-${Math.random().toString(36).slice(2)}` };
      const t = await Hall.api("/api/v1/tickets", { method: "POST", body, headers });
      card = null;
      showTicket(t);
    } catch (e) {
      message(e.code, e.detail, e.detail_en);
    } finally {
      posting = false;
    }
  }

  const keypad = $("keypad");
  for (const k of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "✕"]) {
    const b = Hall.el("button", null, k);
    b.addEventListener("click", () => {
      const code = $("code");
      if (k === "⌫") code.textContent = code.textContent.slice(0, -1);
      else if (k === "✕") code.textContent = "";
      else if (code.textContent.length < 16) code.textContent += k;
    });
    keypad.append(b);
  }
  $("to-appt").addEventListener("click", () => { $("code").textContent = ""; show("v-appt"); });

  async function checkInQr(qr) {
    if (posting) return;
    posting = true;
    try {
      const t = await Hall.api("/api/v1/appointments/check-in", { method: "POST", body: { qr, kiosk: kioskId } });
      card = null;
      showTicket(t);
    } catch (e) {
      message(e.code, e.detail, e.detail_en);
    } finally {
      posting = false;
    }
  }
  $("appt-ok").addEventListener("click", async () => {
    const code = $("code").textContent.trim();
    if (!code || posting) return;
    posting = true;
    try {
      const t = await Hall.api(`/api/v1/appointments/${encodeURIComponent(code)}/check-in`, { method: "POST", body: { kiosk: kioskId } });
      showTicket(t);
    } catch (e) {
      message(e.code, e.detail, e.detail_en);
    } finally {
      posting = false;
    }
  });

  // device_state events seen so far: a reload's answer, started before the latest of them, is older
  // than what the stream said and must not draw over it (a fault banner hidden by a stale "ok").
  let deviceEvents = 0;
  async function reload() {
    const seen = deviceEvents;
    try {
      const [info, rows] = await Promise.all([Hall.api(`/api/v1/kiosks/${encodeURIComponent(kioskId)}`), Hall.api("/api/v1/categories")]);
      cats = new Map(rows.map((r) => [r.prefix, r]));
      if (deviceEvents === seen) {
        printer = info.printer;
        reader = info.reader;
      }
      drawPrinter();
      drawReader();
      if (document.body.dataset.view === "v-start" || !document.body.dataset.view) drawStart();
    } catch (e) {
      console.warn("kiosk reload failed", e);
    }
  }

  // A live edit in the admin console (this kiosk's categories, printer or reader): take it without a reload.
  async function reconfigured() {
    try {
      const fresh = await Hall.api("/ui/config.json");
      cfg.categories = fresh.categories;
      cfg.kiosks = fresh.kiosks;
      kcfg = fresh.kiosks.find((k) => k.id === kioskId) || { categories: fresh.categories.map((c) => c.prefix) };
    } catch (e) {
      return; // the stream's next snapshot (reconnect) or the next change tries again
    }
    reload();
  }

  Hall.onLang(() => {
    drawStart();
    drawPrinter();
    if (document.body.dataset.view === "v-guide") drawGuide();
    if (!$("help-btn").disabled) $("help-btn").textContent = Hall.t("需要帮助", "Need help");
  });
  show("v-start");
  drawStart();
  Hall.stream({
    statusEl: $("conn"),
    onReady: reload,
    onEvent(name, d, live) {
      if (name === "queue_state") {
        const row = cats.get(d.category) || cfg.categories.find((x) => x.prefix === d.category) || {};
        cats.set(d.category, Object.assign({}, row, { waiting: d.waiting, open: d.open }));
        if (document.body.dataset.view === "v-start") drawStart();
      } else if (name === "device_state" && kcfg.printer && d.device === kcfg.printer) {
        deviceEvents += 1;
        printer = d;
        drawPrinter();
      } else if (name === "device_state" && kcfg.reader && d.device === kcfg.reader) {
        deviceEvents += 1;
        reader = d;
        drawReader();
      } else if (name === "config_changed") {
        reconfigured();
      } else if (!live) {
        // nothing else is retained
      } else if (name === "card_read" && d.kiosk === kioskId) {
        card = { offer: d.offer, holder: d.holder, elderly: d.elderly, categories: d.categories, at: Date.now() };
        if (kcfg.categories.length > 1) {
          drawStart();
          show("v-card");
        }
      } else if (name === "ticket_issued" && d.kiosk === kioskId && card && !posting) {
        // A single-category kiosk issues on the swipe itself; show what it issued.
        card = null;
        Hall.api(`/api/v1/tickets/${encodeURIComponent(d.ticket_id)}`)
          .then((t) => showTicket(Object.assign(t, { waiting_ahead: d.waiting_ahead })))
          .catch(() => showTicket({ number: d.number, category: d.category, waiting_ahead: d.waiting_ahead, issued_at: d.at }));
      } else if (name === "kiosk_notice" && d.kiosk === kioskId) {
        if (d.code === "printed" && d.number) {
          printedNumber = d.number;  // may arrive before the POST answer: showTicket checks it too
          if (d.number === $("t-num").textContent) showPrinted(d.number);
        }
        if (d.code === lastMessage.code && Date.now() - lastMessage.at < 5000) return;
        if (document.body.dataset.view === "v-ticket" && d.number && d.number === $("t-num").textContent) {
          $("t-note").textContent = Hall.t(d.message, d.message_en);
          return;
        }
        message(d.code, d.message, d.message_en);
      }
    },
  });
})();
