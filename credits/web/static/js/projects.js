// Project pages: live countdowns to a project's opening, claim buttons that wake up at zero, one submit per tap,
// and a confirmation before destructive actions. Kept out of the pages so the CSP can forbid inline script.
(function () {
  "use strict";

  var clocks = Array.prototype.slice.call(document.querySelectorAll("[data-countdown]"));
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-enable-at]"));
  // "即将开放" badges turn to "认领中" at the opening, with the countdown, not at the next reload.
  var badges = Array.prototype.slice.call(document.querySelectorAll(".badge[data-opens-at]"));

  // Count against the server's clock, not the phone's: a phone a minute fast must not show "open" early.
  var skew = 0;
  var first = document.querySelector("[data-server-now]");
  if (first) {
    var serverNow = Date.parse(first.getAttribute("data-server-now"));
    if (!isNaN(serverNow)) {
      skew = serverNow - Date.now();
    }
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function format(ms, dayLabel) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var days = Math.floor(s / 86400);
    s -= days * 86400;
    var h = Math.floor(s / 3600);
    s -= h * 3600;
    var m = Math.floor(s / 60);
    s -= m * 60;
    return (days ? days + dayLabel + " " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  }

  var timer = null;
  var reloading = false;

  function tick() {
    var now = Date.now() + skew;
    var pending = 0;
    clocks.forEach(function (el) {
      var out = el.querySelector("[data-countdown-clock]") || el;
      var said = el.querySelector("[data-countdown-announce]");
      var left = Date.parse(el.getAttribute("data-countdown")) - now;
      if (left > 0) {
        out.textContent = format(left, el.getAttribute("data-day-label") || "d");
        pending += 1;
        if (said && left <= 60000 && !said.textContent) {
          said.textContent = said.getAttribute("data-minute-label");
        }
      } else if (!el.classList.contains("countdown-done")) {
        el.classList.add("countdown-done");
        out.textContent = el.getAttribute("data-done-label") || "";
        if (said) {
          said.textContent = out.textContent;
        }
        if (el.hasAttribute("data-reload") && !reloading) {
          // Nothing on this page to enable: fetch it again, spread over a second so a crowd does not reload as one.
          reloading = true;
          window.setTimeout(function () { window.location.reload(); }, Math.random() * 1000);
        }
      }
    });
    badges.forEach(function (badge) {
      if (!badge.hasAttribute("data-opens-at")) {
        return;
      }
      if (Date.parse(badge.getAttribute("data-opens-at")) <= now) {
        badge.textContent = badge.getAttribute("data-open-label");
        badge.className = "badge badge-open";
        badge.removeAttribute("data-opens-at");
      } else {
        pending += 1;
      }
    });
    buttons.forEach(function (b) {
      if (!b.disabled) {
        return;
      }
      if (Date.parse(b.getAttribute("data-enable-at")) <= now) {
        b.disabled = false;
        if (b.getAttribute("data-open-label")) {
          b.textContent = b.getAttribute("data-open-label");
        }
      } else {
        pending += 1;
      }
    });
    if (!pending && timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
  }

  if (clocks.length || buttons.length || badges.length) {
    tick();
    timer = window.setInterval(tick, 250);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (form.hasAttribute("data-once")) {
      // A double tap sends one claim; the button stays off while the answer is on its way.
      if (form.getAttribute("data-sent")) {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
      window.setTimeout(function () {
        Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = true; });
      }, 0);
    }
  }, true); // capture: asked before app.js marks the form busy, so "cancel" leaves the button as it was

  // Back from the result page (bfcache): the form may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    Array.prototype.forEach.call(document.querySelectorAll("form[data-sent]"), function (form) {
      form.removeAttribute("data-sent");
      Array.prototype.forEach.call(form.querySelectorAll("button:not([data-enable-at])"), function (b) {
        b.disabled = false;
      });
    });
    tick();
  });
})();
