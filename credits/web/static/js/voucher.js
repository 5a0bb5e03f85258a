// The volunteer's voucher page: while the voucher is unused, ask its feed every few seconds whether the shop has
// redeemed it (or it expired, or was cancelled elsewhere), and show the new state without a reload: the badge
// changes, the QR goes away and the time of use appears. Kept out of the page so the CSP can forbid inline script.
(function () {
  "use strict";

  var card = document.querySelector("[data-voucher-feed]");
  if (!card) return;
  var badge = card.querySelector("[data-voucher-state] .badge");

  var show = function (data) {
    badge.textContent = data.label;
    badge.className = "badge badge-voucher-" + data.status;
    Array.prototype.forEach.call(card.querySelectorAll("[data-voucher-usable]"), function (part) { part.remove(); });
    card.querySelector("[data-voucher-code]").classList.add("used");
    if (data.redeemed_at) {
      card.querySelector("[data-redeemed-at]").textContent = data.redeemed_at;
      Array.prototype.forEach.call(card.querySelectorAll("[data-redeemed]"), function (part) { part.hidden = false; });
    }
  };

  window.pollFeed(card.getAttribute("data-voucher-feed"), 3000, function (data) {
    if (data.status === "issued") return true;
    show(data);
    return false;
  });
})();
