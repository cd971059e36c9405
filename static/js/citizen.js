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

  // Preview chosen photos, and shrink large ones before upload on slow networks.
  var input = document.getElementById("photos");
  var previews = document.getElementById("previews");
  if (!input || !previews) return;

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

  input.addEventListener("change", function () {
    previews.textContent = "";
    var files = Array.prototype.slice.call(input.files);
    files.forEach(function (file) {
      var img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      img.alt = file.name;
      previews.appendChild(img);
    });
    if (!window.DataTransfer) return;
    Promise.all(files.map(shrink)).then(function (smaller) {
      var transfer = new DataTransfer();
      smaller.forEach(function (f) { transfer.items.add(f); });
      input.files = transfer.files;
    });
  });
})();
