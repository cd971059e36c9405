// 获取验证码 without leaving the page: the button posts the number by fetch to the same action
// the no-script form submits to (X-Requested-With: the server answers JSON), shows where the code
// went and counts down until a new one may be asked for. Without this script the button submits
// the form, which comes back filled in.
(function () {
  "use strict";
  var button = document.getElementById("send-code");
  var form = document.getElementById("case-form");
  var status = document.getElementById("phone-code-status");
  var phone = document.getElementById("phone");
  if (!button || !form || !status || !phone || !window.fetch || !window.URLSearchParams) return;
  var timer = null;

  function say(text) {
    status.textContent = text || "";
    status.hidden = !text;
  }

  // The field's error in the same shape as the server's page (citizen.js clears it when edited).
  function fieldError(name, message) {
    var field = form.querySelector("[name='" + name + "']");
    if (!field) return;
    var id = name + "-error";
    var p = document.getElementById(id);
    if (!message) {
      if (p) p.remove();
      field.removeAttribute("aria-invalid");
      return;
    }
    if (!p) {
      p = document.createElement("p");
      p.className = "error";
      p.id = id;
      var anchor = name === "phone" ? field.parentNode : field;
      anchor.insertAdjacentElement("afterend", p);
    }
    p.textContent = message;
    field.setAttribute("aria-invalid", "true");
    var ids = (field.getAttribute("aria-describedby") || "").split(" ").filter(function (x) {
      return x && x !== id;
    });
    ids.push(id);
    field.setAttribute("aria-describedby", ids.join(" "));
  }

  function countDown(seconds) {
    window.clearInterval(timer);
    var left = seconds;
    function tick() {
      if (left <= 0) {
        window.clearInterval(timer);
        button.disabled = false;
        button.value = button.dataset.label;
        return;
      }
      button.disabled = true;
      button.value = button.dataset.again.replace("{n}", left);
      left -= 1;
    }
    tick();
    timer = window.setInterval(tick, 1000);
  }

  button.addEventListener("click", function (event) {
    event.preventDefault();
    fieldError("phone", "");
    fieldError("phone_code", "");
    button.disabled = true;
    fetch(button.getAttribute("formaction"), {
      method: "POST",
      headers: { "X-Requested-With": "XMLHttpRequest" },
      body: new URLSearchParams({ phone: phone.value }),
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json();
      })
      .then(function (answer) {
        button.disabled = false;
        if (answer.error) {
          fieldError(answer.field, answer.error);
          say("");
        } else {
          say(answer.notice);
          var code = document.getElementById("phone_code");
          if (code) code.focus();
        }
        if (answer.resend_after) countDown(answer.resend_after);
      })
      .catch(function () {
        button.disabled = false;
        say(button.dataset.failed);
      });
  });
})();
