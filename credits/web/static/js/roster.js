// The coordinator's roster: ask its feed every few seconds for the same page of the roster and swap it in, so new
// claims, check-ins and check-outs show without a reload. Kept out of the page so the CSP can forbid inline script.
(function () {
  "use strict";

  var box = document.querySelector("[data-roster-feed]");
  if (!box) return;
  var feed = box.getAttribute("data-roster-feed");
  var confirmed = document.querySelector("[data-roster-confirmed]");
  var waitlisted = document.querySelector("[data-roster-waitlisted]");
  var EVERY = 5000;
  var failures = 0;
  var timer = null;
  var shown = box.innerHTML;

  var schedule = function (delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, delay);
  };

  var poll = function () {
    if (document.hidden) return; // a hidden page is asked again when it is shown
    // Never swap the list under a coordinator who is answering a "mark absent?" question or mid-tap.
    if (box.querySelector("form[data-sent]")) return schedule(EVERY);
    fetch(feed, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        if (data.html !== shown) {
          shown = data.html;
          box.innerHTML = data.html;
        }
        if (confirmed) {
          confirmed.textContent = confirmed.textContent.replace(/\d+/, String(data.confirmed));
        }
        if (waitlisted) waitlisted.textContent = String(data.waitlisted);
        schedule(EVERY);
      })
      .catch(function () {
        // Signed out, offline or refused: try again, less and less often; the page itself stays as it was.
        failures += 1;
        schedule(Math.min(60000, EVERY * Math.pow(2, failures)));
      });
  };

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) schedule(0);
  });
  schedule(EVERY);
})();
