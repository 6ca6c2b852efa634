// Light progressive enhancement: the console works without this file.
// - a decision form is sent once (its buttons are disabled after the first click);
// - timestamps are shown in the reviewer's local time (the UTC value stays in the title).
(function () {
  "use strict";
  document.querySelectorAll("form[data-decision-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent === "1") { event.preventDefault(); return; }
      form.dataset.sent = "1";
      // disabled only after this turn: the form data (with the clicked button's value) is already taken
      window.setTimeout(function () {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when.getTime())) {
      el.title = el.getAttribute("datetime");
      el.textContent = when.toLocaleString();
    }
  });
})();
