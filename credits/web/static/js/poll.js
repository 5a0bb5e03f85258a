// Asking a page's JSON feed every few seconds, for the pages whose state changes elsewhere (a voucher redeemed at
// the till, claims and check-ins on the roster): pollFeed(url, every, onData, busy). onData gets each answer and
// returns false to stop; while busy() is true a turn is skipped. A hidden page is asked again when it is shown;
// a failed request (signed out, offline, refused) is tried again less and less often, the page left as it was.
window.pollFeed = function (feed, every, onData, busy) {
  "use strict";
  var failures = 0;
  var timer = null;
  var stopped = false;

  var schedule = function (delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, delay);
  };

  var poll = function () {
    if (stopped || document.hidden) return;
    if (busy && busy()) return schedule(every);
    fetch(feed, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        if (onData(data) === false) {
          stopped = true;
        } else {
          schedule(every);
        }
      })
      .catch(function () {
        failures += 1;
        schedule(Math.min(60000, every * Math.pow(2, failures)));
      });
  };

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) schedule(0);
  });
  schedule(every);
};
