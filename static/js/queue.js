// The staff queue: keyboard shortcuts (j/k move, Enter opens, x ticks, a runs the tab's primary
// action, ? help), select-all, and "请先选择案件" before an empty bulk submit. Everything here is an
// extra: without this file the table, its links and the bulk form work as plain HTML.
(function () {
  "use strict";
  var filterBox = document.getElementById("filter-box");
  if (filterBox && window.matchMedia("(min-width: 48rem)").matches) filterBox.open = true;
  var table = document.getElementById("queue");
  if (!table) return;
  var rows = Array.prototype.slice.call(table.querySelectorAll("tr[data-href]"));
  var form = document.getElementById("bulk-form");
  var bulk = form ? form.getAttribute("data-bulk") : "";
  var help = document.getElementById("shortcuts-help");
  var empty = document.getElementById("bulk-empty");
  var current = -1;

  function boxes() {
    return Array.prototype.slice.call(table.querySelectorAll('input[name="case"]'));
  }

  function select(index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) {
      rows[current].classList.remove("selected");
      rows[current].removeAttribute("aria-selected");
    }
    current = index;
    var row = rows[current];
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
    var link = row.querySelector("td.ref a");
    if (link) link.focus({ preventScroll: true });
  }

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (!help.hidden) help.querySelector("button").focus();
  }

  function primary() {
    if (current < 0) return;
    var row = rows[current];
    var box = row.querySelector('input[name="case"]');
    if (!bulk || !box) {
      window.location.href = row.getAttribute("data-href");
      return;
    }
    boxes().forEach(function (b) { b.checked = b === box; });
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var key = event.key;
    if (key === "?") {
      toggleHelp();
    } else if (key === "Escape" && help && !help.hidden) {
      toggleHelp(false);
    } else if (key === "j") {
      select(current + 1);
    } else if (key === "k") {
      select(current < 0 ? 0 : current - 1);
    } else if (key === "Enter" && current >= 0 && event.target === document.body) {
      window.location.href = rows[current].getAttribute("data-href");
    } else if (key === "x" && current >= 0) {
      var box = rows[current].querySelector('input[name="case"]');
      if (box) box.checked = !box.checked;
    } else if (key === "a") {
      primary();
    } else {
      return;
    }
    event.preventDefault();
  });

  rows.forEach(function (row, index) {
    row.addEventListener("click", function () { if (current !== index) select(index); });
  });

  var closer = document.getElementById("shortcuts-close");
  if (closer) closer.addEventListener("click", function () { toggleHelp(false); });

  var all = document.getElementById("select-all");
  if (all) {
    all.hidden = false;
    all.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = all.checked; });
    });
  }

  if (form && empty) {
    form.addEventListener("submit", function (event) {
      if (!boxes().some(function (b) { return b.checked; })) {
        event.preventDefault();
        empty.hidden = false;
        empty.focus();
      }
    });
  }
})();
