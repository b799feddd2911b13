// berth console: live updates without reloading. The page's server-sent
// event stream (body[data-events]) says when an address changed; each
// element with data-live is then fetched again from its URL and replaced
// (an element with data-ip only for changes of that address). Fetches of
// one element never overlap, and a burst of changes costs one fetch.
'use strict';
(() => {
  const source = document.body.dataset.events;
  const parts = [...document.querySelectorAll('[data-live]')];
  const dot = document.getElementById('live');
  if (!source || parts.length === 0) return;
  const DEBOUNCE_MS = 100;
  const busy = new Set();
  const again = new Set();
  const due = new Set();
  let timer = null;

  async function refresh(el) {
    if (busy.has(el)) {
      again.add(el);
      return;
    }
    busy.add(el);
    try {
      do {
        again.delete(el);
        const res = await fetch(el.dataset.live, { credentials: 'same-origin', cache: 'no-store' });
        // The server escapes every value it puts in a part (console/html.ts).
        if (res.ok) el.innerHTML = await res.text();
      } while (again.has(el));
    } catch {
      // the stream's reconnect refreshes everything
    } finally {
      busy.delete(el);
    }
  }

  function schedule(el) {
    due.add(el);
    timer ??= setTimeout(() => {
      timer = null;
      for (const e of due) refresh(e);
      due.clear();
    }, DEBOUNCE_MS);
  }

  const events = new EventSource(source);
  let lost = false;
  events.addEventListener('change', (ev) => {
    const c = JSON.parse(ev.data);
    for (const el of parts) if (!el.dataset.ip || c.ip === null || el.dataset.ip === c.ip) schedule(el);
  });
  events.addEventListener('status', (ev) => {
    const { live } = JSON.parse(ev.data);
    if (dot) dot.classList.toggle('on', live);
    // changes made while the console could not follow the store were not heard of
    if (live && lost) for (const el of parts) schedule(el);
    lost = !live;
  });
  events.addEventListener('error', () => {
    if (dot) dot.classList.remove('on');
    lost = true;
  });
})();
