/* Evaluation pad (评价器), a tablet at each window.
 *
 * Idle, it shows who is on duty (亮牌上岗). When the window finishes a ticket the
 * daemon sends `evaluation_requested`; the pad then asks about that ticket, so
 * a rating always belongs to the visit just served. After a tap, or when the
 * daemon records the visit as unrated (timeout) or rated elsewhere, it thanks
 * and returns to idle by itself.
 *
 * A 差评 (1 or 2) is recorded at the tap, as any rating; the pad then asks why, from
 * the hall's short list (`bad_rating_reasons`), for the follow-up case. Not choosing
 * (skip, or walking away) leaves the case without a reason; the rating stands.
 *
 * URL parameter: ?back=N seconds on the thank-you screen (default 5).
 */
"use strict";

(async () => {
  const win = Number(location.pathname.split("/").filter(Boolean)[1]);
  const cfg = await Hall.boot(`pad.${win}`);
  const $ = (id) => document.getElementById(id);
  const back = Number(Hall.params.get("back")) || 5;
  const LEVELS = [
    [5, "非常满意", "Very satisfied"], [4, "满意", "Satisfied"], [3, "基本满意", "Acceptable"],
    [2, "不满意", "Dissatisfied"], [1, "非常不满意", "Very dissatisfied"],
  ];
  let staff = null;
  let pending = null; // evaluation_requested being asked
  let reasonFor = null; // the ticket whose 差评 reason is being asked
  let timer = null;

  function show(view) {
    document.querySelectorAll(".view").forEach((v) => v.classList.toggle("hidden", v.id !== view));
    document.body.dataset.view = view;
  }

  function drawIdle() {
    $("title").textContent = `${Hall.t(`${win}号窗口`, `Window ${win}`)} · ${Hall.t("服务评价", "Rate our service")}`;
    $("who").textContent = staff && staff.staff_name ? staff.staff_name : Hall.t("欢迎光临", "Welcome");
    $("who-no").textContent = staff && staff.staff ? `${Hall.t("工号", "Staff no.")} ${staff.staff}` : "";
  }

  function drawLevels() {
    $("levels").replaceChildren(...LEVELS.map(([level, zh, en]) => {
      const b = Hall.el("button", `l${level}`);
      b.dataset.level = level;
      // Stars, not emoji: hall tablets (and this box) often lack an emoji font.
      b.append(Hall.el("span", "face", "★".repeat(level) + "☆".repeat(5 - level)), Hall.el("span", null, zh), Hall.el("span", "en", en));
      b.addEventListener("click", () => rate(level));
      return b;
    }));
  }

  function ask(d) {
    pending = d;
    reasonFor = null;
    clearTimeout(timer);
    $("ask-number").textContent = d.number;
    $("ask-staff").textContent = d.staff_name ? Hall.t(`· 服务人员 ${d.staff_name}`, `· served by ${d.staff_name}`) : "";
    $("err").textContent = "";
    show("v-ask");
    // The daemon records 未评价 after its own timeout; stop asking a little later regardless.
    timer = setTimeout(idle, (cfg.evaluation_timeout_s + 5) * 1000);
  }

  function idle() {
    clearTimeout(timer);
    pending = null;
    reasonFor = null;
    drawIdle();
    show("v-idle");
  }

  function thanks(label) {
    clearTimeout(timer);
    pending = null;
    reasonFor = null;
    $("thanks-level").textContent = label || "";
    show("v-thanks");
    timer = setTimeout(idle, back * 1000);
  }

  function drawReasons() {
    const reasons = cfg.bad_rating_reasons || [];
    const skip = Hall.el("button", "skip", Hall.t("跳过", "Skip"));
    skip.addEventListener("click", () => thanks(""));
    $("reasons").replaceChildren(...reasons.map((r) => {
      const b = Hall.el("button");
      b.dataset.reason = r.name;
      b.append(Hall.el("span", null, Hall.t(r.name, r.name_en)), Hall.el("span", "en", Hall.t(r.name_en, r.name)));
      b.addEventListener("click", () => giveReason(r.name));
      return b;
    }), skip);
  }

  function askReason(ticketId) {
    reasonFor = ticketId;
    clearTimeout(timer);
    $("reason-err").textContent = "";
    drawReasons();
    show("v-reason");
    timer = setTimeout(() => thanks(""), 30 * 1000);
  }

  async function giveReason(name) {
    if (!reasonFor) return;
    const id = reasonFor;
    // The case opens just after the rating is stored: a very quick tap may arrive first, so retry briefly.
    for (let i = 0; i < 5; i++) {
      try {
        await Hall.api(`/api/v1/tickets/${encodeURIComponent(id)}/evaluation/reason`, { method: "POST", body: { reasons: [name] } });
        reasonFor = null;
        thanks("");
        return;
      } catch (e) {
        if (e.code === "reason_given") { reasonFor = null; thanks(""); return; }
        if (e.code !== "no_case" || i === 4) { $("reason-err").textContent = e.text ? e.text() : String(e); return; }
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  async function rate(level) {
    if (!pending) return;
    const p = pending;
    try {
      await Hall.api(`/api/v1/windows/${win}/evaluation`, { method: "POST", body: { level, ticket_id: p.ticket_id } });
      if (level <= 2 && (cfg.bad_rating_reasons || []).length) { pending = null; askReason(p.ticket_id); return; }
      const l = LEVELS.find((x) => x[0] === level);
      thanks(Hall.t(l[1], l[2]));
    } catch (e) {
      if (e.code === "already_evaluated") thanks("");
      else $("err").textContent = e.text();
    }
  }

  Hall.onLang(() => { drawIdle(); drawLevels(); if (reasonFor) drawReasons(); });
  drawLevels();
  idle();
  Hall.stream({
    statusEl: $("conn"),
    onEvent(name, d, live) {
      if (name === "window_state" && d.window === win) { staff = d; if (!pending) drawIdle(); }
      else if (!live) return;
      else if (name === "evaluation_requested" && d.window === win) ask(d);
      else if (name === "evaluation" && pending && d.ticket_id === pending.ticket_id) {
        // Rated on the hardware pad, or recorded as 未评价 after the timeout.
        if (d.level === null) idle(); else thanks(d.label);
      }
    },
  });
})();
