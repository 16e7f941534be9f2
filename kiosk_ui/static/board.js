/* 日公示 board: yesterday's and this month's figures per window and staff member, for the hall's public display.
 *
 * Figures come from /api/v1/reports/board (a display token), which carries only what the
 * hall's [board] section makes public: which columns, whether staff are named, whether the
 * charts show. The figures are of closed days (and this month so far), so the page reloads
 * them every few minutes instead of following the event stream. Tables longer than their
 * panel page through by themselves. Charts are the vendored ECharts (static/vendor/echarts,
 * Apache-2.0) drawn as inline SVG: nothing is fetched from the internet.
 */
"use strict";

(async () => {
  const cfg = await Hall.boot("board");
  const $ = (id) => document.getElementById(id);
  const COLS = {
    issued: ["取号量", "Tickets", "n"],
    served: ["办结量", "Served", "n"],
    no_show: ["过号未到", "No-show", "n"],
    avg_wait_s: ["平均等候", "Avg wait", "min"],
    p90_wait_s: ["90%等候不超过", "90% waited within", "min"],
    avg_service_s: ["平均办理", "Avg service", "min"],
    service_level: ["等候达标率", "Service level", "pct"],
    satisfaction: ["好评率", "Satisfaction", "pct"],
    bad_ratings: ["差评", "Bad ratings", "n"],
  };
  const RATINGS = [["5", "非常满意", "Very satisfied", "#3ddc84"], ["4", "满意", "Satisfied", "#8bd96a"],
    ["3", "基本满意", "Fair", "#ffd34d"], ["2", "不满意", "Dissatisfied", "#ff9f43"],
    ["1", "非常不满意", "Very dissatisfied", "#ff5c5c"], ["unrated", "未评价", "Unrated", "#7f9cc4"]];
  const PAGE_MS = 10000;
  const axis = { axisLine: { lineStyle: { color: "#7f9cc4" } }, axisLabel: { color: "#dfe9f7", fontSize: 16 },
    splitLine: { lineStyle: { color: "rgba(127,156,196,0.2)" } } };
  const charts = {};
  let data = null;
  let updated = null;
  let tick = 0;

  function value(col, v) {
    if (v === null || v === undefined) return ["—", ""];
    const kind = COLS[col][2];
    if (kind === "min") return [(v / 60).toFixed(1), Hall.t("分钟", "min")];
    if (kind === "pct") return [`${Math.round(v * 1000) / 10}`, "%"];
    return [String(v), ""];
  }
  function windowName(row) {
    const w = cfg.windows.find((x) => x.number === row.window);
    return Hall.t(row.name || (w ? w.name : `${row.window}号窗口`), `Window ${row.window}`);
  }

  function drawKpis(box, part) {
    box.replaceChildren(...data.columns.map((col) => {
      const k = Hall.el("div", "kpi");
      k.dataset.col = col;
      const [v, unit] = value(col, part.total[col]);
      const vEl = Hall.el("div", "v", v);
      if (unit && v !== "—") vEl.append(Hall.el("small", null, unit));
      k.append(Hall.el("div", "k", Hall.t(COLS[col][0], COLS[col][1])), vEl);
      return k;
    }));
  }

  /** One page of a table sized to its panel; which page turns with `tick`. */
  function drawTable(panel, rows, label) {
    const body = panel.querySelector(".body");
    if (!rows.length) {
      body.replaceChildren(Hall.el("div", "none", Hall.t("暂无数据", "No figures")));
      panel.querySelector(".page").textContent = "";
      return;
    }
    const table = Hall.el("table");
    const head = Hall.el("tr");
    const unit = (c) => (COLS[c][2] === "min" ? Hall.t("(分)", " (min)") : "");
    head.append(Hall.el("th", null, ""), ...data.columns.map((c) => Hall.el("th", null, Hall.t(COLS[c][0], COLS[c][1]) + unit(c))));
    table.append(head);
    const trs = rows.map((r) => {
      const tr = Hall.el("tr");
      const first = Hall.el("td");
      const [name, sub] = label(r);
      first.append(document.createTextNode(name));
      if (sub) first.append(Hall.el("span", "sub", sub));
      first.title = name;
      tr.append(first, ...data.columns.map((c) => {
        const [v, u] = value(c, r[c]);
        const td = Hall.el("td", c === "bad_ratings" && r[c] > 0 ? "bad" : null, u === "%" && v !== "—" ? `${v}%` : v);
        td.dataset.col = c;
        return td;
      }));
      return tr;
    });
    table.append(trs[0]);
    body.replaceChildren(table);
    // As many rows as the panel holds at this size and language (headers may wrap); the rest page.
    const perPage = Math.max(1, Math.floor((body.clientHeight - head.offsetHeight) / Math.max(1, trs[0].offsetHeight)));
    const pages = Math.ceil(rows.length / perPage);
    const page = tick % pages;
    panel.querySelector(".page").textContent = pages > 1 ? `${page + 1}/${pages}` : "";
    trs[0].remove();
    table.append(...trs.slice(page * perPage, (page + 1) * perPage));
  }

  function drawHalf(id, part, periodText) {
    const sec = $(id);
    sec.querySelector(".period").textContent = periodText;
    drawKpis(sec.querySelector(".kpis"), part);
    drawTable(sec.querySelector(".windows"), part.by_window, (r) => [windowName(r), ""]);
    const staff = sec.querySelector(".staff");
    staff.classList.toggle("hidden", !data.show_staff_names);
    if (data.show_staff_names) drawTable(staff, part.by_staff || [], (r) => [r.name, r.department && r.department !== "—" ? r.department : ""]);
  }

  function chart(id) {
    if (!charts[id]) charts[id] = echarts.init($(id), null, { renderer: "svg" });
    return charts[id];
  }

  function drawCharts() {
    $("main").classList.toggle("nocharts", !data.charts);
    if (!data.charts) return;
    const hours = data.yesterday.by_hour || [];
    chart("c-hour").setOption({
      animation: false, grid: { left: 44, right: 16, top: 24, bottom: 30 },
      xAxis: Object.assign({ type: "category", data: hours.map((h) => Hall.t(`${h.hour}时`, `${h.hour}h`)) }, axis),
      yAxis: Object.assign({ type: "value" }, axis),
      series: [{ type: "bar", data: hours.map((h) => (h.avg_wait_s === null ? 0 : Math.round(h.avg_wait_s / 6) / 10)),
        itemStyle: { color: "#3ea0ff", borderRadius: [6, 6, 0, 0] }, label: { show: true, position: "top", color: "#fff", fontSize: 14 } }],
    }, true);
    const wins = data.month.by_window;
    const y = new Map(data.yesterday.by_window.map((r) => [r.window, r.called]));
    chart("c-calls").setOption({
      animation: false, grid: { left: 44, right: 16, top: 34, bottom: 30 },
      legend: { top: 0, textStyle: { color: "#dfe9f7", fontSize: 15 } },
      xAxis: Object.assign({ type: "category", data: wins.map((r) => Hall.t(`${r.window}号`, `W${r.window}`)) }, axis),
      yAxis: Object.assign({ type: "value", minInterval: 1 }, axis),
      series: [
        { name: Hall.t("昨日", "Yesterday"), type: "bar", data: wins.map((r) => y.get(r.window) || 0), itemStyle: { color: "#ffd34d" } },
        { name: Hall.t("本月", "This month"), type: "bar", data: wins.map((r) => r.called || 0), itemStyle: { color: "#3ea0ff" } },
      ],
    }, true);
    const ratings = data.month.ratings || {};
    chart("c-ratings").setOption({
      animation: false, grid: { left: 150, right: 50, top: 10, bottom: 20 },
      xAxis: Object.assign({ type: "value", minInterval: 1 }, axis),
      yAxis: Object.assign({ type: "category", inverse: true, data: RATINGS.map((r) => Hall.t(r[1], r[2])) }, axis),
      series: [{ type: "bar", barWidth: "60%", label: { show: true, position: "right", color: "#fff", fontSize: 14 },
        data: RATINGS.map((r) => ({ value: ratings[r[0]] || 0, itemStyle: { color: r[3] } })) }],
    }, true);
  }

  function draw() {
    if (!data) return;
    $("title").textContent = `${Hall.t(cfg.hall.name, cfg.hall.name_en || cfg.hall.name)} · ${Hall.t("日公示", "Daily public board")}`;
    const hhmm = updated.toLocaleTimeString("zh-CN", { timeZone: cfg.hall.timezone, hour12: false, hour: "2-digit", minute: "2-digit" });
    $("updated").textContent = `${Hall.t("更新于", "Updated")} ${hhmm}`;
    drawCharts();
    drawHalf("yesterday", data.yesterday, data.yesterday.period);
    drawHalf("month", data.month, `${data.month.from} – ${data.month.to}`);
    Object.values(charts).forEach((c) => c.resize());
    window.__boardDrawn = (window.__boardDrawn || 0) + 1;
  }

  async function refresh() {
    try {
      data = await Hall.api("/api/v1/reports/board");
      updated = Hall.now();  // the hall's time, as the clock beside it
      draw();
    } catch (e) {
      console.warn("board refresh failed", e);
    }
  }

  Hall.onLang(draw);
  Hall.clock($("clock"));
  window.addEventListener("resize", draw);
  setInterval(() => { tick += 1; draw(); }, PAGE_MS);
  setInterval(refresh, 300000);
  refresh();
})();
