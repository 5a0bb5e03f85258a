// The coordinator's roster: ask its feed every few seconds for the same page of the roster and swap it in, so new
// claims, check-ins and check-outs show without a reload. Kept out of the page so the CSP can forbid inline script.
(function () {
  "use strict";

  var box = document.querySelector("[data-roster-feed]");
  if (!box) return;
  var confirmed = document.querySelector("[data-roster-confirmed]");
  var waitlisted = document.querySelector("[data-roster-waitlisted]");
  var shown = box.innerHTML;

  window.pollFeed(box.getAttribute("data-roster-feed"), 5000, function (data) {
    if (data.html !== shown) {
      shown = data.html;
      box.innerHTML = data.html;
    }
    if (confirmed) {
      confirmed.textContent = confirmed.textContent.replace(/\d+/, String(data.confirmed));
    }
    if (waitlisted) waitlisted.textContent = String(data.waitlisted);
    return true;
  }, function () {
    // Never swap the list under a coordinator who is answering a "mark absent?" question or mid-tap.
    return Boolean(box.querySelector("form[data-sent]"));
  });
})();
