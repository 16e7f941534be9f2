/* City view (全市政务服务一张图): every hall of a city on one screen, served by `hallctl central`.
 *
 * Everything comes from GET /api/v1/city on the central (docs/city.md): the halls' state topics
 * (waiting, climate, energy, status, alerts) and the day's stored event-log rows (tickets,
 * service level, 好评率). Read-only and without a token: the central serves it on its own
 * listener (behind the city's proxy). Polled every 5 s; a failed poll shows the link as
 * offline and the last picture stays on screen.
 */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 5000;
  let last = null;

  function pct(x) { return x === null || x === undefined ? "—" : `${Math.round(x * 1000) / 10}`; }
  function setKpi(id, value, unit) {
    const el = $(id);
    el.textContent = value;
    if (unit && value !== "—") el.append(Hall.el("small", null, unit));
  }
  function name(h) { return Hall.lang === "en" ? h.name_en : h.name; }

  function drawKpis(t) {
    setKpi("k-online", `${t.online}`, `/ ${t.halls}`);
    setKpi("k-waiting", String(t.waiting));
    setKpi("k-issued", String(t.issued));
    setKpi("k-done", String(t.finished));
    setKpi("k-sl", pct(t.service_level), "%");
    setKpi("k-sat", pct(t.satisfaction), "%");
    setKpi("k-band", t.zones_known ? `${t.zones_in_band}` : "—", `/ ${t.zones_known}`);
    setKpi("k-kwh", String(t.energy_kwh), "kWh");
    $("legend").textContent = Hall.t(
      `共${t.halls}个 · 今日告警${t.alerts}条 · 卡片：当前等候、达标率、好评率、温度达标、能耗`,
      `${t.halls} halls · ${t.alerts} alerts today · card: waiting, service level, satisfaction, zones in band, energy`,
    );
  }

  function card(h) {
    const c = Hall.el("div", "hall");
    c.dataset.hall = h.id;
    c.dataset.status = h.status;
    c.dataset.alerts = h.alerts_count ? "yes" : "no";
    c.title = h.alerts.map((a) => (Hall.lang === "en" && a.message_en ? a.message_en : a.message)).join("\n");
    c.append(Hall.el("div", "hn", name(h)));
    const w = Hall.el("div", "hw", String(h.waiting));
    w.append(Hall.el("small", null, Hall.t("人等候", "waiting")));
    c.append(w);
    const f = Hall.el("div", "hf");
    const item = (zh, en, value, bad) => {
      const s = Hall.el("span", null, `${Hall.t(zh, en)} `);
      const b = Hall.el("b", bad ? "bad" : null, value);
      s.append(b);
      f.append(s);
    };
    item("达标", "SL", h.service_level === null ? "—" : `${pct(h.service_level)}%`, h.service_level !== null && h.service_level < 0.8);
    item("好评", "Sat.", h.satisfaction === null ? "—" : `${pct(h.satisfaction)}%`, h.satisfaction !== null && h.satisfaction < 0.9);
    item("温度", "Temp", h.zones_known ? `${h.zones_in_band}/${h.zones_known}` : "—", h.zones_known && h.zones_in_band < h.zones_known);
    item("能耗", "kWh", `${h.energy_kwh}`, false);
    item("告警", "Alerts", String(h.alerts_count), h.alerts_count > 0);
    item("取号", "Tickets", String(h.issued), false);
    c.append(f);
    return c;
  }

  function drawHalls(halls) {
    const box = $("halls");
    box.replaceChildren(...halls.map(card));
    if (!halls.length) box.append(Hall.el("div", "none", Hall.t("尚无大厅数据", "No hall has reported yet")));
  }

  function drawTicker(halls) {
    const t = $("ticker");
    t.replaceChildren(Hall.el("span", "lbl", Hall.t("最新告警", "Latest alerts")));
    const alerts = [];
    for (const h of halls) for (const a of h.alerts) alerts.push([a.at || "", name(h), a]);
    alerts.sort((x, y) => (x[0] < y[0] ? 1 : -1));
    if (!alerts.length) t.append(Hall.el("span", "none", Hall.t("无", "none")));
    for (const [, hall, a] of alerts.slice(0, 6)) {
      const s = Hall.el("span", "a");
      s.append(Hall.el("b", null, hall), Hall.lang === "en" && a.message_en ? a.message_en : a.message);
      t.append(s);
    }
  }

  // The cross-hall reports as files (docs/city.md#reports): yesterday's (a day's report is whole
  // only once the day is over) and this month's, in the page's language.
  function setReportLinks() {
    const lang = Hall.lang === "en" ? "en" : "zh";
    const today = last ? last.day : null;
    const q = (extra) => `format=xlsx&lang=${lang}${extra}`;
    let yesterday = "";
    if (today) {
      const d = new Date(`${today}T00:00:00Z`);
      d.setUTCDate(d.getUTCDate() - 1);
      yesterday = `&day=${d.toISOString().slice(0, 10)}`;
    }
    $("rep-day").href = `/api/v1/reports/daily?${q(yesterday)}`;
    $("rep-month").href = `/api/v1/reports/monthly?${q(today ? `&month=${today.slice(0, 7)}` : "")}`;
  }

  function draw() {
    setReportLinks();
    if (!last) return;
    drawKpis(last.totals);
    drawHalls(last.halls);
    drawTicker(last.halls);
  }

  function setConn(state) {
    const c = $("conn");
    c.dataset.state = state;
    c.dataset.zh = state === "live" ? "● 实时" : "○ 连接中断";
    c.dataset.en = state === "live" ? "● Live" : "○ Offline";
    c.textContent = Hall.lang === "en" ? c.dataset.en : c.dataset.zh;
  }

  async function poll() {
    try {
      last = await Hall.api("/api/v1/city");
      setConn("live");
      draw();
    } catch (e) {
      setConn("offline");
    }
    setTimeout(poll, POLL_MS);
  }

  document.querySelectorAll(".langbtn").forEach((b) => b.addEventListener("click", Hall.toggleLang));
  Hall.onLang(() => { draw(); });
  Hall.applyLang();
  Hall.clock($("clock"));
  setReportLinks();
  poll();
})();
