// The staff case page: a chosen reply template fills the answer box, and what is typed in a long
// form is saved to the server as it is typed (the 30-minute idle timeout must not cost an answer).
// Without this script everything still works: "使用模板" re-renders the form with the text.
(function () {
  "use strict";

  // Reply templates: choosing one puts its text in the box (replacing it only with consent).
  document.querySelectorAll("select[data-fills]").forEach(function (select) {
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var box = document.getElementById(select.getAttribute("data-fills"));
      if (!box || !option || !option.value) return;
      var body = option.getAttribute("data-body") || "";
      if (box.value.trim() && box.value !== body && !window.confirm("用模板内容替换已填写的答复？")) return;
      box.value = body;
      box.dispatchEvent(new Event("input", { bubbles: true }));
      box.focus();
    });
  });

  // Autosave: a POST per form at most every 2 seconds while typing, never while idle (so it does
  // not keep a session alive that nobody is using).
  var status = document.getElementById("autosave-status");
  if (!status) return;
  var url = status.getAttribute("data-url");
  var login = status.getAttribute("data-login");
  var token = document.querySelector('input[name="csrf_token"]');
  var timers = {};
  var sent = {};

  function say(text, html) {
    if (html) status.innerHTML = html; else status.textContent = text;
  }

  function save(box) {
    var key = box.getAttribute("data-autosave");
    if (sent[key] === box.value) return;
    var body = new FormData();
    body.append("csrf_token", token ? token.value : "");
    body.append("action", key);
    body.append("text", box.value);
    var value = box.value;
    fetch(url, { method: "POST", body: body, credentials: "same-origin", redirect: "error",
                 headers: { "X-CSRFToken": token ? token.value : "" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 400) {
          say("", '登录已超时，此后输入的内容未保存。<a href="' + login + '">重新登录</a>后返回本页，已保存的草稿会自动恢复。');
          return;
        }
        if (!response.ok) { say("草稿保存失败，请稍后再试"); return; }
        sent[key] = value;
        var now = new Date();
        say("草稿已自动保存 " + String(now.getHours()).padStart(2, "0") + ":" + String(now.getMinutes()).padStart(2, "0"));
      })
      .catch(function () { say("草稿保存失败（网络或登录已超时）"); });
  }

  document.querySelectorAll("textarea[data-autosave]").forEach(function (box) {
    sent[box.getAttribute("data-autosave")] = box.value;
    box.addEventListener("input", function () {
      var key = box.getAttribute("data-autosave");
      clearTimeout(timers[key]);
      timers[key] = setTimeout(function () { save(box); }, 2000);
    });
    box.addEventListener("blur", function () { save(box); });
  });
})();
