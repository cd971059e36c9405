// The receipt slip's print button: shown only where JavaScript runs (Ctrl+P works everywhere).
(function () {
  "use strict";
  var button = document.getElementById("print-receipt");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
})();
