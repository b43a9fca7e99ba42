// k8stars web console: the little the pages need beyond HTML forms. No dependencies, no build.
"use strict";

// Forms with data-confirm ask first.
document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    ev.preventDefault();
  }
});

// The search box filters the rows of the tree as one types (the server filters too, on Enter).
for (const input of document.querySelectorAll("input[data-filter]")) {
  input.addEventListener("input", () => {
    const q = input.value.trim().toLowerCase();
    for (const row of document.querySelectorAll(input.dataset.filter)) {
      row.hidden = q !== "" && !row.dataset.name.toLowerCase().includes(q);
    }
  });
}

// Live lists: every [data-live] element with an id is refreshed from the same page every few seconds while the
// page is visible and no form inside it is being used. Bounded: it stops after an hour or at the first error.
const live = [...document.querySelectorAll("[data-live][id]")];
if (live.length > 0) {
  const PERIOD_MS = 4000;
  const started = Date.now();
  const timer = window.setInterval(async () => {
    if (Date.now() - started > 3600 * 1000) { window.clearInterval(timer); return; }
    if (document.hidden || live.some((el) => el.contains(document.activeElement) && document.activeElement !== el)) return;
    if (document.querySelector("[data-live] details[open]")) return;
    try {
      const res = await fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } });
      if (!res.ok || res.redirected) { window.clearInterval(timer); return; }
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      for (const el of live) {
        const fresh = doc.getElementById(el.id);
        if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
      }
    } catch (err) {
      window.clearInterval(timer);
    }
  }, PERIOD_MS);
}

// A form sent back for a value the console could not use carries what was typed (data-typed, name -> value): show it
// again, so nothing is lost (the page is rendered from the object, with the same field names).
for (const form of document.querySelectorAll("form[data-typed]")) {
  const typed = JSON.parse(form.dataset.typed);
  for (const el of form.elements) {
    if (!el.name || el.name === "_csrf" || el.type === "submit") continue;
    if (el.type === "checkbox") el.checked = Object.hasOwn(typed, el.name);
    else if (Object.hasOwn(typed, el.name)) el.value = typed[el.name];
  }
}
