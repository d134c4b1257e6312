// Procrastinate dashboard: live refresh. Every few seconds the page fetches itself and swaps in
// its [data-live] regions, so counts and the job list change without a reload. The HTML comes
// from the server, which encodes every value; nothing here builds markup from data.
(() => {
  "use strict";
  const interval = Number(document.body.dataset.refreshMs || 0);
  const live = document.getElementById("live");
  const label = document.getElementById("live-label");
  const toggle = document.getElementById("live-toggle");
  if (!interval || !live || !document.querySelector("[data-live]")) return;

  const storageKey = "procrastinate-dashboard-paused";
  let paused = sessionStorage.getItem(storageKey) === "1";
  let failures = 0;
  let timer = 0;
  let busy = false;
  live.hidden = false;

  function show() {
    live.classList.toggle("paused", paused);
    live.classList.toggle("failing", failures > 0);
    toggle.textContent = paused ? "Resume" : "Pause";
    if (paused) label.textContent = "Paused";
  }

  function schedule(delay) {
    clearTimeout(timer);
    if (!paused) timer = setTimeout(refresh, delay);
  }

  function counts(root) {
    const values = new Map();
    for (const el of root.querySelectorAll("[data-count]")) values.set(el.dataset.count, el.textContent);
    return values;
  }

  async function refresh() {
    if (document.hidden || busy) return schedule(interval);
    busy = true;
    try {
      const response = await fetch(location.href, {
        headers: { "X-Procrastinate-Live": "1" },
        credentials: "same-origin",
        cache: "no-store",
        redirect: "error",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const before = counts(document);
      for (const region of document.querySelectorAll("[data-live]")) {
        if (region.contains(document.activeElement) && document.activeElement !== document.body) continue;
        const next = fresh.querySelector(`[data-live="${CSS.escape(region.dataset.live)}"]`);
        if (next && next.innerHTML !== region.innerHTML) region.replaceWith(document.importNode(next, true));
      }
      for (const el of document.querySelectorAll("[data-count]")) {
        if (before.has(el.dataset.count) && before.get(el.dataset.count) !== el.textContent) el.classList.add("bump");
      }
      failures = 0;
      label.textContent = `Live · ${new Date().toLocaleTimeString()}`;
      document.body.dataset.refreshedAt = String(Date.now());
    } catch {
      failures++;
      label.textContent = "Cannot refresh; retrying";
    } finally {
      busy = false;
      show();
      schedule(interval * Math.min(2 ** failures, 12));
    }
  }

  toggle.addEventListener("click", () => {
    paused = !paused;
    sessionStorage.setItem(storageKey, paused ? "1" : "0");
    show();
    if (!paused) refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !paused) schedule(0);
  });

  show();
  schedule(interval);
})();
