// Every page: feedback while a form is on its way (the tapped button says 处理中… and the form's buttons rest, so
// a second tap on a slow phone network sends nothing more), and a header menu that closes like a menu should.
// Kept out of the pages so the CSP can forbid inline script.
(function () {
  "use strict";

  var busyLabel = document.body.getAttribute("data-busy-label") || "…";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    // GET forms too (the dashboard's period, the filters): at town scale they take a moment as well. Every one of
    // them opens a page, none downloads a file, so the label cannot stay on after the answer has come.
    if (event.defaultPrevented) {
      return;
    }
    if (form.hasAttribute("data-busy")) {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-busy", "");
    form.setAttribute("aria-busy", "true");
    var pressed = event.submitter;
    // After this turn of the event loop: the form's data, including the pressed button's name and value, has
    // been collected by then, and a disabled button would have dropped out of it.
    window.setTimeout(function () {
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
        button.disabled = true;
      });
      if (pressed && pressed.tagName === "BUTTON") {
        pressed.setAttribute("data-idle-label", pressed.textContent);
        pressed.textContent = busyLabel;
      }
    }, 0);
  });

  // What was typed into a form is kept in this tab until the answer comes: if the post is refused because the page
  // or the sign-in expired, the server sends the person back to the page (data-restore-form on <body>) and the
  // form is filled in again. Passwords, hidden fields (the CSRF token) and files are never kept.
  var KEPT = "credits-form:";
  var KEEP_MS = 60 * 60 * 1000;

  function formKey(form) {
    return KEPT + window.location.pathname + "|" + (form.getAttribute("action") || "");
  }

  function keepable(field) {
    return field.name && !field.disabled && ["password", "hidden", "file", "submit", "button"].indexOf(field.type) < 0;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if ((form.getAttribute("method") || "get").toLowerCase() !== "post") {
      return;
    }
    var values = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!keepable(field)) {
        return;
      }
      if (field.type === "checkbox" || field.type === "radio") {
        values[field.name] = values[field.name] || [];
        if (field.checked) {
          values[field.name].push(field.value);
        }
      } else {
        values[field.name] = field.value;
      }
    });
    try {
      window.sessionStorage.setItem(formKey(form), JSON.stringify({at: Date.now(), values: values}));
    } catch (e) { /* storage full or refused: nothing is kept, nothing breaks */ }
  }, true);

  function restoreForms() {
    Array.prototype.forEach.call(document.querySelectorAll("form[method=post], form[method=POST]"), function (form) {
      var kept;
      try {
        kept = JSON.parse(window.sessionStorage.getItem(formKey(form)) || "null");
      } catch (e) {
        kept = null;
      }
      if (!kept || Date.now() - kept.at > KEEP_MS) {
        return;
      }
      Array.prototype.forEach.call(form.elements, function (field) {
        if (!keepable(field) || !(field.name in kept.values)) {
          return;
        }
        var value = kept.values[field.name];
        if (field.type === "checkbox" || field.type === "radio") {
          field.checked = value.indexOf(field.value) >= 0;
        } else {
          field.value = value;
        }
      });
      window.sessionStorage.removeItem(formKey(form));
    });
  }

  if (document.body.hasAttribute("data-restore-form")) {
    restoreForms();
  }

  // A page that answers a POST (a form shown again with what was refused): make its history entry a plain visit
  // of the same address, so that coming back to it later opens the page again instead of Chrome's
  // ERR_CACHE_MISS ("confirm form resubmission": signed-in pages are never stored, so there is no copy to show).
  if (document.body.hasAttribute("data-post-answer") && window.history.replaceState) {
    window.history.replaceState(window.history.state, "", window.location.href);
  }

  // Back to a page kept in the browser's memory (bfcache): its forms may be used again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    Array.prototype.forEach.call(document.querySelectorAll("form[data-busy]"), function (form) {
      form.removeAttribute("data-busy");
      form.removeAttribute("aria-busy");
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
        if (button.hasAttribute("data-idle-label")) {
          button.textContent = button.getAttribute("data-idle-label");
          button.removeAttribute("data-idle-label");
        }
        // A claim button that opens at a set time is projects.js's to wake up, not ours.
        if (!button.hasAttribute("data-enable-at")) {
          button.disabled = false;
        }
      });
    });
  });

  // A page that answers a form: a live region already in the page as it loads is not read out, so the focus goes
  // to what a screen reader must say first — the first field refused (its error is tied to it by
  // aria-describedby), else the result of what was sent (the claim's outcome, a check-in).
  var first = document.querySelector("main [aria-invalid=true]") || document.querySelector("main [data-result]");
  if (first) {
    first.focus({ preventScroll: first.hasAttribute("data-result") });
  }

  var menus = Array.prototype.slice.call(document.querySelectorAll("details[data-menu]"));
  document.addEventListener("click", function (event) {
    menus.forEach(function (menu) {
      if (menu.open && !menu.contains(event.target)) {
        menu.open = false;
      }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    menus.forEach(function (menu) {
      if (menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
})();
