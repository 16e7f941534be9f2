/* Shared helpers for the hall's pages: token, API calls, language, event stream.
 *
 * Plain ES2020, no build step, nothing loaded from the internet. Every page
 * calls Hall.boot(scope) first; it resolves once the page has a valid token and
 * the hall's layout (/ui/config.json).
 */
"use strict";

const Hall = (() => {
  const params = new URLSearchParams(location.search);
  let token = null;
  let lang = localStorage.getItem("hallctl.lang") || "zh";
  let cfg = null;

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || "http_error";
      this.detail = (body && body.detail) || this.message;
      this.detail_en = (body && (body.detail_en || body.detail)) || this.message;
    }
    text() { return lang === "en" ? this.detail_en : this.detail; }
  }

  /** Take ?token= once, then keep it per page so the address bar can lose it. */
  function loadToken(scope) {
    const key = `hallctl.token.${scope}`;
    const fromUrl = params.get("token");
    if (fromUrl) {
      localStorage.setItem(key, fromUrl);
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
      return fromUrl;
    }
    return localStorage.getItem(key);
  }

  function askToken(scope, message) {
    return new Promise((resolve) => {
      const box = document.createElement("div");
      box.className = "tokenbox";
      box.innerHTML = `<form><h2>请输入令牌 <span class="en">Enter token</span></h2>
        <div class="err"></div><input name="token" autocomplete="off" placeholder="hct_…">
        <button type="submit">确定 <span class="en">OK</span></button></form>`;
      box.querySelector(".err").textContent = message || "";
      box.querySelector("form").addEventListener("submit", (ev) => {
        ev.preventDefault();
        const value = box.querySelector("input").value.trim();
        if (!value) return;
        localStorage.setItem(`hallctl.token.${scope}`, value);
        box.remove();
        resolve(value);
      });
      document.body.appendChild(box);
      box.querySelector("input").focus();
    });
  }

  async function api(path, opts = {}) {
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (token) headers.Authorization = `Bearer ${token}`;
    let body = opts.body;
    if (body !== undefined && typeof body !== "string") {
      body = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    let res;
    try {
      res = await fetch(path, { method: opts.method || "GET", headers, body, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, { code: "network", detail: "网络连接中断，请稍后重试", detail_en: "network connection lost, please retry" });
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // ---- the hall's time ----------------------------------------------------------------
  // A screen's own clock can be wrong (a display box without NTP): the pages show and compare
  // the hall's time, the daemon's clock as /ui/config.json reports it, plus the time since.
  let skew = 0;  // hall time − this browser's time, ms
  async function hallConfig() {
    const t0 = Date.now();
    const body = await api(`/ui/config.json`);
    const t1 = Date.now();
    const at = body && body.now ? Date.parse(body.now) : NaN;
    if (!Number.isNaN(at)) skew = at - (t0 + t1) / 2;  // the answer was made about halfway through the round trip
    return body;
  }
  /** Now, by the hall's clock (a Date). */
  function hallNow() { return new Date(Date.now() + skew); }

  /** Resolve with the hall layout once the page holds a token the daemon accepts. */
  async function boot(scope) {
    token = loadToken(scope);
    let message = "";
    for (;;) {
      if (!token) token = await askToken(scope, message);
      try {
        cfg = await hallConfig();
        break;
      } catch (e) {
        if (e.status === 401) {
          localStorage.removeItem(`hallctl.token.${scope}`);
          token = null;
          message = "令牌无效 Invalid token";
          continue;
        }
        // Daemon not reachable yet: keep trying, the screen must come up by itself.
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    document.querySelectorAll(".langbtn").forEach((b) => b.addEventListener("click", toggleLang));
    applyLang();
    return cfg;
  }

  // ---- language -------------------------------------------------------------------
  const langListeners = [];
  function t(zh, en) { return lang === "en" && en ? en : zh; }
  function applyLang() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    document.querySelectorAll("[data-en]").forEach((el) => {
      if (el.dataset.zh === undefined) el.dataset.zh = el.textContent;
      el.textContent = lang === "en" ? el.dataset.en : el.dataset.zh;
    });
    document.querySelectorAll(".langbtn").forEach((b) => { b.textContent = lang === "en" ? "中文" : "English"; });
    langListeners.forEach((fn) => fn(lang));
  }
  function toggleLang() {
    lang = lang === "en" ? "zh" : "en";
    localStorage.setItem("hallctl.lang", lang);
    applyLang();
  }
  function onLang(fn) { langListeners.push(fn); }

  // ---- event stream -----------------------------------------------------------------
  const EVENTS = [
    "ticket_issued", "ticket_called", "ticket_serving", "ticket_finished", "ticket_no_show",
    "ticket_transferred", "ticket_cancelled", "evaluation", "evaluation_requested", "card_read",
    "kiosk_notice", "print_requested", "staff_signed_in", "staff_signed_out", "alert", "queue_state",
    "window_state", "device_state", "sensor_state", "climate_state", "display_text", "config_changed",
    "alert_changed", "alert_escalated", "case_changed",
  ];

  /**
   * Open the SSE stream and keep it open. Each connection starts with the retained
   * state (snapshot, live=false) and then `ready`; only events after `ready` are live.
   * A lost connection shows on the status badge and is retried with a capped backoff;
   * the daemon's own `retry:` is not relied on because a restarted daemon refuses
   * connections for a moment and EventSource may give up.
   */
  function stream({ onEvent, onReady, statusEl }) {
    let es = null;
    let attempt = 0;
    let live = false;
    let watchdog = null;
    let everReady = false;
    const setStatus = (state) => {
      if (!statusEl) return;
      statusEl.dataset.state = state;
      const text = {
        live: ["● 已连接", "● Connected"],
        connecting: ["○ 正在连接…", "○ Connecting…"],
        offline: ["✕ 连接中断，正在重连…", "✕ Connection lost, reconnecting…"],
      }[state];
      statusEl.textContent = t(text[0], text[1]);
    };
    onLang(() => statusEl && setStatus(statusEl.dataset.state || "connecting"));
    const kick = () => {
      clearTimeout(watchdog);
      // The daemon sends a keep-alive every 15 s; silence for longer means a dead link.
      watchdog = setTimeout(() => { if (es) { drop(); } }, 40000);
    };
    const drop = () => {
      if (es) { es.close(); es = null; }
      live = false;
      setStatus("offline");
      const delay = Math.min(5000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt += 1;
      setTimeout(connect, delay);
    };
    const connect = () => {
      setStatus(everReady ? "offline" : "connecting");
      es = new EventSource(`/api/v1/events?token=${encodeURIComponent(token)}`);
      es.onopen = kick;
      es.onerror = () => { drop(); };
      es.onmessage = kick;
      es.addEventListener("ready", () => {
        kick();
        live = true;
        attempt = 0;
        everReady = true;
        setStatus("live");
        window.__hallStreamReady = (window.__hallStreamReady || 0) + 1;
        if (onReady) onReady();
      });
      for (const name of EVENTS) {
        es.addEventListener(name, (msg) => {
          kick();
          let data;
          try { data = JSON.parse(msg.data); } catch (e) { return; }
          try { onEvent(name, data, live); } catch (e) { console.error(name, e); }
        });
      }
    };
    connect();
  }

  // ---- small shared helpers ---------------------------------------------------------
  function clock(el) {
    const tz = (cfg && cfg.hall.timezone) || "Asia/Shanghai";
    const tick = () => {
      const now = hallNow();
      const d = now.toLocaleDateString("zh-CN", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
      const wd = now.toLocaleDateString(lang === "en" ? "en-GB" : "zh-CN", { timeZone: tz, weekday: "short" });
      const tm = now.toLocaleTimeString("zh-CN", { timeZone: tz, hour12: false });
      el.textContent = `${d} ${wd} ${tm}`;
    };
    tick();
    setInterval(tick, 1000);
    // Measured again every 10 minutes: the screen's own clock may be stepped (NTP, a user) while it runs.
    setInterval(() => { hallConfig().catch(() => {}); }, 600000);
    onLang(tick);  // the weekday in the new language at once, not at the next second
  }

  const DAY_ZH = { mon: "周一", tue: "周二", wed: "周三", thu: "周四", fri: "周五", sat: "周六", sun: "周日" };
  const DAY_EN = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };
  /** "mon-fri 09:00-17:00" → "周一至周五 09:00-17:00" (or English). */
  function hours(spec) {
    const m = /^(\w{3})(?:-(\w{3}))?\s+(\S+)$/.exec(spec.trim().toLowerCase());
    if (!m) return spec;
    const names = lang === "en" ? DAY_EN : DAY_ZH;
    let days = names[m[1]] || m[1];
    if (m[2]) days += (lang === "en" ? "–" : "至") + (names[m[2]] || m[2]);
    if (m[1] === "mon" && m[2] === "sun") days = lang === "en" ? "Daily" : "每天";
    const span = m[3] === "00:00-24:00" ? (lang === "en" ? "24 h" : "全天") : m[3];
    return `${days} ${span}`;
  }

  function minutes(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    return `${Math.max(0, Math.round(seconds / 60))}`;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  return {
    params, api, boot, stream, t, onLang, applyLang, toggleLang, clock, now: hallNow, hours, minutes, el, ApiError,
    get token() { return token; }, get lang() { return lang; }, get cfg() { return cfg; },
  };
})();
