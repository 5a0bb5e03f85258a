// 获取验证码: sends the form's phone number to /sms-code with the page's CSRF token, then rests the button for 60 s
// with a countdown (the server allows one code a minute per phone). What the server says is read out in the
// status line below the field.
(function () {
  "use strict";

  var WAIT = 60;

  function countdown(button, seconds) {
    var idle = button.getAttribute("data-idle-text") || button.textContent;
    button.setAttribute("data-idle-text", idle);
    button.disabled = true;
    var left = seconds;
    function tick() {
      if (left <= 0) {
        button.disabled = false;
        button.textContent = idle;
        return;
      }
      button.textContent = button.getAttribute("data-wait-label").replace("{s}", String(left));
      left -= 1;
      window.setTimeout(tick, 1000);
    }
    tick();
  }

  function message(body) {
    if (!body || !body.error) {
      return null;
    }
    var fields = body.error.fields || {};
    var names = Object.keys(fields);
    return names.length ? [].concat(fields[names[0]]).join(" ") : body.error.message;
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-sms-code]"), function (button) {
    var form = button.form;
    var status = form.querySelector("[data-sms-status]");
    button.addEventListener("click", function () {
      var data = new FormData();
      data.append("phone", form.elements.phone.value);
      data.append("purpose", button.getAttribute("data-sms-code"));
      data.append("csrf_token", form.elements.csrf_token.value);
      button.disabled = true;
      fetch(button.getAttribute("data-url"), {method: "POST", body: data, credentials: "same-origin"})
        .then(function (response) {
          return response.json().catch(function () { return null; }).then(function (body) {
            if (response.status === 202) {
              status.textContent = button.getAttribute("data-sent-label");
              countdown(button, WAIT);
              form.elements.code.focus();
              return;
            }
            status.textContent = message(body) || button.getAttribute("data-failed-label");
            var retry = parseInt(response.headers.get("Retry-After") || "0", 10);
            if (response.status === 429 && retry > 0) {
              countdown(button, Math.min(retry, WAIT));
            } else {
              button.disabled = false;
            }
          });
        })
        .catch(function () {
          status.textContent = button.getAttribute("data-failed-label");
          button.disabled = false;
        });
    });
    button.disabled = false;  // the page renders it disabled until this listener is in place
  });
})();
