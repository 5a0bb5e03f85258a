// Hours pages: the check-in screen's rotating code (fetched again a moment after each expiry, with a countdown)
// and its count of who has checked in (the same feed, asked every few seconds in between), "select all" in the review queue, and the certificate's print button. Kept out of the pages so the CSP can
// forbid inline script.
(function () {
  "use strict";

  var screen = document.querySelector("[data-checkin-screen]");
  if (screen) {
    var digits = screen.querySelector("[data-code]");
    var qr = screen.querySelector("[data-qr]");
    var countdown = screen.querySelector("[data-countdown]");
    var status = screen.querySelector("[data-status]");
    var attendance = screen.querySelector("[data-attendance]");
    var feed = screen.getAttribute("data-feed");
    var expires = Date.parse(screen.getAttribute("data-expires-at"));
    // Count against the server's clock: the code rotates on its minute, not on the tablet's.
    var skew = Date.parse(screen.getAttribute("data-server-now")) - Date.now();
    var fetching = false;
    var failures = 0;
    var retryAt = 0;
    var GRACE = 60000; // the previous code is still accepted for one more window
    var COUNT_EVERY = 5000; // the count of who has checked in, asked for between rotations
    var countAt = 0;

    var now = function () { return Date.now() + skew; };
    var grouped = function (code) { return code.slice(0, 3) + " " + code.slice(3); };

    var showProblem = function (message) {
      status.textContent = message || screen.getAttribute("data-offline-label");
      status.hidden = false;
    };

    var showAttendance = function (data) {
      attendance.querySelector("[data-checked-in]").textContent = attendance.getAttribute("data-count-label")
        .replace("{n}", data.checked_in).replace("{total}", data.confirmed);
      attendance.querySelector("[data-present]").textContent = attendance.getAttribute("data-present-label")
        .replace("{n}", data.present);
    };

    var refresh = function () {
      fetching = true;
      countAt = now() + COUNT_EVERY;
      fetch(feed, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (result) {
          if (!result.ok) {
            var refusal = new Error(result.body && result.body.error ? result.body.error.message : "");
            refusal.fromServer = true;
            throw refusal;
          }
          var data = result.body;
          skew = Date.parse(data.server_now) - Date.now();
          expires = Date.parse(data.expires_at);
          if (digits.getAttribute("data-shown") !== data.code) { // the QR is redrawn only when the code changes
            digits.setAttribute("data-shown", data.code);
            digits.textContent = grouped(data.code);
            qr.innerHTML = data.qr_svg;
          }
          digits.classList.remove("stale");
          showAttendance(data);
          status.hidden = true;
          failures = 0;
        })
        .catch(function (error) {
          failures += 1;
          retryAt = now() + Math.min(30000, 2000 * failures);
          // Only the server's own words: a network error or a sign-in page (not JSON) gets the general hint.
          showProblem(error && error.fromServer ? error.message : "");
        })
        .then(function () { fetching = false; });
    };

    var tick = function () {
      var left = expires - now();
      if (left > 0) {
        countdown.textContent = screen.getAttribute("data-seconds-label").replace("{n}", Math.ceil(left / 1000));
      } else {
        countdown.textContent = screen.getAttribute("data-refreshing-label");
        // A moment after expiry, so the server is surely in the next window; spread a little across screens.
        if (!fetching && left < -700 && now() >= retryAt) {
          refresh();
        }
        if (left < -GRACE) {
          digits.classList.add("stale");
        }
      }
      if (!fetching && now() >= countAt && now() >= retryAt) {
        refresh();
      }
    };

    countAt = now() + COUNT_EVERY;
    tick();
    window.setInterval(tick, 250);
  }

  // The bulk buttons stay off until a record is ticked (without script they work, and an empty choice is refused).
  var syncSelection = function (formId) {
    var ticked = document.querySelector('input[type="checkbox"][form="' + formId + '"]:checked') !== null;
    Array.prototype.forEach.call(document.querySelectorAll('[data-needs-selection="' + formId + '"]'),
      function (button) { button.disabled = !ticked; });
  };

  Array.prototype.forEach.call(document.querySelectorAll("[data-select-all]"), function (box) {
    var formId = box.getAttribute("data-select-all");
    box.addEventListener("change", function () {
      Array.prototype.forEach.call(document.querySelectorAll('input[type="checkbox"][form="' + formId + '"]'),
        function (item) { item.checked = box.checked; });
      syncSelection(formId);
    });
    syncSelection(formId);
  });

  document.addEventListener("change", function (event) {
    var formId = event.target.getAttribute && event.target.getAttribute("form");
    if (formId && event.target.type === "checkbox") syncSelection(formId);
  });

  // Back to the page (bfcache) with the ticks the browser kept: the buttons follow them.
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-select-all]"), function (box) {
      syncSelection(box.getAttribute("data-select-all"));
    });
  });

  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
