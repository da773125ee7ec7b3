// patronus dashboard: refreshes <main> from the server every second (no reload), and sorts
// and filters tables on the client. Bundled in the binary; no external resources.
(function () {
  "use strict";
  var sortState = {}; // table id -> {col, dir}
  var filterText = "";

  function cellKey(row, col) {
    var c = row.cells[col];
    if (!c) return "";
    return c.getAttribute("data-key") !== null ? c.getAttribute("data-key") : c.textContent.trim();
  }

  function applySort(table) {
    var st = sortState[table.id];
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].hasAttribute("aria-sort")) heads[i].setAttribute("aria-sort", "none");
    }
    if (!st || !heads[st.col]) return;
    heads[st.col].setAttribute("aria-sort", st.dir > 0 ? "ascending" : "descending");
    var numeric = heads[st.col].getAttribute("data-sort") === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a, st.col), y = cellKey(b, st.col);
      var r = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
      return r * st.dir;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function applyFilter() {
    var input = document.getElementById("filter");
    if (!input) return;
    var table = document.getElementById(input.getAttribute("aria-controls"));
    if (!table) return;
    var q = filterText.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0;
    });
  }

  function wireTables() {
    Array.prototype.forEach.call(document.querySelectorAll("table[id]"), function (table) {
      if (!table.tHead) return;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
        var b = th.querySelector("button");
        if (!b) return;
        b.addEventListener("click", function () {
          var st = sortState[table.id];
          sortState[table.id] = { col: col, dir: st && st.col === col ? -st.dir : 1 };
          applySort(table);
        });
      });
      applySort(table);
    });
  }

  function wire() {
    wireTables();
    var input = document.getElementById("filter");
    if (input) {
      filterText = input.value;
      input.addEventListener("input", function () { filterText = input.value; applyFilter(); });
      applyFilter();
    }
  }

  function refresh() {
    var main = document.getElementById("main");
    var state = document.getElementById("live-state");
    var clock = document.getElementById("live-time");
    var url = main && main.getAttribute("data-refresh");
    if (!url) return;
    fetch(url, { headers: { "Accept": "text/html" }, cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        main.innerHTML = html;
        wireTables();
        applyFilter();
        // The status text changes only when the state does (screen readers announce it).
        if (state && state.textContent !== "live") state.textContent = "live";
        if (state) state.parentNode.className = "live";
        if (clock) clock.textContent = "· " + new Date().toLocaleTimeString();
      })
      .catch(function () {
        var text = "reconciler unreachable, retrying";
        if (state && state.textContent !== text) state.textContent = text;
        if (state) state.parentNode.className = "live stale";
      })
      .then(function () { setTimeout(refresh, 500); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wire();
    setTimeout(refresh, 500);
  });
})();
