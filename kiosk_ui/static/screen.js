/* Calling screen (叫号屏): latest calls, per-window numbers, waiting counts, climate, notice,
 * and the voice that announces each call.
 *
 * Announcements go through one queue, so two calls never talk over each other;
 * each is said `announce_repeat` times. Only calls heard live (after the
 * stream's `ready`) are announced: after a reconnect the screen redraws from the
 * retained state and today's ticket list, silently.
 *
 * URL parameters: ?voice=browser|wav|auto (overrides the config), ?rate=1.0 (speech
 * speed; audio playbackRate / utterance rate).
 */
"use strict";

(async () => {
  const cfg = await Hall.boot("screen");
  const $ = (id) => document.getElementById(id);
  const catName = (p) => {
    const c = cfg.categories.find((x) => x.prefix === p);
    return c ? Hall.t(c.name, c.name_en) : p;
  };
  const winLabel = (n) => Hall.t(`${n}号窗口`, `Window ${n}`);
  const STATE = {
    closed: ["未开放", "Closed"], idle: ["空闲", "Free"], called: ["正在叫号", "Calling"],
    serving: ["正在办理", "Serving"], paused: ["暂停服务", "Paused"],
  };

  // ---------------------------------------------------------------------------- voice
  const repeat = Math.max(1, Number(cfg.screen.announce_repeat) || 1);
  const mode = Hall.params.get("voice") || cfg.screen.voice || "auto";
  const rate = Math.min(16, Math.max(0.25, Number(Hall.params.get("rate")) || 1));
  // Log of every announcement start/end, read by tests and handy when debugging a hall.
  const log = (window.__voiceLog = []);
  let queue = [];
  let busy = false;

  function zhVoice() {
    if (!("speechSynthesis" in window)) return null;
    const voices = speechSynthesis.getVoices();
    return voices.find((v) => /^zh[-_]CN/i.test(v.lang)) || voices.find((v) => /^(zh|cmn)/i.test(v.lang)) || null;
  }

  function waitForUserGesture() {
    const btn = $("enable-sound");
    btn.classList.remove("hidden");
    return new Promise((resolve) => {
      const go = () => { btn.classList.add("hidden"); document.removeEventListener("click", go); resolve(); };
      document.addEventListener("click", go);
    });
  }

  let utterance = null; // the one being spoken: Chromium may garbage-collect it (and never fire onend) otherwise

  /** Say `text` with the browser's voice; resolves "ended", or "error:<reason>" when it was not said. */
  function sayWithBrowser(text, voice) {
    return new Promise((resolve) => {
      const u = new SpeechSynthesisUtterance(text);
      u.voice = voice;
      u.lang = voice.lang || "zh-CN";
      u.rate = Math.min(10, rate);
      utterance = u;
      const finish = (how) => { clearTimeout(guard); utterance = null; resolve(how); };
      // A voice that never reports its end must not hold the queue, nor talk over the next call.
      const guard = setTimeout(() => { speechSynthesis.cancel(); finish("timeout"); }, 30000);
      u.onend = () => finish("ended");
      u.onerror = (e) => finish(`error:${(e && e.error) || "unknown"}`);
      speechSynthesis.speak(u);
    });
  }

  async function playWav(call) {
    // The daemon renders the announcement of this call (its ticket's latest call), never a text we send.
    const url = `/api/v1/voice/${encodeURIComponent(call.ticket_id)}.wav?token=${encodeURIComponent(Hall.token)}`;
    for (let tries = 0; tries < 2; tries += 1) {
      const audio = new Audio(url);
      audio.playbackRate = rate;
      audio.defaultPlaybackRate = rate;
      const done = new Promise((resolve) => {
        let guard = setTimeout(() => resolve("timeout"), 30000);
        audio.addEventListener("loadedmetadata", () => {
          clearTimeout(guard);
          const ms = (audio.duration / rate) * 1000 + 5000;
          guard = setTimeout(() => resolve("timeout"), Number.isFinite(ms) ? ms : 30000);
        });
        audio.addEventListener("ended", () => { clearTimeout(guard); resolve("ended"); });
        audio.addEventListener("error", () => { clearTimeout(guard); resolve("error"); });
      });
      try {
        await audio.play();
      } catch (e) {
        if (e && e.name === "NotAllowedError") {
          // Autoplay blocked (kiosk Chromium should run with --autoplay-policy=no-user-gesture-required).
          await waitForUserGesture();
          continue;
        }
        return "error";
      }
      return done;
    }
    return "error";
  }

  async function speakOnce(call) {
    const voice = mode !== "wav" ? zhVoice() : null;
    if (voice) {
      // The words, not the caption: "A零零一号到三号窗口", so no voice reads 001 as "one".
      const how = await sayWithBrowser(call.spoken || call.announcement, voice);
      if (!how.startsWith("error:")) return "browser";
      // Not said (e.g. "not-allowed": speech blocked until a user gesture, or the voice failed):
      // the daemon's WAV is next best, and playWav asks for a tap if audio is blocked too.
      console.warn(`browser voice failed (${how}), playing the WAV`);
    }
    // No zh-CN voice in this browser (headless and many kiosk builds have none), or the
    // hall chose "wav": play the daemon's rendering (espeak-ng 1.52, docs/voice.md). Even with voice = "browser"
    // a screen without the voice falls back rather than stay silent.
    return playWav(call);
  }

  async function drain() {
    if (busy) return;
    busy = true;
    while (queue.length) {
      const call = queue.shift();
      speaking = call;
      drawSaying();
      for (let i = 1; i <= repeat; i += 1) {
        if (ended.has(call.ticket_id)) {
          log.push({ ev: "skip", number: call.number, window: call.window, rep: i, t: performance.now() });
          break;
        }
        log.push({ ev: "start", number: call.number, window: call.window, text: call.spoken || call.announcement, rep: i, t: performance.now() });
        const how = await speakOnce(call);
        log.push({ ev: "end", number: call.number, window: call.window, text: call.spoken || call.announcement, rep: i, how, t: performance.now() });
      }
      speaking = null;
      drawSaying();
    }
    busy = false;
  }

  // Tickets whose service ended after their call (finished, no-show, cancelled, transferred): a call
  // still waiting in the voice queue for one of them is not said; nobody is coming for it.
  const ended = new Set();
  const ENDED = ["ticket_finished", "ticket_no_show", "ticket_cancelled", "ticket_transferred"];

  function announce(call) {
    // A recall replaces the ticket's call still waiting to be said: said once, as the latest.
    queue = queue.filter((c) => c.ticket_id !== call.ticket_id);
    queue.push(call);
    drain();
  }
  if ("speechSynthesis" in window) speechSynthesis.getVoices(); // voices load lazily

  // ---------------------------------------------------------------------------- state
  const windows = new Map(); // number -> window_state
  const waiting = new Map(); // prefix -> queue_state
  const sensors = new Map(); // id -> sensor_state
  // Newest first: {ticket_id, number, window, announcement, announcement_en}, the text as the
  // ticket_called event built it (never composed here), so caption and voice say the same thing.
  let calls = [];
  let speaking = null; // the call being announced now (may be older than the newest while the queue drains)
  const callOf = (d) => ({
    ticket_id: d.ticket_id, number: d.number, window: d.window,
    announcement: d.announcement, announcement_en: d.announcement_en, spoken: d.spoken,
  });

  /** "♪" under the newest call while it is being said; an older call being said shows its own text. */
  function drawSaying() {
    const newest = calls[0];
    const say = $("newest-say");
    if (!speaking) say.textContent = "";
    else if (newest && speaking.ticket_id === newest.ticket_id) say.textContent = "♪";
    else say.textContent = `♪ ${Hall.t(speaking.announcement, speaking.announcement_en)}`;
  }

  function drawCalls(flash) {
    const newest = calls[0];
    const box = $("newest");
    if (newest) {
      box.classList.remove("empty");
      $("newest-num").removeAttribute("data-en");
      $("newest-to").removeAttribute("data-en");
      $("newest-num").textContent = newest.number;
      $("newest-to").textContent = Hall.t(newest.announcement, newest.announcement_en);
      if (flash) { box.classList.remove("flash"); void box.offsetWidth; box.classList.add("flash"); }
    }
    drawSaying();
    const ul = $("history");
    ul.replaceChildren(...calls.slice(1, 7).map((c) => {
      const li = Hall.el("li");
      li.append(Hall.el("span", "n", c.number), Hall.el("span", "w", winLabel(c.window)));
      li.dataset.number = c.number;
      return li;
    }));
  }

  function drawWindows() {
    const grid = $("windows");
    grid.replaceChildren(...cfg.windows.map((w) => {
      const s = windows.get(w.number);
      const card = Hall.el("div", "win");
      card.dataset.window = w.number;
      card.dataset.state = s ? s.state : "closed";
      const st = STATE[card.dataset.state] || [card.dataset.state, card.dataset.state];
      card.append(
        Hall.el("div", "name", winLabel(w.number)),
        Hall.el("div", "cur", (s && s.ticket) || "—"),
        Hall.el("div", "st", Hall.t(st[0], st[1])),
      );
      return card;
    }));
  }

  function drawWaiting() {
    $("waiting").replaceChildren(...cfg.categories.map((c) => {
      const q = waiting.get(c.prefix);
      const box = Hall.el("div", "cat");
      box.dataset.category = c.prefix;
      const w = Hall.el("div", "w", q ? String(q.waiting) : "—");
      w.append(Hall.el("small", null, Hall.t(" 人", " waiting")));
      box.append(Hall.el("div", "n", `${c.prefix} ${catName(c.prefix)}`), w);
      return box;
    }));
  }

  function drawClimate() {
    $("climate").replaceChildren(...cfg.sensors.map((s) => {
      const r = sensors.get(s.id);
      const box = Hall.el("div", "s");
      box.dataset.sensor = s.id;
      const temp = r && r.temperature !== null && !r.stale ? `${r.temperature.toFixed(1)}°C` : "—";
      const hum = r && r.humidity !== null && !r.stale ? `${Math.round(r.humidity)}%` : "—";
      box.append(Hall.el("div", "n", Hall.t(s.name, s.name_en)), Hall.el("div", "v", `${temp} · ${Hall.t("湿度", "RH")} ${hum}`));
      return box;
    }));
  }

  function drawAll() {
    $("hall").textContent = Hall.t(cfg.hall.name, cfg.hall.name_en || cfg.hall.name);
    $("notice").textContent = Hall.t(cfg.hall.notice, cfg.hall.notice_en);
    drawCalls(false);
    drawWindows();
    drawWaiting();
    drawClimate();
  }

  /** Silent catch-up: the daemon's record of today's latest calls (no announcement). */
  async function catchUp() {
    try {
      calls = (await Hall.api("/api/v1/calls?limit=9")).map(callOf);
      drawCalls(false);
    } catch (e) {
      console.warn("catch-up failed", e);
    }
  }

  Hall.onLang(drawAll);
  Hall.clock($("clock"));
  drawAll();
  Hall.stream({
    statusEl: $("conn"),
    onReady: catchUp,
    onEvent(name, d, live) {
      if (ENDED.includes(name)) ended.add(d.ticket_id);
      if (name === "window_state") { windows.set(d.window, d); drawWindows(); }
      else if (name === "queue_state") { waiting.set(d.category, d); drawWaiting(); }
      else if (name === "sensor_state") { sensors.set(d.sensor, d); drawClimate(); }
      else if (name === "ticket_called" && live) {
        ended.delete(d.ticket_id); // a no-show called back is live again
        const call = callOf(d);
        calls = [call, ...calls.filter((c) => c.ticket_id !== d.ticket_id)].slice(0, 9);
        drawCalls(true);
        announce(call);
      }
    },
  });
})();
