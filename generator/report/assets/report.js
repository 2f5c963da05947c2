// posnet fleet report: search and filter the store index (plain JS, no network).
"use strict";
(function () {
  const table = document.getElementById("stores");
  if (!table) {
    return;
  }
  const rows = Array.from(table.tBodies[0].rows);
  const q = document.getElementById("q");
  const pattern = document.getElementById("pattern");
  const partner = document.getElementById("partner");
  const lint = document.getElementById("lint");
  const count = document.getElementById("count");
  const has = (list, value) => !value || list.split(" ").includes(value);
  function apply() {
    const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of rows) {
      const d = row.dataset;
      const ok =
        words.every((w) => d.text.includes(w)) &&
        has(d.patterns, pattern.value) &&
        has(d.partners, partner.value) &&
        (!lint.value || d.lint === lint.value);
      row.hidden = !ok;
      if (ok) {
        shown += 1;
      }
    }
    count.textContent = shown + " of " + rows.length + " stores";
  }
  const params = new URLSearchParams(window.location.search);
  for (const [el, key] of [[q, "q"], [pattern, "pattern"], [partner, "partner"], [lint, "lint"]]) {
    if (params.has(key)) {
      el.value = params.get(key);
    }
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  }
  apply();
})();
