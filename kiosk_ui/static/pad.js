/* Evaluation pad (评价器), a tablet at each window.
 *
 * Idle, it shows who is on duty (亮牌上岗). When the window finishes a ticket the
 * daemon sends `evaluation_requested`; the pad then asks about that ticket, so
 * a rating always belongs to the visit just served. After a tap, or when the
 * daemon records the visit as unrated (timeout) or rated elsewhere, it thanks
 * and returns to idle by itself.
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
    drawIdle();
    show("v-idle");
  }

  function thanks(label) {
    clearTimeout(timer);
    pending = null;
    $("thanks-level").textContent = label || "";
    show("v-thanks");
    timer = setTimeout(idle, back * 1000);
  }

  async function rate(level) {
    if (!pending) return;
    const p = pending;
    try {
      await Hall.api(`/api/v1/windows/${win}/evaluation`, { method: "POST", body: { level, ticket_id: p.ticket_id } });
      const l = LEVELS.find((x) => x[0] === level);
      thanks(Hall.t(l[1], l[2]));
    } catch (e) {
      if (e.code === "already_evaluated") thanks("");
      else $("err").textContent = e.text();
    }
  }

  Hall.onLang(() => { drawIdle(); drawLevels(); });
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
