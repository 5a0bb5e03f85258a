// The volunteer's voucher page: while the voucher is unused, ask its feed every few seconds whether the shop has
// redeemed it (or it expired, or was cancelled elsewhere), and show the new state without a reload: the badge
// changes, the QR goes away and the time of use appears. Kept out of the page so the CSP can forbid inline script.
(function () {
  "use strict";

  var card = document.querySelector("[data-voucher-feed]");
  if (!card) return;
  var feed = card.getAttribute("data-voucher-feed");
  var badge = card.querySelector("[data-voucher-state] .badge");
  var EVERY = 3000;
  var failures = 0;
  var timer = null;
  var settled = false;

  var show = function (data) {
    settled = true;
    badge.textContent = data.label;
    badge.className = "badge badge-voucher-" + data.status;
    Array.prototype.forEach.call(card.querySelectorAll("[data-voucher-usable]"), function (part) { part.remove(); });
    card.querySelector("[data-voucher-code]").classList.add("used");
    if (data.redeemed_at) {
      card.querySelector("[data-redeemed-at]").textContent = data.redeemed_at;
      Array.prototype.forEach.call(card.querySelectorAll("[data-redeemed]"), function (part) { part.hidden = false; });
    }
  };

  var schedule = function (delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, delay);
  };

  var poll = function () {
    if (settled || document.hidden) return; // a hidden page is asked again when it is shown
    fetch(feed, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        if (data.status === "issued") {
          schedule(EVERY);
        } else {
          show(data);
        }
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
