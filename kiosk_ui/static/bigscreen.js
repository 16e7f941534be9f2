/* Data big screen (数据大屏): the hall's headline figures for managers and visitors.
 *
 * Figures come from /api/v1/stats/live (present state and today's totals),
 * /api/v1/stats (by hour), /api/v1/sensors/history (trends), and for the 低碳管理
 * panel /api/v1/climate (each zone's temperature, setpoint, action) and
 * /api/v1/climate/energy (today's estimated kWh and share of opening hours in band).
 * No saving against a fixed thermostat is shown: a running hall has no baseline to
 * measure it by (bench/climate_day.py measures it on the room model instead). Any event on
 * the stream schedules one refresh (coalesced), so the screen follows the hall
 * without polling hard; a slow timer keeps the trends moving when it is quiet.
 * Charts are drawn by the vendored ECharts (static/vendor/echarts, Apache-2.0).
 */
"use strict";

(async () => {
  const cfg = await Hall.boot("bigscreen");
  const $ = (id) => document.getElementById(id);
  const STATE = {
    closed: ["未签到", "Closed"], idle: ["空闲", "Free"], called: ["叫号中", "Calling"],
    serving: ["办理中", "Serving"], paused: ["暂停", "Paused"],
  };
  const axis = { axisLine: { lineStyle: { color: "#7f9cc4" } }, axisLabel: { color: "#dfe9f7", fontSize: 18 },
    splitLine: { lineStyle: { color: "rgba(127,156,196,0.2)" } } };
  const hourChart = echarts.init($("c-hour"));
  const waitChart = echarts.init($("c-wait"));
  const sparks = new Map();
  let last = null;

  function pct(x) { return x === null || x === undefined ? "—" : `${Math.round(x * 1000) / 10}`; }
  function setKpi(id, value, unit) {
    const el = $(id);
    el.textContent = value;
    if (unit && value !== "—") el.append(Hall.el("small", null, unit));
  }

  function drawKpis(live, total) {
    setKpi("k-issued", String(live.issued));
    setKpi("k-done", String(live.done));
    setKpi("k-waiting", String(live.waiting));
    setKpi("k-avg", Hall.minutes(live.avg_wait_s), Hall.t("分钟", "min"));
    setKpi("k-p90", Hall.minutes(live.p90_wait_s), Hall.t("分钟", "min"));
    setKpi("k-sl", pct(total.service_level), "%");
    setKpi("k-sat", pct(total.satisfaction), "%");
    $("k-sat").title = `${total.evaluations} ${Hall.t("条评价", "ratings")}`;
  }

  function drawHour(byHour) {
    const hours = [];
    for (let h = 8; h <= 18; h += 1) hours.push(String(h).padStart(2, "0"));
    for (const h of Object.keys(byHour)) if (!hours.includes(h)) hours.push(h);
    hours.sort();
    hourChart.setOption({
      animation: false,
      grid: { left: 50, right: 20, top: 20, bottom: 36 },
      tooltip: {},
      xAxis: Object.assign({ type: "category", data: hours.map((h) => Hall.t(`${h}时`, `${h}:00`)) }, axis),
      yAxis: Object.assign({ type: "value", minInterval: 1 }, axis),
      series: [{ type: "bar", name: Hall.t("取号", "Tickets"), data: hours.map((h) => (byHour[h] ? byHour[h].issued : 0)),
        itemStyle: { color: "#3ea0ff", borderRadius: [6, 6, 0, 0] }, label: { show: true, position: "top", color: "#fff", fontSize: 16 } }],
    });
  }

  function drawWaiting(categories) {
    const names = categories.map((c) => {
      const cc = cfg.categories.find((x) => x.prefix === c.category);
      return `${c.category} ${cc ? Hall.t(cc.name, cc.name_en) : c.name}`;
    });
    waitChart.setOption({
      animation: false,
      grid: { left: 220, right: 60, top: 10, bottom: 20 },
      xAxis: Object.assign({ type: "value", minInterval: 1 }, axis),
      yAxis: Object.assign({ type: "category", data: names, inverse: true }, axis),
      series: [{ type: "bar", data: categories.map((c) => c.waiting), barWidth: "55%",
        itemStyle: { color: "#ffd34d", borderRadius: [0, 6, 6, 0] }, label: { show: true, position: "right", color: "#fff", fontSize: 20 } }],
    });
  }

  function drawWindows(windows) {
    $("wgrid").replaceChildren(...windows.map((w) => {
      const box = Hall.el("div", "w");
      box.dataset.window = w.window;
      box.dataset.state = w.state;
      const st = STATE[w.state] || [w.state, w.state];
      // The configured names (name_en in English mode, "Window n" when a hall gave none).
      const wc = cfg.windows.find((x) => x.number === w.window);
      const name = wc ? Hall.t(wc.name, wc.name_en) : w.name;
      box.append(Hall.el("div", "n", name), Hall.el("div", "t", w.ticket || "—"),
        Hall.el("div", "s", `${Hall.t(st[0], st[1])}${w.staff_name ? ` · ${w.staff_name}` : ""}`));
      return box;
    }));
  }

  function drawClimate(sensorsNow, history) {
    const floors = [...new Set(cfg.sensors.map((s) => s.floor))].sort();
    const box = $("climate");
    if (box.children.length !== floors.length) {
      box.replaceChildren(...floors.map((f) => {
        const row = Hall.el("div", "floor");
        row.dataset.floor = f;
        row.append(Hall.el("div", "lbl"), Hall.el("div", "spark"));
        return row;
      }));
      sparks.clear();
    }
    floors.forEach((f, i) => {
      const row = box.children[i];
      const ids = cfg.sensors.filter((s) => s.floor === f).map((s) => s.id);
      const now = sensorsNow.filter((s) => ids.includes(s.sensor) && !s.stale);
      const avg = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
      const t = avg(now.map((s) => s.temperature).filter((x) => x !== null));
      const h = avg(now.map((s) => s.humidity).filter((x) => x !== null));
      const lbl = row.querySelector(".lbl");
      lbl.replaceChildren(document.createTextNode(Hall.t(`${f}楼`, `Floor ${f}`)),
        Hall.el("b", null, t === null ? "—" : `${t.toFixed(1)}°C`),
        document.createTextNode(h === null ? "" : `${Hall.t("湿度", "RH")} ${Math.round(h)}%`));
      let chart = sparks.get(f);
      if (!chart) { chart = echarts.init(row.querySelector(".spark")); sparks.set(f, chart); }
      const pts = history.filter((r) => ids.includes(r.sensor));
      chart.setOption({
        animation: false,
        grid: { left: 44, right: 44, top: 8, bottom: 8 },
        xAxis: { type: "time", show: false },
        yAxis: [Object.assign({ type: "value", scale: true, splitNumber: 2 }, axis, { axisLabel: { color: "#ff9f43", fontSize: 14 } }),
          Object.assign({ type: "value", scale: true, splitNumber: 2 }, axis, { axisLabel: { color: "#4fc3f7", fontSize: 14 }, splitLine: { show: false } })],
        series: [
          { type: "line", showSymbol: pts.length < 3, data: pts.filter((r) => r.temperature !== null).map((r) => [r.at, r.temperature]), lineStyle: { color: "#ff9f43", width: 3 }, itemStyle: { color: "#ff9f43" } },
          { type: "line", yAxisIndex: 1, showSymbol: pts.length < 3, data: pts.filter((r) => r.humidity !== null).map((r) => [r.at, r.humidity]), lineStyle: { color: "#4fc3f7", width: 2 }, itemStyle: { color: "#4fc3f7" } },
        ],
      });
    });
  }

  const ACTION = {
    cooling: ["制冷", "Cooling"], heating: ["制热", "Heating"], drying: ["除湿", "Drying"],
    fan: ["送风", "Fan"], idle: ["待机", "Standby"], off: ["关闭", "Off"],
  };
  function drawLowCarbon(states, energy) {
    const box = $("lowcarbon");
    const zones = cfg.climate_zones || [];
    if (!zones.length) { box.replaceChildren(Hall.el("div", "none", Hall.t("未配置空调分区", "No climate zones"))); return; }
    box.replaceChildren(...zones.map((z) => {
      const st = states.find((s) => s.zone === z.id) || {};
      const en = energy.find((e) => e.zone === z.id) || {};
      const row = Hall.el("div", "zone");
      row.dataset.zone = z.id;
      const act = ACTION[st.action] || ACTION.idle;
      const badge = Hall.el("span", "za", Hall.t(act[0], act[1]));
      badge.dataset.action = st.action || "idle";
      const temp = Hall.el("div", "zt", st.current === null || st.current === undefined ? "—" : `${st.current.toFixed(1)}°C`);
      if (st.setpoint !== null && st.setpoint !== undefined) temp.append(Hall.el("small", null, `${Hall.t("设定", "set")} ${st.setpoint}°C`));
      const figs = Hall.el("div", "zf");
      const kwh = en.kwh === undefined ? "—" : en.kwh.toFixed(1);
      const band = en.share_in_band === null || en.share_in_band === undefined ? "—" : `${pct(en.share_in_band)}%`;
      figs.append(Hall.el("b", null, kwh), document.createTextNode(` kWh · ${Hall.t("舒适达标", "in band")} ${band}`));
      row.append(Hall.el("span", "zn", Hall.t(z.name, z.name_en)), badge, temp, figs);
      return row;
    }));
  }

  function drawAlerts(all) {
    const ul = $("alerts");
    // The stored alerts in their present state: a resolved one leaves the screen.
    const alerts = all.filter((a) => a.state !== "resolved");
    if (!alerts.length) { ul.replaceChildren(Hall.el("li", "none", Hall.t("暂无告警", "No alerts"))); return; }
    ul.replaceChildren(...alerts.slice().reverse().slice(0, 8).map((a) => {
      const li = Hall.el("li", a.level > 0 ? `${a.severity} escalated` : a.severity);
      li.append(Hall.el("span", "tm", new Date(a.at).toLocaleTimeString("zh-CN", { timeZone: cfg.hall.timezone, hour12: false, hour: "2-digit", minute: "2-digit" })),
        Hall.el("span", "m", Hall.t(a.message, a.message_en)));
      return li;
    }));
  }

  function draw() {
    if (!last) return;
    const [live, day, history, climate, energy] = last;
    $("title").textContent = `${Hall.t(cfg.hall.name, cfg.hall.name_en || cfg.hall.name)} · ${Hall.t("数据大屏", "Live figures")}`;
    drawKpis(live, live.stats);
    drawHour(day.by_hour);
    drawWaiting(live.categories);
    drawWindows(live.windows);
    drawClimate(live.sensors, history);
    drawLowCarbon(climate, energy);
    drawAlerts(live.alerts);
    window.__bigscreenDrawn = (window.__bigscreenDrawn || 0) + 1;
  }

  let inflight = false;
  let again = false;
  async function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      last = await Promise.all([Hall.api("/api/v1/stats/live"), Hall.api("/api/v1/stats"), Hall.api("/api/v1/sensors/history?hours=6"),
        Hall.api("/api/v1/climate"), Hall.api("/api/v1/climate/energy")]);
      draw();
    } catch (e) {
      console.warn("big screen refresh failed", e);
    } finally {
      inflight = false;
      if (again) { again = false; setTimeout(refresh, 300); }
    }
  }
  let soonTimer = null;
  const soon = () => { clearTimeout(soonTimer); soonTimer = setTimeout(refresh, 300); };

  Hall.onLang(draw);
  Hall.clock($("clock"));
  window.addEventListener("resize", () => { hourChart.resize(); waitChart.resize(); sparks.forEach((c) => c.resize()); });
  setInterval(refresh, 60000);
  Hall.stream({ statusEl: $("conn"), onReady: refresh, onEvent: (name, d, live) => { if (live) soon(); } });
})();
