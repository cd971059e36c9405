// Progressive enhancement for the citizen pages; everything works without it.
(function () {
  "use strict";
  var MAX_SIDE = 2560; // phones take 4000 px photos; this is plenty to see what happened

  // Copy the tracking number and access code.
  document.querySelectorAll("button.copy").forEach(function (button) {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.dataset.copy).then(function () {
        button.textContent = "✓";
      });
    });
  });

  // "返回上一页" is a real link (the CSP forbids javascript: URLs); going back in history keeps
  // what the citizen typed, so prefer it when there is somewhere to go back to.
  document.querySelectorAll("a[data-back]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (window.history.length > 1) {
        event.preventDefault();
        window.history.back();
      }
    });
  });

  var form = document.getElementById("case-form");
  if (!form) return;

  // -- Field errors: shown where they are, gone as soon as the field is put right. --------------

  function describedBy(field, id, add) {
    var ids = (field.getAttribute("aria-describedby") || "").split(" ").filter(function (x) {
      return x && x !== id;
    });
    if (add) ids.push(id);
    if (ids.length) field.setAttribute("aria-describedby", ids.join(" "));
    else field.removeAttribute("aria-describedby");
  }

  function setError(field, message) {
    var id = field.name + "-error";
    var p = document.getElementById(id);
    if (!message) {
      if (p) p.remove();
      field.removeAttribute("aria-invalid");
      describedBy(field, id, false);
      return;
    }
    if (!p) {
      p = document.createElement("p");
      p.className = "error";
      p.id = id;
      var anchor = field.type === "checkbox" ? field.closest("label") : field;
      anchor.insertAdjacentElement("afterend", p);
    }
    p.textContent = message;
    field.setAttribute("aria-invalid", "true");
    describedBy(field, id, true);
  }

  function problem(field) {
    if (field.type === "checkbox") return field.checked ? "" : form.dataset.consent;
    var value = field.value.trim();
    if (!value) return form.dataset.required;
    if (field.name === "content" && (value.length < 10 || value.length > 5000)) return form.dataset.contentLength;
    return "";
  }

  var required = Array.prototype.slice.call(form.querySelectorAll("[required]"));

  function clearSummaryIfClean() {
    var box = document.getElementById("form-errors");
    if (box && !form.querySelector(".error")) box.remove();
  }

  // An old "此项为必填项" must not stay beside a field the citizen has since put right. Fields the
  // browser cannot judge (a phone number the server refused) lose their error once edited.
  function recheck(event) {
    var field = event.target;
    if (!field.name || field.getAttribute("aria-invalid") !== "true") return;
    if (field.required && problem(field)) return;
    setError(field, "");
    clearSummaryIfClean();
  }
  form.addEventListener("input", recheck);
  form.addEventListener("change", recheck);

  // -- Photos: preview, and shrink large ones before upload on slow networks. -------------------

  var input = document.getElementById("photos");
  var previews = document.getElementById("previews");
  var shrinking = Promise.resolve();

  function shrink(file) {
    return new Promise(function (resolve) {
      if (!/^image\/(jpeg|png|webp)$/.test(file.type) || !window.createImageBitmap) return resolve(file);
      createImageBitmap(file).then(function (bitmap) {
        var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
        if (scale === 1) return resolve(file);
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(bitmap.width * scale);
        canvas.height = Math.round(bitmap.height * scale);
        canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) {
          resolve(blob ? new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" }) : file);
        }, "image/jpeg", 0.85);
      }, function () { resolve(file); });
    });
  }

  if (input && previews) {
    input.addEventListener("change", function () {
      var again = document.getElementById("photos-again");
      if (again && input.files.length) again.remove();
      previews.textContent = "";
      var files = Array.prototype.slice.call(input.files);
      files.forEach(function (file) {
        var img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        img.alt = file.name;
        previews.appendChild(img);
      });
      if (!window.DataTransfer) return;
      shrinking = Promise.all(files.map(shrink)).then(function (smaller) {
        var transfer = new DataTransfer();
        smaller.forEach(function (f) { transfer.items.add(f); });
        input.files = transfer.files;
      });
    });
  }

  // -- Submit: check first (a 3G upload takes minutes), then upload with progress. --------------

  var progress = document.getElementById("upload-progress");
  var progressText = document.getElementById("upload-progress-text");
  var progressBar = document.getElementById("upload-progress-bar");
  var button = form.querySelector("button[type=submit]");

  function showProgress(percent) {
    progress.hidden = false;
    progressBar.value = percent;
    progressText.textContent = form.dataset.sending + " · " + form.dataset.uploaded + " " + percent + "%";
  }

  function summary(text) {
    var box = document.getElementById("form-errors");
    if (!text) {
      if (box) box.remove();
      return;
    }
    if (!box) {
      box = document.createElement("p");
      box.id = "form-errors";
      box.className = "error summary";
      box.setAttribute("role", "alert");
      form.parentNode.insertBefore(box, form);
    }
    box.textContent = text;
  }

  function showAnswer(html) {
    // The server refused: show why on this page, which still holds everything typed and the
    // chosen photos (a plain form post would have lost the photos).
    var answer = new DOMParser().parseFromString(html, "text/html");
    form.querySelectorAll("p.error[id$='-error']").forEach(function (p) {
      var field = form.querySelector("[name='" + p.id.replace(/-error$/, "") + "']");
      if (field) setError(field, "");
    });
    var again = document.getElementById("photos-again");
    if (again) again.remove();
    // Past the address's form limit the server asks a question (a sum): bring the new one in,
    // replacing any earlier one, so the citizen answers it here instead of reloading and retyping.
    var asked = answer.querySelector("#case-form fieldset.challenge");
    var mine = form.querySelector("fieldset.challenge");
    if (asked) {
      var copy = document.importNode(asked, true);
      if (mine) mine.replaceWith(copy);
      else button.parentNode.insertBefore(copy, button);
    }
    var fieldErrors = answer.querySelectorAll("#case-form p.error[id$='-error']");
    if (fieldErrors.length) {
      summary(form.dataset.summary);
      var first = null;
      fieldErrors.forEach(function (p) {
        var field = form.querySelector("[name='" + p.id.replace(/-error$/, "") + "']");
        if (field) {
          setError(field, p.textContent);
          first = first || field;
        }
      });
      if (first) first.focus();
    } else {
      // An error page (too large, too many tries): its heading and explanation.
      var parts = answer.querySelectorAll("main h1, main h1 ~ p:not(:last-child)");
      summary(Array.prototype.map.call(parts, function (n) { return n.textContent.trim(); }).join(" "));
    }
    progress.hidden = true;
    button.disabled = false;
  }

  form.addEventListener("submit", function (event) {
    var firstBad = null;
    required.forEach(function (field) {
      var message = problem(field);
      setError(field, message);
      if (message && !firstBad) firstBad = field;
    });
    if (firstBad) {
      event.preventDefault();
      summary(form.dataset.summary);
      firstBad.focus();
      return;
    }
    if (!window.FormData || !window.XMLHttpRequest || !progress) return; // a plain form post
    event.preventDefault();
    button.disabled = true;
    showProgress(0);
    shrinking.then(function () {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) showProgress(Math.round((e.loaded / e.total) * 100));
      });
      xhr.addEventListener("load", function () {
        var type = xhr.getResponseHeader("Content-Type") || "";
        if (xhr.status === 200 && type.indexOf("application/json") === 0) {
          window.location.assign(JSON.parse(xhr.responseText).redirect);
        } else {
          showAnswer(xhr.responseText);
        }
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        progressText.textContent = form.dataset.failed;
      });
      xhr.send(new FormData(form));
    });
  });
})();
